"""The pointer-generator network with coverage for summarization (See et al., 2017).

"Get To The Point: Summarization with Pointer-Generator Networks": a BiLSTM encoder, an LSTM decoder with
additive attention plus a coverage vector (Tu et al., 2016), and an output that mixes generating from the
fixed vocabulary with copying source words by their attention, so words outside the vocabulary (OOVs) can
be produced. Words are numbered in an *extended vocabulary*: ids ``< vocab_size`` are the fixed
vocabulary, ids ``vocab_size + k`` the example's ``k``-th distinct source OOV (see
:mod:`attn_jax.attention.pointer`).

The model follows the decode protocol of :mod:`attn_jax.models.rnn_seq2seq` (``encode``, ``init_cache``,
``decode_step``) and shares one decoder step between teacher forcing (``nn.scan``) and decoding.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jax import Array

from attn_jax.attention.location import coverage_loss
from attn_jax.layers.coverage import CoverageAttention
from attn_jax.layers.pointer import PointerGenerator
from attn_jax.models.rnn_seq2seq import SCAN_RNGS, BidirectionalEncoder

Carry = Any


class PointerGeneratorStep(nn.Module):
    """One decoder step of the pointer-generator (See et al., 2017, sections 2.1-2.3).

    ``x_t = W_x [y_{t-1}; h*_{t-1}]`` (input feeding of the previous context), ``s_t = LSTM(s_{t-1}, x_t)``,
    coverage attention ``a_t = softmax(v^T tanh(W_h h_i + W_s s_t + w_c c_i^t + b_attn))`` with
    ``c^t = sum_{t' < t} a^{t'}``, context ``h*_t = sum_i a_t,i h_i``,
    ``P_vocab = softmax(V' (V [s_t; h*_t] + b) + b')`` and the final distribution from
    :class:`~attn_jax.layers.PointerGenerator` (``p_gen`` from ``h*_t``, ``s_t``, ``x_t``). The
    decoder state ``s_t`` seen by the attention and ``p_gen`` is the LSTM's ``[c; h]``, as in the
    authors' code.

    ``(state, source, y [batch, embed]) -> (state, outputs)``; ``state`` holds ``lstm`` (``(c, h)``),
    ``context [batch, 2 * hidden]`` and ``coverage [batch, S]``; ``source`` holds ``memory``, ``keys``,
    ``mask`` and ``src_ext [batch, S]``; ``outputs`` holds float32 ``log_probs [batch, V + max_oovs]``,
    ``weights [batch, S]``, ``p_gen [batch]`` and ``coverage_loss [batch]`` (See et al., eq. 12).
    """

    vocab_size: int
    max_oovs: int
    hidden_dim: int
    attention_units: int
    copy: bool = True
    coverage: bool = True
    dropout_rate: float = 0.0
    dtype: Any = None

    def setup(self) -> None:
        self.input_proj = nn.Dense(self.hidden_dim, dtype=self.dtype)  # W_x (the paper's "linear")
        self.lstm = nn.OptimizedLSTMCell(self.hidden_dim, dtype=self.dtype)
        self.attend = CoverageAttention(units=self.attention_units, dtype=self.dtype)
        self.hidden_proj = nn.Dense(self.hidden_dim, dtype=self.dtype)  # V, b
        self.vocab_proj = nn.Dense(self.vocab_size, dtype=self.dtype)  # V', b'
        self.pointer = PointerGenerator(copy=self.copy, dtype=self.dtype)
        self.dropout = nn.Dropout(self.dropout_rate)

    def project_memory(self, memory: Array) -> Array:
        """``W_h h_i + b_attn``, once per source: ``[batch, S, 2 * hidden] -> [batch, S, units]``."""
        return self.attend.project_memory(memory)

    def __call__(
        self, state: dict[str, Any], source: dict[str, Array], y: Array, *, deterministic: bool = True
    ) -> tuple[dict[str, Any], dict[str, Array]]:
        memory, mask = source["memory"], source["mask"]
        x = self.input_proj(jnp.concatenate([y, state["context"].astype(y.dtype)], axis=-1))  # x_t
        carry, h = self.lstm(state["lstm"], x)
        s = jnp.concatenate(carry, axis=-1)  # s_t = [c; h], [batch, 2 * hidden]
        coverage = state["coverage"]  # c^t, [batch, S]
        seen = coverage if self.coverage else jnp.zeros_like(coverage)
        context, weights, _ = self.attend(s, memory, seen, mask, projected_memory=source["keys"])
        out = self.hidden_proj(jnp.concatenate([h, context.astype(h.dtype)], axis=-1))
        vocab_logits = self.vocab_proj(self.dropout(out, deterministic=deterministic))  # [batch, vocab]
        log_probs, p_gen = self.pointer(
            vocab_logits,
            weights,
            context,
            s,
            x,
            source["src_ext"],
            self.vocab_size + self.max_oovs,
            mask,
        )  # [batch, vocab_size + max_oovs]
        new_state = {"lstm": carry, "context": context.astype(jnp.float32), "coverage": coverage + weights}
        outputs = {
            "log_probs": log_probs,
            "weights": weights,
            "p_gen": p_gen,
            "coverage_loss": coverage_loss(weights, coverage, mask),
        }
        return new_state, outputs


class PointerGeneratorModel(nn.Module):
    """Pointer-generator network with coverage (See et al., 2017) for abstractive summarization.

    A shared embedding feeds a BiLSTM encoder (``hidden_dim`` units per direction) and an LSTM decoder
    (``hidden_dim`` units) started from the encoder's final states reduced by ``ReLU(W [fwd; bwd] + b)``;
    each step is a :class:`PointerGeneratorStep`. With ``copy=False`` the same architecture is a plain
    attentional seq2seq whose extended-vocabulary outputs get probability ``~0`` (an ablation showing
    what copying buys); with ``coverage=False`` the attention ignores the coverage vector (the coverage
    loss is still reported, so the coverage phase of the paper can be switched on later).

    Inputs: ``src [batch, S]`` in-vocabulary ids (OOVs mapped to ``unk_id``, 0 = pad),
    ``src_ext [batch, S]`` the same words in the extended vocabulary (OOVs numbered
    ``vocab_size + k`` per example), ``tgt_in [batch, T]`` BOS-shifted target in-vocabulary ids (ids
    ``>= vocab_size`` are mapped to ``unk_id`` here too). Outputs are float32 log-probabilities over the
    ``vocab_size + max_oovs`` extended vocabulary.

    Attributes:
      vocab_size: fixed vocabulary size (0 = pad, ``unk_id`` = unknown).
      max_oovs: static number of per-example OOV slots in the extended vocabulary.
      embed_dim: embedding size (128 in the paper).
      hidden_dim: LSTM size (256 in the paper).
      attention_units: hidden size of the attention score (``None``: ``2 * hidden_dim``).
      copy: mix in the copy distribution (False = no pointer, for comparison).
      coverage: feed the coverage vector to the attention.
      unk_id: id of the unknown word.
      dropout_rate: dropout on the embeddings and before the vocabulary projection.
      dtype: computation dtype (``None``: inferred).
      sow_weights: sow the attention weights ``[batch, T, S]`` (``[batch, S]`` from ``decode_step``) as
        ``intermediates/attention_weights``.

    Params: ``embed``, ``encoder/birnn/...``, ``reduce_c``, ``reduce_h``, ``decoder/{input_proj, lstm,
    attend, hidden_proj, vocab_proj, pointer}``.
    """

    vocab_size: int
    max_oovs: int
    embed_dim: int = 128
    hidden_dim: int = 256
    attention_units: int | None = None
    copy: bool = True
    coverage: bool = True
    unk_id: int = 1
    dropout_rate: float = 0.0
    dtype: Any = None
    sow_weights: bool = False

    def setup(self) -> None:
        if self.max_oovs < 0:
            raise ValueError(f"PointerGeneratorModel needs max_oovs >= 0, got {self.max_oovs}.")
        if not 0 <= self.unk_id < self.vocab_size:
            raise ValueError(f"unk_id ({self.unk_id}) must be a vocabulary id (< {self.vocab_size}).")
        self.embed = nn.Embed(
            self.vocab_size,
            self.embed_dim,
            embedding_init=nn.with_logical_partitioning(
                nn.initializers.normal(stddev=1.0), ("vocab", "embed")
            ),
            dtype=self.dtype,
        )
        self.encoder = BidirectionalEncoder(self.hidden_dim, "lstm", self.dtype)
        self.reduce_c = nn.Dense(self.hidden_dim, dtype=self.dtype)
        self.reduce_h = nn.Dense(self.hidden_dim, dtype=self.dtype)
        self.decoder = PointerGeneratorStep(
            vocab_size=self.vocab_size,
            max_oovs=self.max_oovs,
            hidden_dim=self.hidden_dim,
            attention_units=self.attention_units or 2 * self.hidden_dim,
            copy=self.copy,
            coverage=self.coverage,
            dropout_rate=self.dropout_rate,
            dtype=self.dtype,
        )
        self.dropout = nn.Dropout(self.dropout_rate)

    @property
    def extended_vocab_size(self) -> int:
        """``vocab_size + max_oovs``, the size of the output distribution."""
        return self.vocab_size + self.max_oovs

    def embed_tokens(self, tokens: Array) -> Array:
        """Embed in-vocabulary ids; ids ``>= vocab_size`` (copied OOVs) become ``unk_id``."""
        tokens = jnp.where(tokens >= self.vocab_size, self.unk_id, tokens)
        return self.embed(tokens)

    def encode(self, src: Array, src_ext: Array, *, deterministic: bool = True) -> dict[str, Any]:
        """``src, src_ext [batch, S]`` -> ``{'memory' [batch, S, 2 * hidden], 'mask', 'src_ext',
        'final'}`` with ``final`` the reduced ``(c, h)`` that starts the decoder."""
        mask = src != 0  # [batch, S]
        x = self.dropout(self.embed_tokens(src), deterministic=deterministic)  # [batch, S, embed_dim]
        memory, ((c_fwd, h_fwd), (c_bwd, h_bwd)) = self.encoder(x, mask)
        c = nn.relu(self.reduce_c(jnp.concatenate([c_fwd, c_bwd], axis=-1)))  # [batch, hidden]
        h = nn.relu(self.reduce_h(jnp.concatenate([h_fwd, h_bwd], axis=-1)))
        return {"memory": memory, "mask": mask, "src_ext": jnp.asarray(src_ext), "final": (c, h)}

    def init_cache(self, memory: dict[str, Any]) -> dict[str, Any]:
        """The decoding cache ``{'source': {memory, keys, mask, src_ext}, 'decoder': state}``.

        Every leaf has a leading batch axis, so beam search can tile and reorder it.
        """
        mem, mask = memory["memory"], memory["mask"]
        source = {
            "memory": mem,
            "keys": self.decoder.project_memory(mem),  # [batch, S, units]
            "mask": mask,
            "src_ext": memory["src_ext"],
        }
        state = {
            "lstm": memory["final"],
            "context": jnp.zeros(mem.shape[:1] + mem.shape[2:], jnp.float32),  # h*_0 = 0
            "coverage": jnp.zeros(mask.shape, jnp.float32),  # c^0 = 0
        }
        return {"source": source, "decoder": state}

    def decode_step(self, tokens: Array, cache: dict[str, Any]) -> tuple[Array, dict[str, Any]]:
        """One deterministic step: ``tokens [batch]`` in the extended vocabulary (the previous output;
        copied OOVs are fed back as ``unk_id``) -> ``(log_probs [batch, vocab_size + max_oovs], cache)``."""
        y = self.embed_tokens(tokens)  # [batch, embed_dim]
        state, outputs = self.decoder(cache["decoder"], cache["source"], y, deterministic=True)
        if self.sow_weights:
            self.sow("intermediates", "attention_weights", outputs["weights"])
        return outputs["log_probs"], {**cache, "decoder": state}

    def __call__(
        self, src: Array, src_ext: Array, tgt_in: Array, *, deterministic: bool = True
    ) -> tuple[Array, dict[str, Array]]:
        """Teacher-forced log-probabilities.

        Args:
          src: ``[batch, S]`` in-vocabulary source ids (OOV -> ``unk_id``, 0 = pad, right-padded).
          src_ext: ``[batch, S]`` source ids in the extended vocabulary.
          tgt_in: ``[batch, T]`` BOS-shifted target ids.
          deterministic: no dropout.

        Returns:
          ``(log_probs [batch, T, vocab_size + max_oovs] float32, aux)`` with ``aux['coverage_loss']``
          ``[batch, T]`` (``sum_i min(a_t,i, c_t,i)``, to be averaged over real target steps and weighted
          by the task) and ``aux['p_gen'] [batch, T]``.
        """
        cache = self.init_cache(self.encode(src, src_ext, deterministic=deterministic))
        y = self.dropout(self.embed_tokens(tgt_in), deterministic=deterministic)  # [batch, T, embed_dim]
        scan = nn.scan(
            lambda step, state, source, y_t: step(state, source, y_t, deterministic=deterministic),
            variable_broadcast="params",
            split_rngs=SCAN_RNGS,
            in_axes=(nn.broadcast, 1),
            out_axes=1,
        )
        _, outputs = scan(self.decoder, cache["decoder"], cache["source"], y)  # each [batch, T, ...]
        if self.sow_weights:
            self.sow("intermediates", "attention_weights", outputs["weights"])  # [batch, T, S]
        return outputs["log_probs"], {"coverage_loss": outputs["coverage_loss"], "p_gen": outputs["p_gen"]}
