"""What translation and summarization share: text pairs -> token arrays, teacher-forced loss, decoded eval.

A subclass supplies the model (``model``), how a step function decodes it (``decoding_state``) and how a
batch runs through it (``forward``); this class does the rest: a SentencePiece vocabulary shared by source
and target, trained on the training split and kept in the workdir (a subclass may use another
tokenizer); length filtering with counts in the log; label-smoothed cross-entropy; and at every eval,
beam-search outputs for the first
``decode.num_examples`` eval pairs scored with BLEU and ROUGE and written to ``predictions/``, and
source-by-target alignment heatmaps written to ``attention/``.
"""

from __future__ import annotations

import abc
import functools
import json
import logging
import math
import pathlib
from collections.abc import Callable, Iterator
from typing import Any

import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

from attn_jax import decoding
from attn_jax.data import batching
from attn_jax.data.seq2seq_sources import load_pairs
from attn_jax.data.spm_tokenizer import SentencePieceTokenizer
from attn_jax.errors import UserError
from attn_jax.tasks.base import Batch, Metrics, Task
from attn_jax.tasks.text_scores import corpus_scores
from attn_jax.viz import attention_heatmap, save_figure

_LOG = logging.getLogger(__name__)
NUM_DRAWN = 3  # eval examples whose alignment is drawn at every eval
StepFn = Callable[[Array, Any], tuple[Array, Any]]


