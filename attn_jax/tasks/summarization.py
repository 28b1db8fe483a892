"""Summarization: a pointer-generator network with coverage (See et al., 2017); headline metric ``rougeL``.

Words, not subwords, as in the paper: the pointer copies whole source words, and a word outside the
vocabulary is exactly what it must copy. The vocabulary is the ``data.vocab_size`` most frequent
lower-cased words of the training split (punctuation split off), kept in the workdir as ``vocab.txt``.
Each example numbers the source words outside it in an extended vocabulary
(`attn_jax.data.copy_vocab`), so the model learns to copy rare names and numbers that it could never
generate. ``model.copy=False`` trains the same network without the copy distribution, to show what
copying buys; ``model.coverage`` feeds the attention history to the attention, and
``model.coverage_loss_weight`` weights the coverage loss (See et al., eq. 13).
"""

from __future__ import annotations

import functools
import re
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from attn_jax.data import copy_vocab
from attn_jax.data.tokenizers import WordTokenizer
from attn_jax.errors import UserError
from attn_jax.models.pointer_generator import PointerGeneratorModel
from attn_jax.tasks.base import Batch
from attn_jax.tasks.seq2seq import Seq2SeqTask, StepFn
from attn_jax.viz import collect_attention_weights

# Words are runs of letters and digits (with inner apostrophes); every other visible character is a word.
_WORDS = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


class SummarizationTask(Seq2SeqTask):
    """Document -> summary with copying from the document."""

    headline_metric = "rougeL"
    truncate_long_sources = True  # the lead of a long document still makes a training pair
    decode_keys = ("src", "src_ext")
    source_words_key = "src_ext"

    # ----------------------------------------------------------------------------------- data

    def _normalize(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Lower-cased words separated by single spaces (ROUGE lower-cases and drops punctuation anyway)."""
        return [(_words(source), _words(target)) for source, target in pairs]

    def _tokenizer(self, train_pairs: list[tuple[str, str]]) -> WordTokenizer:
        path = self.workdir / "vocab.txt"
        if path.exists():
            return WordTokenizer.load(path)
        texts = (text for pair in train_pairs for text in pair)
        tokenizer = WordTokenizer.fit(texts, self.config.data.vocab_size, sequence_marks=True)
        tokenizer.save(path)  # every host of a multi-host run writes the same bytes
        return tokenizer

    def _oovs(self, source_words: list[str]) -> list[str]:
        return copy_vocab.source_oovs(source_words, self.tokenizer, self.config.model.max_oovs)

    def _encode(self, source: str, target: str) -> Batch:
        data, tok = self.config.data, self.tokenizer
        src_words = tok.words(source)[: data.max_source_len - 1]  # room for EOS
        tgt_words = tok.words(target)[: data.max_target_len - 1]
        oovs = self._oovs(src_words)
        src_ext = copy_vocab.extended_ids(src_words, tok, oovs, self.vocab_size)
        tgt_ext = copy_vocab.extended_ids(tgt_words, tok, oovs, self.vocab_size)
        return {
            "src": _padded([*tok.ids(src_words), tok.eos_id], data.max_source_len),
            "src_ext": _padded([*src_ext, tok.eos_id], data.max_source_len),
            # The decoder reads in-vocabulary ids (a copied word goes back in as <unk>) and predicts
            # extended ids.
            "tgt_in": _padded([tok.bos_id, *tok.ids(tgt_words)], data.max_target_len),
            "tgt_out": _padded([*tgt_ext, tok.eos_id], data.max_target_len),
        }

    def words(self, ids: np.ndarray, source: str) -> list[str]:
        src_words = self.tokenizer.words(source)[: self.config.data.max_source_len - 1]
        return copy_vocab.extended_words(ids, self.tokenizer, self._oovs(src_words), self.vocab_size)

    def detokenize(self, ids: np.ndarray, source: str) -> str:
        marks = (self.tokenizer.bos_id, self.tokenizer.eos_id)
        return " ".join(self.words(np.asarray([i for i in ids if i not in marks]), source))

    def unused_ids(self, vocab: int) -> Array:
        ids = jnp.arange(vocab)
        # Between the tokenizer's words and the first OOV lie ids that only round the vocabulary up.
        return (ids >= self.tokenizer.vocab_size) & (ids < self.vocab_size)

    # ---------------------------------------------------------------------------- the model

    @functools.cached_property
    def model(self) -> PointerGeneratorModel:
        m = self.config.model
        if m.name != "pointer_generator":
            raise UserError(f"Unknown summarization model {m.name!r}; valid models: pointer_generator.")
        if m.max_oovs < 0:
            raise UserError(f"model.max_oovs must be >= 0, got {m.max_oovs}.")
        return PointerGeneratorModel(
            vocab_size=self.vocab_size,
            max_oovs=m.max_oovs,
            embed_dim=m.embed_dim,
            hidden_dim=m.hidden_dim,
            attention_units=m.get("attention_units"),
            copy=m.copy,
            coverage=m.coverage,
            unk_id=self.tokenizer.unk_id,
            dropout_rate=m.dropout_rate,
            dtype=jnp.dtype(self.config.dtype),
        )

    def init_params(self, rng: Array) -> Any:
        shape = (self.config.train.batch_size,)
        src = jnp.ones((*shape, self.config.data.max_source_len), jnp.int32)
        tgt = jnp.ones((*shape, self.config.data.max_target_len), jnp.int32)
        return self.model.init(rng, src, src, tgt)["params"]

    def forward(self, params: Any, batch: Batch, rng: Array | None) -> tuple[Array, Array]:
        log_probs, aux = self.model.apply(
            {"params": params},
            batch["src"],
            batch["src_ext"],
            batch["tgt_in"],
            deterministic=rng is None,
            rngs=None if rng is None else {"dropout": rng},
        )  # [batch, tgt_len, vocab + max_oovs]
        mask = batch["tgt_out"] != 0  # [batch, tgt_len]
        coverage = jnp.sum(aux["coverage_loss"] * mask) / jnp.maximum(jnp.sum(mask), 1)
        return log_probs, self.config.model.coverage_loss_weight * coverage

    def decoding_state(self, params: Any, inputs: dict[str, Array]) -> tuple[StepFn, Any]:
        model, variables = self.model, {"params": params}
        memory = model.apply(variables, inputs["src"], inputs["src_ext"], method=model.encode)
        cache = model.apply(variables, memory, method=model.init_cache)

        def step(tokens: Array, cache: Any) -> tuple[Array, Any]:
            return model.apply(variables, tokens, cache, method=model.decode_step)

        return step, cache

    def alignment(self, params: Any, batch: Batch) -> np.ndarray:
        _, state = self.model.clone(sow_weights=True).apply(
            {"params": params},
            *(jnp.asarray(batch[k]) for k in ("src", "src_ext", "tgt_in")),
            mutable=["intermediates"],
        )
        [weights] = collect_attention_weights(state).values()
        return np.asarray(jax.device_get(weights))  # [batch, tgt_len, src_len]


def _words(text: str) -> str:
    return " ".join(_WORDS.findall(text.lower()))


def _padded(ids: list[int], length: int) -> np.ndarray:
    out = np.zeros(length, np.int32)
    out[: len(ids)] = ids
    return out
