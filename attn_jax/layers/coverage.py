"""Coverage attention of See et al. (2017), "Get To The Point: Summarization with Pointer-Generator
Networks" (after the coverage model of Tu et al., 2016), for one decoder step."""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from attn_jax.attention.normalizers import softmax
from attn_jax.layers.additive import additive_step_logits, step_context, vector_init

Initializer = Any


class CoverageAttention(nn.Module):
    """Additive attention with a coverage vector (See et al., 2017; Tu et al., 2016).

    ``e_i = v^T tanh(W_h h_i + W_s s_t + w_c c_i + b_attn)``, ``a = softmax(e)``,
    ``context = sum_i a_i h_i``, and the coverage ``c = sum_{t' < t} a^{t'}`` is updated to ``c + a``.

    The coverage is passed in (zeros ``[batch..., kv_len]`` at the first step) and the updated one comes
    out. Add :func:`attn_jax.attention.coverage_loss` ``(weights, coverage)`` (the coverage *before* the
    update) to the training loss. The keys ``W_h h_i + b_attn`` are the same at every step: compute them
    once with :meth:`project_memory` and pass them as ``projected_memory``.

    Attributes:
      units: size of the hidden layer of the score.
      dtype: computation dtype of projections and context (inferred when ``None``); weights and coverage
        are float32.
      param_dtype: dtype of the parameters.
      kernel_init: initialiser of ``W_h`` and ``W_s``.
      bias_init: initialiser of ``b_attn``.
      coverage_init: initialiser of ``w_c``.
      v_init: initialiser of ``v``.
      sow_weights: sow the weights ``[batch..., kv_len]`` as ``intermediates/attention_weights``.

    Params: ``query_proj/kernel [q_features, units]`` (``W_s``), ``memory_proj/kernel
    [features, units]`` and ``memory_proj/bias [units]`` (``W_h``, ``b_attn``),
    ``coverage_weight [units]`` (``w_c``), ``v [units]``.
    """

    units: int
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Initializer = nn.initializers.lecun_normal()
    bias_init: Initializer = nn.initializers.zeros_init()
    coverage_init: Initializer = vector_init
    v_init: Initializer = vector_init
    sow_weights: bool = False

    def setup(self) -> None:
        dense = functools.partial(
            nn.Dense,
            self.units,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=self.kernel_init,
            bias_init=self.bias_init,
        )
        self.query_proj = dense(use_bias=False)  # W_s
        self.memory_proj = dense(use_bias=True)  # W_h, b_attn
        self.coverage_weight = self.param(
            "coverage_weight", self.coverage_init, (self.units,), self.param_dtype
        )  # w_c
        self.v = self.param("v", self.v_init, (self.units,), self.param_dtype)

    def project_memory(self, memory: ArrayLike) -> Array:
        """The keys ``W_h h_i + b_attn``: ``[batch..., kv_len, features]`` -> ``[..., kv_len, units]``."""
        return self.memory_proj(jnp.asarray(memory))

    def __call__(
        self,
        query: ArrayLike,
        memory: ArrayLike,
        coverage: ArrayLike,
        mask: ArrayLike | None = None,
        *,
        projected_memory: ArrayLike | None = None,
    ) -> tuple[Array, Array, Array]:
        """Attend from one decoder state and update the coverage.

        Args:
          query: ``[batch..., q_features]`` decoder state ``s_t``.
          memory: ``[batch..., kv_len, features]`` encoder outputs ``h``.
          coverage: ``[batch..., kv_len]`` sum of the previous steps' weights.
          mask: optional boolean ``[batch..., kv_len]``, True = may attend.
          projected_memory: ``project_memory(memory)``, if already computed.

        Returns:
          ``(context [batch..., features], weights [batch..., kv_len] float32,
          new_coverage [batch..., kv_len] float32)`` with ``new_coverage = coverage + weights``.
        """
        keys = self.project_memory(memory) if projected_memory is None else projected_memory
        coverage = jnp.asarray(coverage, jnp.float32)
        cov, w_c = nn.dtypes.promote_dtype(coverage[..., None], self.coverage_weight, dtype=self.dtype)
        keys = keys + cov * w_c  # [batch..., kv_len, units]
        weights = softmax(additive_step_logits(self.query_proj(jnp.asarray(query)), keys, self.v), mask)
        if self.sow_weights:
            self.sow("intermediates", "attention_weights", weights)
        (values,) = nn.dtypes.promote_dtype(memory, dtype=self.dtype)
        return step_context(weights, values), weights, coverage + weights
