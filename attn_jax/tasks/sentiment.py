"""Sentiment classification: text -> positive / negative, read out by attention pooling."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import flax.linen as nn
import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

from attn_jax.data import batching
from attn_jax.data.spm_tokenizer import SentencePieceTokenizer
from attn_jax.data.text_classification import load_split
from attn_jax.data.tokenizers import WordTokenizer
from attn_jax.errors import UserError
from attn_jax.models.classifier import TransformerClassifier
from attn_jax.models.rnn_classifier import BiLSTMClassifier
from attn_jax.tasks.base import Batch, Metrics, Task
from attn_jax.viz import collect_attention_weights, save_figure, token_weights_figure

NUM_DRAWN = 4  # eval examples whose pooling attention is drawn at every eval
POOL_WEIGHTS = "pool/attention_weights"
MODELS = ("transformer", "bilstm")
POSITIONS = ("sinusoidal", "rotary", "alibi", "relative")


class SentimentTask(Task):
    """Binary sentiment of a review; headline metric ``accuracy``."""

    headline_metric = "accuracy"
    higher_is_better = True

    def __init__(self, config, workdir):
        super().__init__(config, workdir)
        self.labels = tuple(config.data.labels)
        train = load_split(config.data, "train", config.seed)
        evaluation = load_split(config.data, config.data.eval_split, config.seed)
        self.tokenizer = self._tokenizer([text for text, _ in train])
        self._train = [self._encode(text, label) for text, label in train]
        self._eval = [self._encode(text, label) for text, label in evaluation]

    def _tokenizer(self, train_texts: list[str]) -> WordTokenizer | SentencePieceTokenizer:
        """Trained on the training split and kept in the workdir, so later runs reuse it exactly."""
        kind, size = self.config.data.tokenizer, self.config.data.vocab_size
        if kind == "word":
            path = self.workdir / "vocab.txt"
            if path.exists():
                return WordTokenizer.load(path)
            tokenizer = WordTokenizer.fit(train_texts, size)
            if jax.process_index() == 0:
                tokenizer.save(path)
            return tokenizer
        if kind == "sentencepiece":
            path = self.workdir / "spm.model"
            if path.exists():
                return SentencePieceTokenizer.load(path)
            return SentencePieceTokenizer.train(train_texts, size, path)
        raise UserError(f"Unknown tokenizer {kind!r}; valid: word, sentencepiece.")

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
        if m.name == "transformer" and m.position not in POSITIONS:
            raise UserError(f"Unknown position scheme {m.position!r}; valid: {', '.join(POSITIONS)}.")
        common = dict(
            vocab_size=_round_up(self.tokenizer.vocab_size, 128),  # shards evenly over "tensor"
            num_classes=len(self.labels),
            embed_dim=m.embed_dim,
            dropout_rate=m.dropout_rate,
            dtype=jnp.dtype(self.config.dtype),
        )
        if m.name == "bilstm":
            return BiLSTMClassifier(hidden_dim=m.hidden_dim, attention_units=m.pooling_units, **common)
        return TransformerClassifier(
            num_layers=m.num_layers,
            num_heads=m.num_heads,
            mlp_dim=m.mlp_dim,
            pooling_units=m.pooling_units,
            position=m.position,
            **common,
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

    def _weights_and_probs(self, params: Any, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pooling attention ``[batch, len]`` and class probabilities ``[batch, classes]``."""
        logits, state = self.model.clone(sow_weights=True).apply(
            {"params": params}, jnp.asarray(tokens), mutable=["intermediates"]
        )
        weights = collect_attention_weights(state)[POOL_WEIGHTS]
        return weights, np.asarray(jax.nn.softmax(logits))

    def write_attention(self, params: Any, directory, step: int) -> None:
        examples = self._eval[:NUM_DRAWN]
        tokens = np.stack([ex["tokens"] for ex in examples])
        weights, probs = self._weights_and_probs(params, tokens)
        for i, ex in enumerate(examples):
            length = int(np.count_nonzero(ex["tokens"]))
            predicted = int(probs[i].argmax())
            label = f"{self.labels[predicted]} p={probs[i, predicted]:.2f} (true: {self.labels[ex['label']]})"
            fig = token_weights_figure(
                self.tokenizer.pieces(ex["tokens"][:length]),
                weights[i, :length],
                title=f"step {step}: pooling attention",
                label=label,
            )
            save_figure(fig, directory / f"step_{step:07d}_example_{i}.png")

    def predict(self, params: Any, text: str) -> str:
        tokens = self.tokenizer.encode(text, self.config.data.max_len)[None]
        length = int(np.count_nonzero(tokens))
        if length == 0:
            raise UserError("--input has no words to classify.")
        weights, probs = self._weights_and_probs(params, tokens)
        predicted = int(probs[0].argmax())
        words = self.tokenizer.pieces(tokens[0, :length])
        top = np.argsort(-weights[0, :length])[:5]
        attended = ", ".join(f"{words[j]} ({weights[0, j]:.2f})" for j in top)
        return f"{self.labels[predicted]} (p={probs[0, predicted]:.3f})\nattended to: {attended}"

    def tokens_in(self, batch: Batch) -> int:
        return int(np.count_nonzero(batch["tokens"]))


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple
