"""Additive attention for one decoder step (Bahdanau et al., 2015).

Also holds the two small building blocks shared by the other decoder-step ("classic") attentions of
this package: :func:`additive_step_logits` (the additive score for a single query) and
:func:`step_context` (the context vector for a single query).
"""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from attn_jax.attention.dot_product import weighted_sum
from attn_jax.attention.normalizers import softmax
from attn_jax.attention.scores import additive_scores

Initializer = Any

# A vector whose dot product with a unit-variance [units] input has unit variance: std = units**-0.5.
vector_init: Initializer = nn.initializers.variance_scaling(
    1.0, "fan_in", "truncated_normal", in_axis=-1, out_axis=()
)


def additive_step_logits(
    projected_query: ArrayLike, projected_memory: ArrayLike, v: ArrayLike
) -> Array:
    """Additive score ``e_j = v^T tanh(W s + U h_j)`` of one query (Bahdanau et al., 2015).

    :func:`attn_jax.attention.additive_scores` with a single head and a single query position.

    Args:
      projected_query: ``[batch..., units]``, the projected decoder state ``W s``.
      projected_memory: ``[batch..., kv_len, units]``, the projected keys ``U h_j`` plus any further
        per-position term (location or coverage features).
      v: ``[units]``.

    Returns:
      ``[batch..., kv_len]`` float32 logits.
    """
    q = jnp.asarray(projected_query)[..., None, None, :]  # [batch..., 1 (q_len), 1 (heads), units]
    k = jnp.asarray(projected_memory)[..., :, None, :]  # [batch..., kv_len, 1 (heads), units]
    return additive_scores(q, k, v)[..., 0, 0, :]  # [batch..., kv_len]


def step_context(weights: ArrayLike, memory: ArrayLike) -> Array:
    """Context vector ``c = sum_j a_j h_j`` of one query (Bahdanau et al., 2015).

    :func:`attn_jax.attention.weighted_sum` with a single head and a single query position.

    Args:
      weights: ``[batch..., kv_len]``.
      memory: ``[batch..., kv_len, features]``.

    Returns:
      ``[batch..., features]`` in the memory dtype.
    """
    w = jnp.asarray(weights)[..., None, None, :]  # [batch..., 1 (heads), 1 (q_len), kv_len]
    values = jnp.asarray(memory)[..., :, None, :]  # [batch..., kv_len, 1 (heads), features]
    return weighted_sum(w, values)[..., 0, 0, :]  # [batch..., features]



def read_out(module: nn.Module, weights: Array, memory: ArrayLike) -> tuple[Array, Array]:
    """Sow ``weights`` when ``module.sow_weights`` is set and return ``(context, weights)``.

    The last step shared by the decoder-step attentions: the context ``sum_j a_j h_j`` (Bahdanau et
    al., 2015) read from ``memory`` ``[batch..., kv_len, features]`` in ``module.dtype``.
    """
    if module.sow_weights:
        module.sow("intermediates", "attention_weights", weights)
    (values,) = nn.dtypes.promote_dtype(memory, dtype=module.dtype)
    return step_context(weights, values), weights

class AdditiveAttention(nn.Module):
    """Additive ("concat", "MLP") attention of one decoder step (Bahdanau et al., 2015).

    ``e_j = v^T tanh(W s + U h_j [+ b])``, ``a = softmax(e)``, ``c = sum_j a_j h_j``, where ``s`` is the
    decoder state (the query) and ``h_j`` the encoder outputs (the memory).

    The keys ``U h_j`` are the same at every decoder step: compute them once with
    :meth:`project_memory` and pass them as ``projected_memory`` (e.g. outside ``nn.scan``). Leading
    dimensions broadcast, so all steps of a teacher-forced decoder run at once with query
    ``[batch, q_len, q_features]`` and memory ``[batch, 1, kv_len, features]``.

    Attributes:
      units: size of the hidden layer of the score.
      use_bias: add a bias ``b`` inside the ``tanh`` (the paper has none).
      dtype: computation dtype of the projections and the context (inferred when ``None``); the
        weights are always float32.
      param_dtype: dtype of the parameters.
      kernel_init: initialiser of ``W`` and ``U``.
      bias_init: initialiser of ``b``.
      v_init: initialiser of ``v``.
      sow_weights: sow the weights ``[batch..., kv_len]`` as ``intermediates/attention_weights``.

    Params: ``query_proj/kernel [q_features, units]`` (``W``), ``memory_proj/kernel [features, units]``
    (``U``), ``memory_proj/bias [units]`` (``b``, with ``use_bias``), ``v [units]``.
    """

    units: int
    use_bias: bool = False
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Initializer = nn.initializers.lecun_normal()
    bias_init: Initializer = nn.initializers.zeros_init()
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
        self.query_proj = dense(use_bias=False)  # W
        self.memory_proj = dense(use_bias=self.use_bias)  # U, b
        self.v = self.param("v", self.v_init, (self.units,), self.param_dtype)

    def project_memory(self, memory: ArrayLike) -> Array:
        """The keys ``U h_j (+ b)``: ``[batch..., kv_len, features]`` -> ``[batch..., kv_len, units]``."""
        return self.memory_proj(jnp.asarray(memory))

    def alignment_logits(self, query: ArrayLike, projected_memory: ArrayLike) -> Array:
        """``e_j = v^T tanh(W s + U h_j)``: ``[batch..., q_features]`` -> ``[batch..., kv_len]`` float32."""
        return additive_step_logits(self.query_proj(jnp.asarray(query)), projected_memory, self.v)

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
          query: ``[batch..., q_features]`` decoder state ``s``.
          memory: ``[batch..., kv_len, features]`` encoder outputs ``h``.
          mask: optional boolean ``[batch..., kv_len]``, True = may attend.
          projected_memory: ``project_memory(memory)``, if already computed.

        Returns:
          ``(context [batch..., features], weights [batch..., kv_len] float32)``; a fully masked row
          has zero weights and a zero context.
        """
        keys = self.project_memory(memory) if projected_memory is None else projected_memory
        return self.attend(query, keys, memory, mask)

    def attend(
        self, query: ArrayLike, keys: ArrayLike, memory: ArrayLike, mask: ArrayLike | None
    ) -> tuple[Array, Array]:
        """Weights ``softmax(v^T tanh(W s + keys))`` (sown when asked) and the context they read.

        Subclasses that add a term to the keys (location, coverage) share this step.
        """
        weights = softmax(self.alignment_logits(query, keys), mask)  # [batch..., kv_len]
        return read_out(self, weights, memory)