class Seq2SeqTask(Task):
    """Source text -> target text; headline metric ``bleu`` unless a subclass says otherwise."""

    headline_metric = "bleu"
    higher_is_better = True
    #: over-long training sources are truncated (summarization) instead of dropping the pair (translation).
    truncate_long_sources = False
    #: the example arrays that the decoder reads (``decoding_state``'s ``inputs``).
    decode_keys: tuple[str, ...] = ("src",)
    #: the example array whose words label the source axis of alignment plots.
    source_words_key = "src"

    def __init__(self, config, workdir):
        super().__init__(config, workdir)
        data = config.data
        train_pairs = self._normalize(load_pairs(data, "train", config.seed))
        self.eval_pairs = self._normalize(load_pairs(data, data.eval_split, config.seed))
        self.tokenizer = self._tokenizer(train_pairs)
        self._train = self._encode_all(train_pairs, "train", drop_long=True)
        self._eval = self._encode_all(self.eval_pairs, data.eval_split, drop_long=False)

    # ----------------------------------------------------------------------------------- data

    def _normalize(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The pairs as the tokenizer should see them (and as references are scored). Default: as read."""
        return pairs

    def _tokenizer(self, train_pairs: list[tuple[str, str]]) -> SentencePieceTokenizer:
        """Shared source/target SentencePiece model (Kudo & Richardson, 2018) kept as ``spm.model``."""
        path = self.workdir / "spm.model"
        if path.exists():
            return SentencePieceTokenizer.load(path)
        texts = (text for pair in train_pairs for text in pair)
        return SentencePieceTokenizer.train(
            texts, self.config.data.vocab_size, path, max_sentences=self.config.data.get("spm_sentences")
        )

    def _encode_all(self, pairs: list[tuple[str, str]], split: str, *, drop_long: bool) -> list[Batch]:
        """Token arrays of each pair; pairs longer than the configured lengths are dropped from training
        (or, with ``truncate_long_sources``, truncated when only the source is too long) and truncated
        for eval (the references stay whole), and counted in the log either way."""
        src_len, tgt_len = self.config.data.max_source_len, self.config.data.max_target_len
        examples, dropped, truncated = [], 0, 0
        for source, target in pairs:
            # Room for EOS after the source and after the target.
            source_fits = self.tokenizer.count(source) < src_len
            target_fits = self.tokenizer.count(target) < tgt_len
            keep = not drop_long or (target_fits and (source_fits or self.truncate_long_sources))
            dropped += not keep
            truncated += keep and not (source_fits and target_fits)
            if keep:
                examples.append(self._encode(source, target))
        _LOG.info(
            "%s: %d pairs; of those longer than %d source / %d target tokens, %d dropped and %d truncated.",
            split,
            len(examples),
            src_len,
            tgt_len,
            dropped,
            truncated,
        )
        if not examples:
            raise UserError(
                f"No {split} pair fits in data.max_source_len={src_len} / data.max_target_len={tgt_len}; "
                "raise them."
            )
        return examples

    def _encode(self, source: str, target: str) -> Batch:
        tgt_out = self.tokenizer.encode(target, self.config.data.max_target_len, add_eos=True)
        return {
            "src": self.tokenizer.encode(source, self.config.data.max_source_len, add_eos=True),
            # Teacher forcing: the decoder reads BOS + target and predicts target + EOS.
            "tgt_in": np.concatenate([[self.tokenizer.bos_id], tgt_out[:-1]]).astype(np.int32),
            "tgt_out": tgt_out,
        }

    def train_iterator(self) -> grain.DatasetIterator:
        data, size, seed = self.config.data, self.config.train.batch_size, self.config.seed
        if not data.get("bucket_boundaries"):
            return batching.train_batches(self._train, size, seed)
        lengths = [max(np.count_nonzero(ex["src"]), np.count_nonzero(ex["tgt_out"])) for ex in self._train]
        edges = {*data.bucket_boundaries, max(data.max_source_len, data.max_target_len)}
        return batching.bucketed_train_batches(self._train, size, seed, lengths, sorted(edges))

    def eval_iterator(self) -> Iterator[Batch]:
        return batching.eval_batches(self._eval, self.config.train.batch_size)

    def tokens_in(self, batch: Batch) -> int:
        return int(np.count_nonzero(batch["src"]) + np.count_nonzero(batch["tgt_out"]))

    @property
    def vocab_size(self) -> int:
        """The model's vocabulary: the tokenizer's, rounded up so it shards evenly over ``tensor``."""
        return -(-self.tokenizer.vocab_size // 128) * 128

    # ---------------------------------------------------------------------------- the model

    @abc.abstractmethod
    def forward(self, params: Any, batch: Batch, rng: Array | None) -> tuple[Array, Array]:
        """Teacher-forced ``logits [batch, tgt_len, vocab]`` and any extra loss term (a scalar,
        already weighted; 0.0 if none). ``rng`` given: training (dropout, sampling) on."""

    @abc.abstractmethod
    def decoding_state(self, params: Any, inputs: dict[str, Array]) -> tuple[StepFn, Any]:
        """``(step_fn, state)`` for :mod:`attn_jax.decoding` over ``inputs`` (the ``decode_keys`` arrays
        of a batch, e.g. ``src [batch, src_len]``)."""

    @abc.abstractmethod
    def alignment(self, params: Any, batch: Batch) -> np.ndarray:
        """Teacher-forced attention of each target token over the source ``[batch, tgt_len, src_len]``."""

    def init_params(self, rng: Array) -> Any:
        shape = (self.config.train.batch_size,)
        src = jnp.ones((*shape, self.config.data.max_source_len), jnp.int32)
        tgt = jnp.ones((*shape, self.config.data.max_target_len), jnp.int32)
        return self.model.init(rng, src, tgt)["params"]

    def loss_and_metrics(self, params: Any, batch: Batch, rng: Array | None) -> tuple[Array, Metrics]:
        logits, extra_loss = self.forward(params, batch, rng)  # [batch, tgt_len, vocab]
        targets = batch["tgt_out"]
        weight = batch.get("weight", jnp.ones(targets.shape[0], jnp.float32))
        mask = (targets != 0) * weight[:, None]  # [batch, tgt_len]
        count = jnp.sum(mask)
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
        smoothing = self.config.train.get("label_smoothing", 0.0)
        labels = optax.smooth_labels(jax.nn.one_hot(targets, logits.shape[-1]), smoothing)
        smoothed = optax.softmax_cross_entropy(logits, labels)
        correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
        metrics = {
            "loss": (jnp.sum(nll * mask), count),  # per target token; perplexity = exp(loss)
            "accuracy": (jnp.sum(correct * mask), count),
        }
        return jnp.sum(smoothed * mask) / jnp.maximum(count, 1.0) + extra_loss, metrics

    # ----------------------------------------------------------------------------- decoding

    @functools.cached_property
    def _decode_batch(self) -> Callable[[Any, Array], Array]:
        d = self.config.decode

        @jax.jit
        def run(params: Any, inputs: dict[str, Array]) -> Array:
            model_step, state = self.decoding_state(params, inputs)

            def step(tokens: Array, state: Any) -> tuple[Array, Any]:
                logits, state = model_step(tokens, state)  # [batch, vocab]
                unused = self.unused_ids(logits.shape[-1])
                return jnp.where(unused, jnp.finfo(logits.dtype).min, logits), state

            batch_size = inputs[self.decode_keys[0]].shape[0]
            common = dict(
                batch_size=batch_size,
                max_len=d.max_len,
                bos_id=self.tokenizer.bos_id,
                eos_id=self.tokenizer.eos_id,
            )
            if d.beam_size == 1:
                return decoding.greedy_decode(step, state, **common)
            sequences, _ = decoding.beam_search(step, state, beam_size=d.beam_size, alpha=d.alpha, **common)
            return sequences[:, 0]  # the best beam, [batch, max_len]

        return run

    def unused_ids(self, vocab: int) -> Array:
        """``[vocab]`` bool: ids the decoder must never produce (those that only round the model's
        vocabulary up)."""
        return jnp.arange(vocab) >= self.tokenizer.vocab_size

    def words(self, ids: np.ndarray, source: str) -> list[str]:
        """The pieces of ``ids`` (padding dropped), for plot labels; ``source`` is the example's text."""
        return self.tokenizer.pieces(ids)

    def detokenize(self, ids: np.ndarray, source: str) -> str:
        """The text of decoded ``ids`` (up to EOS) of the example whose source text is ``source``."""
        return self.tokenizer.decode(ids)

    def generate(self, params: Any, examples: list[Batch], sources: list[str]) -> list[str]:
        """Decoded, detokenized outputs for encoded ``examples`` whose source texts are ``sources``, in
        fixed-size padded batches."""
        size = self.config.decode.batch_size
        outputs: list[str] = []
        for start in range(0, len(examples), size):
            chunk = examples[start : start + size]
            chunk += [chunk[0]] * (size - len(chunk))
            inputs = {k: jnp.asarray(np.stack([ex[k] for ex in chunk])) for k in self.decode_keys}
            tokens = np.asarray(jax.device_get(self._decode_batch(params, inputs)))  # [size, max_len]
            outputs += [
                self.detokenize(_until_eos(row, self.tokenizer.eos_id), source)
                for row, source in zip(tokens, sources[start : start + size], strict=False)
            ]
        return outputs

    def eval_extras(self, params: Any, metrics: dict[str, float], step: int) -> dict[str, float]:
        extras = {"perplexity": math.exp(min(metrics["loss"], 50.0))}
        count = self.config.decode.num_examples or len(self._eval)
        sources = [source for source, _ in self.eval_pairs[:count]]
        references = [target for _, target in self.eval_pairs[:count]]
        hypotheses = self.generate(params, self._eval[:count], sources)
        extras |= corpus_scores(hypotheses, references)
        if jax.process_index() == 0:
            self._write_predictions(step, hypotheses)
        return extras

    def _write_predictions(self, step: int, hypotheses: list[str]) -> None:
        directory = self.workdir / "predictions"
        directory.mkdir(parents=True, exist_ok=True)
        lines = (
            json.dumps(
                {"source": source, "reference": reference, "prediction": prediction}, ensure_ascii=False
            )
            for (source, reference), prediction in zip(self.eval_pairs, hypotheses, strict=False)
        )
        (directory / f"step_{step:07d}.jsonl").write_text("".join(f"{line}\n" for line in lines))

    # ----------------------------------------------------------------------- interpretation

    def write_attention(self, params: Any, directory: pathlib.Path, step: int) -> None:
        examples = self._eval[:NUM_DRAWN]
        batch = {k: np.stack([ex[k] for ex in examples]) for k in examples[0]}
        weights = self.alignment(params, batch)  # [n, tgt_len, src_len]
        for i, (ex, (source, _)) in enumerate(zip(examples, self.eval_pairs, strict=False)):
            src_pieces = self.words(ex[self.source_words_key], source)
            tgt_pieces = self.words(ex["tgt_out"], source)
            fig = attention_heatmap(
                weights[i, : len(tgt_pieces), : len(src_pieces)],
                src_pieces,
                tgt_pieces,
                title=f"step {step}: target (rows) attending to source (columns)",
            )
            save_figure(fig, directory / f"step_{step:07d}_example_{i}.png")

    def predict(self, params: Any, text: str) -> str:
        [(text, _)] = self._normalize([(text, "")])
        if self.tokenizer.count(text) == 0:
            raise UserError("--input has no text to work on.")
        output = self.generate(params, [self._encode(text, "")], [text])[0]
        # Where the model looks while it writes its own output.
        example = self._encode(text, output)
        weights = self.alignment(params, {k: v[None] for k, v in example.items()})
        src_pieces = self.words(example[self.source_words_key], text)
        tgt_pieces = self.words(example["tgt_out"], text)
        looked_at = ", ".join(
            f"{piece}<-{src_pieces[int(np.argmax(weights[0, t, : len(src_pieces)]))]}"
            for t, piece in enumerate(tgt_pieces)
        )
        return f"{output}\nmost attended source piece per output piece: {looked_at}"


def _until_eos(row: np.ndarray, eos_id: int) -> np.ndarray:
    ends = np.flatnonzero(row == eos_id)
    return row[: ends[0]] if len(ends) else row
