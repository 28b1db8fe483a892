"""Location-aware attention of Chorowski et al. (2015), "Attention-Based Models for Speech Recognition",
for one decoder step."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
from jax import Array
from jax.typing import ArrayLike

from attn_jax.attention.location import location_features
from attn_jax.layers.additive import AdditiveAttention

Initializer = Any


class LocationAwareAttention(AdditiveAttention):
    """Location-aware (hybrid) attention (Chorowski et al., 2015), as used by Listen-Attend-Spell.

    ``f = F * alpha_prev`` (a 1-D convolution of the previous weights, see
    :func:`attn_jax.attention.location_features`),
    ``e_j = w^T tanh(W s + V h_j + U f_j + b)``, ``alpha = softmax(e)``, ``c = sum_j alpha_j h_j``.

    The state ``alpha_prev`` is passed in and the new weights come out; start a sequence with zeros or
    with all weight on the first position. The keys ``V h_j + b`` are the same at every step:
    compute them once with :meth:`project_memory` and pass them as ``projected_memory``.

    Attributes:
      units: size of the hidden layer of the score.
      num_filters: number of location filters ``k`` (channels of ``f``).
      filter_width: taps of each filter ``r`` (odd keeps ``f_j`` centred on ``j``).
      dtype: computation dtype of projections and context (inferred when ``None``); weights are float32.
      param_dtype: dtype of the parameters.
      kernel_init: initialiser of ``W``, ``V`` and ``U``.
      bias_init: initialiser of ``b``.
      filter_init: initialiser of ``F``.
      v_init: initialiser of ``w``.
      sow_weights: sow the weights ``[batch..., kv_len]`` as ``intermediates/attention_weights``.

    Params: ``query_proj/kernel [q_features, units]`` (``W``), ``memory_proj/kernel [features, units]``
    and ``memory_proj/bias [units]`` (``V``, ``b``), ``location_filters [filter_width, num_filters]``
    (``F``), ``location_proj/kernel [num_filters, units]`` (``U``), ``v [units]`` (``w``).
    """

    use_bias: bool = True  # the paper's b
    num_filters: int = 10
    filter_width: int = 31
    filter_init: Initializer = nn.initializers.lecun_normal()

    def setup(self) -> None:
        super().setup()  # W (query_proj), V and b (memory_proj), w (v)
        self.location_proj = nn.Dense(
            self.units,
            use_bias=False,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=self.kernel_init,
        )  # U
        self.location_filters = self.param(
            "location_filters",
            self.filter_init,
            (self.filter_width, self.num_filters),
            self.param_dtype,
        )  # F

    def __call__(
        self,
        query: ArrayLike,
        memory: ArrayLike,
        prev_weights: ArrayLike,
        mask: ArrayLike | None = None,
        *,
        projected_memory: ArrayLike | None = None,
    ) -> tuple[Array, Array]:
        """Attend from one decoder state, knowing the previous step's weights.

        Args:
          query: ``[batch..., q_features]`` decoder state ``s_{i-1}``.
          memory: ``[batch..., kv_len, features]`` encoder outputs ``h``.
          prev_weights: ``[batch..., kv_len]`` the previous step's weights ``alpha_{i-1}``.
          mask: optional boolean ``[batch..., kv_len]``, True = may attend.
          projected_memory: ``project_memory(memory)``, if already computed.

        Returns:
          ``(context [batch..., features], weights [batch..., kv_len] float32)``; feed ``weights`` back
          as the next step's ``prev_weights``.
        """
        keys = self.project_memory(memory) if projected_memory is None else projected_memory
        prev_weights, filters = nn.dtypes.promote_dtype(
            prev_weights, self.location_filters, dtype=self.dtype
        )
        features = location_features(prev_weights, filters)  # [batch..., kv_len, num_filters]
        keys = keys + self.location_proj(features)  # [batch..., kv_len, units]
        return self.attend(query, keys, memory, mask)
