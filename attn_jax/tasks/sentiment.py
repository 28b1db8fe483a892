"""Sentiment classification: text -> positive / negative, read out by attention pooling."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import flax.linen as nn
import grain
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

from attn_jax.data import batching
from attn_jax.data.builtin import sentiment as builtin_sentiment
from attn_jax.data.sources import parse_source
from attn_jax.data.tokenizers import WordTokenizer
from attn_jax.errors import UserError
from attn_jax.models.classifier import TransformerClassifier
from attn_jax.tasks.base import Batch, Metrics, Task

SOURCES = {"builtin": ("sentiment",)}
MODELS = ("transformer",)


class SentimentTask(Task):
    """Binary sentiment of a review; headline metric ``accuracy``."""

    headline_metric = "accuracy"
    higher_is_better = True

    def __init__(self, config, workdir):
        super().__init__(config, workdir)
        parse_source(config.data.source, SOURCES)
        train = builtin_sentiment.generate("train", config.data.get("train_size"), seed=config.seed)
        evaluation = builtin_sentiment.generate("validation", config.data.get("eval_size"), seed=config.seed)
        vocab_path = workdir / "vocab.txt"
        if vocab_path.exists():
            self.tokenizer = WordTokenizer.load(vocab_path)
        else:
            self.tokenizer = WordTokenizer.fit((ex.text for ex in train), config.data.vocab_size)
            self.tokenizer.save(vocab_path)
        self._train = [self._encode(ex.text, ex.label) for ex in train]
        self._eval = [self._encode(ex.text, ex.label) for ex in evaluation]
        self.labels = builtin_sentiment.LABELS

    def _encode(self, text: str, label: int) -> dict[str, np.ndarray]:
        return {
            "tokens": self.tokenizer.encode(text, self.config.data.max_len),
            "label": np.int32(label),
        }

    @functools.cached_property
    def model(self) -> nn.Module:
        m = self.config.model
        if m.name not in MODELS:
            raise UserError(f"Unknown sentiment model {m.name!r}; valid models: {', '.join(MODELS)}.")
        return TransformerClassifier(
            vocab_size=self.tokenizer.vocab_size,
            num_classes=len(builtin_sentiment.LABELS),
            embed_dim=m.embed_dim,
            num_layers=m.num_layers,
            num_heads=m.num_heads,
            mlp_dim=m.mlp_dim,
            dropout_rate=m.dropout_rate,
            pooling_units=m.pooling_units,
            dtype=jnp.dtype(self.config.dtype),
        )

    def train_iterator(self) -> grain.DatasetIterator:
        return batching.train_batches(self._train, self.config.train.batch_size, self.config.seed)

    def eval_iterator(self) -> Iterator[Batch]:
        return batching.eval_batches(self._eval, self.config.train.batch_size)

    def init_params(self, rng: Array) -> Any:
        tokens = jnp.zeros((self.config.train.batch_size, self.config.data.max_len), jnp.int32)
        return self.model.init(rng, tokens)["params"]

    def loss_and_metrics(self, params: Any, batch: Batch, rng: Array | None) -> tuple[Array, Metrics]:
        logits = self.model.apply(
            {"params": params},
            batch["tokens"],
            deterministic=rng is None,
            rngs=None if rng is None else {"dropout": rng},
        )  # [batch, classes]
        weight = batch.get("weight", jnp.ones(logits.shape[0], jnp.float32))
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
        correct = (jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32)
        count = jnp.sum(weight)
        metrics = {
            "loss": (jnp.sum(losses * weight), count),
            "accuracy": (jnp.sum(correct * weight), count),
        }
        return jnp.sum(losses * weight) / jnp.maximum(count, 1.0), metrics

    def tokens_in(self, batch: Batch) -> int:
        return int(np.count_nonzero(batch["tokens"]))
