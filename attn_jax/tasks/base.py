"""What the trainer needs from a task; a task knows nothing about meshes or checkpoints."""

from __future__ import annotations

import abc
import pathlib
from collections.abc import Iterator
from typing import Any

import flax.linen as nn
import grain
import ml_collections
from jax import Array

Batch = dict[str, Any]
# Each metric as (sum over examples, number of examples); the trainer adds them up and divides.
Metrics = dict[str, tuple[Array, Array]]


class Task(abc.ABC):
    """One learning problem: its data, its model, its loss and its metrics."""

    #: the metric named on the final eval line (a DESIGN.md metric key), and whether higher is better.
    headline_metric: str = "loss"
    higher_is_better: bool = False

    def __init__(self, config: ml_collections.ConfigDict, workdir: pathlib.Path):
        self.config = config
        self.workdir = workdir

    @property
    @abc.abstractmethod
    def model(self) -> nn.Module:
        """The Flax module, built from the config."""

    @abc.abstractmethod
    def train_iterator(self) -> grain.DatasetIterator:
        """Endless, checkpointable iterator of this process's training batches."""

    @abc.abstractmethod
    def eval_iterator(self) -> Iterator[Batch]:
        """One pass over the eval split; padded rows carry ``weight`` 0."""

    @abc.abstractmethod
    def init_params(self, rng: Array) -> Any:
        """Freshly initialised model parameters (with their logical partitioning metadata)."""

    @abc.abstractmethod
    def loss_and_metrics(self, params: Any, batch: Batch, rng: Array | None) -> tuple[Array, Metrics]:
        """Mean training loss (``rng`` given: dropout on) and metric sums for ``batch``."""

    @abc.abstractmethod
    def write_attention(self, params: Any, directory: pathlib.Path, step: int) -> None:
        """Draw where the model looks, for a few fixed eval examples, as PNGs in ``directory``."""

    @abc.abstractmethod
    def predict(self, params: Any, text: str) -> str:
        """The model's output for one raw input, with what it attended to, as printable lines."""

    def eval_extras(self, params: Any, metrics: dict[str, float], step: int) -> dict[str, float]:
        """Eval metrics beyond per-batch sums (e.g. perplexity, or BLEU of decoded outputs, which a
        seq2seq task also writes to ``predictions/``), given the summed ``metrics``. Default: none."""
        return {}

    def tokens_in(self, batch: Batch) -> int:
        """Non-padding input tokens in a batch, for the tokens/s figure."""
        return 0
