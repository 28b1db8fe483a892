"""Grain pipelines from in-memory examples: shuffled, repeated training batches and padded eval batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import grain
import jax
import numpy as np

Example = dict[str, Any]


def train_batches(examples: Sequence[Example], batch_size: int, seed: int) -> grain.DatasetIterator:
    """An endless, checkpointable iterator of training batches for this process.

    Each process reads its own shard (every ``process_count``-th example) and gets ``batch_size``
    examples per step; every epoch is reshuffled from ``seed``.
    """
    if batch_size % jax.process_count():
        raise ValueError(f"batch_size {batch_size} must divide evenly over {jax.process_count()} processes.")
    per_process = batch_size // jax.process_count()
    ds = grain.MapDataset.source(list(examples))[jax.process_index() :: jax.process_count()]
    if len(ds) < per_process:
        raise ValueError(f"only {len(ds)} training examples for a per-process batch of {per_process}.")
    ds = ds.shuffle(seed=seed).repeat(None).batch(per_process, drop_remainder=True)
    return iter(ds.to_iter_dataset())


def eval_batches(examples: Sequence[Example], batch_size: int) -> Iterator[Example]:
    """Every example exactly once, in order; the last batch is padded and carries ``weight`` 0 rows."""
    for start in range(0, len(examples), batch_size):
        chunk = list(examples[start : start + batch_size])
        weight = np.zeros(batch_size, np.float32)
        weight[: len(chunk)] = 1.0
        chunk += [chunk[-1]] * (batch_size - len(chunk))
        batch = {k: np.stack([ex[k] for ex in chunk]) for k in chunk[0]}
        batch["weight"] = weight
        yield batch
