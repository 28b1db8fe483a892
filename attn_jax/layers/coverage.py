"""Coverage attention of See et al. (2017), "Get To The Point: Summarization with Pointer-Generator
Networks" (after the coverage model of Tu et al., 2016), for one decoder step."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from attn_jax.layers.additive import AdditiveAttention, vector_init

Initializer = Any


class CoverageAttention(AdditiveAttention):
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

    use_bias: bool = True  # the paper's b_attn
    coverage_init: Initializer = vector_init

    def setup(self) -> None:
        super().setup()  # W_s (query_proj), W_h and b_attn (memory_proj), v
        self.coverage_weight = self.param(
            "coverage_weight", self.coverage_init, (self.units,), self.param_dtype
        )  # w_c

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
        context, weights = self.attend(query, keys, memory, mask)
        return context, weights, coverage + weights
