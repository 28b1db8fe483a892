"""Global attention of Luong et al. (2015), "Effective Approaches to Attention-based Neural Machine
Translation", with its three score functions, for one decoder step."""

from __future__ import annotations

import functools
from typing import Any, Literal

import flax.linen as nn
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from attn_jax.attention.normalizers import softmax
from attn_jax.attention.scores import dot_scores
from attn_jax.layers.additive import additive_step_logits, read_out, vector_init

Initializer = Any
LuongScore = Literal["dot", "general", "concat"]
_SCORES = ("dot", "general", "concat")


class LuongAttention(nn.Module):
    """Luong global attention (Luong et al., 2015) of one decoder step.

    ``a_t(s) = softmax_s(score(h_t, h_s))`` and ``c_t = sum_s a_t(s) h_s`` with

    - ``'dot'``: ``score = h_t^T h_s`` (query and memory must have the same feature size; no params);
    - ``'general'``: ``score = h_t^T W_a h_s``;
    - ``'concat'``: ``score = v_a^T tanh(W_a [h_t; h_s]) = v_a^T tanh(W_q h_t + W_k h_s)``.

    For ``'general'`` the keys ``W_a h_s`` are precomputed once by :meth:`project_memory` (the same
    bilinear form as :func:`attn_jax.attention.general_scores`, evaluated in the cheaper order for a
    decoder that reuses its keys), so ``units`` must equal the query's feature size. Pass the
    precomputed keys as ``projected_memory``. Combining ``c_t`` with ``h_t`` into the attentional state
    ``tanh(W_c [c_t; h_t])`` is left to the decoder. Leading dimensions broadcast, so query
    ``[batch, q_len, q_features]`` with memory ``[batch, 1, kv_len, features]`` runs all steps at once.

    Attributes:
      score: ``'dot'``, ``'general'`` or ``'concat'``.
      units: the key size of ``'general'`` (= query features) or the hidden size of ``'concat'``;
        unused by ``'dot'``.
      dtype: computation dtype of projections and context (inferred when ``None``); weights are float32.
      param_dtype: dtype of the parameters.
      kernel_init: initialiser of the projection kernels.
      v_init: initialiser of ``v_a`` (``'concat'``).
      sow_weights: sow the weights ``[batch..., kv_len]`` as ``intermediates/attention_weights``.

    Params: ``'general'``: ``memory_proj/kernel [features, units]`` (``W_a^T``); ``'concat'``:
    ``query_proj/kernel [q_features, units]``, ``memory_proj/kernel [features, units]``, ``v [units]``.
    """

    score: LuongScore = "general"
    units: int | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Initializer = nn.initializers.lecun_normal()
    v_init: Initializer = vector_init
    sow_weights: bool = False

    def setup(self) -> None:
        if self.score not in _SCORES:
            raise ValueError(
                f"Unknown Luong score {self.score!r}; valid: {', '.join(_SCORES)}."
            )
        if self.score == "dot":
            return
        if self.units is None:
            raise ValueError(f"LuongAttention(score={self.score!r}) needs units=<int>.")
        dense = functools.partial(
            nn.Dense,
            self.units,
            use_bias=False,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=self.kernel_init,
        )
        self.memory_proj = dense()
        if self.score == "concat":
            self.query_proj = dense()
            self.v = self.param("v", self.v_init, (self.units,), self.param_dtype)

    def project_memory(self, memory: ArrayLike) -> Array:
        """The keys: ``h_s`` (``'dot'``) or ``W h_s``; ``[batch..., kv_len, features or units]``."""
        memory = jnp.asarray(memory)
        return memory if self.score == "dot" else self.memory_proj(memory)

    def alignment_logits(self, query: ArrayLike, projected_memory: ArrayLike) -> Array:
        """``score(h_t, h_s)``: query ``[batch..., q_features]`` -> ``[batch..., kv_len]`` float32."""
        query, keys = jnp.asarray(query), jnp.asarray(projected_memory)
        if self.score == "concat":
            return additive_step_logits(self.query_proj(query), keys, self.v)
        if query.shape[-1] != keys.shape[-1]:
            size = "memory features" if self.score == "dot" else "units"
            raise ValueError(
                f"LuongAttention(score={self.score!r}) needs query features ({query.shape[-1]}) "
                f"== {size} ({keys.shape[-1]})."
            )
        q = query[..., None, None, :]  # [batch..., 1 (q_len), 1 (heads), d]
        k = keys[..., :, None, :]  # [batch..., kv_len, 1 (heads), d]
        return dot_scores(q, k)[..., 0, 0, :]  # [batch..., kv_len]

    def __call__(
        self,
        query: ArrayLike,
        memory: ArrayLike,
        mask: ArrayLike | None = None,
        *,
        projected_memory: ArrayLike | None = None,
    ) -> tuple[Array, Array]:
        """Attend from one decoder state.

        Args:
          query: ``[batch..., q_features]`` decoder state ``h_t``.
          memory: ``[batch..., kv_len, features]`` encoder outputs ``h_s``.
          mask: optional boolean ``[batch..., kv_len]``, True = may attend.
          projected_memory: ``project_memory(memory)``, if already computed.

        Returns:
          ``(context [batch..., features], weights [batch..., kv_len] float32)``.
        """
        keys = self.project_memory(memory) if projected_memory is None else projected_memory
        weights = softmax(self.alignment_logits(query, keys), mask)  # [batch..., kv_len]
        return read_out(self, weights, memory)
