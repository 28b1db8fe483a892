"""Attention that looks at where it attended before: location features and coverage.

- Location features (Chorowski et al., 2015, "Attention-Based Models for Speech Recognition"): the previous
  alignment ``alpha_{i-1}`` is convolved with learned filters ``F``, ``f_i = F * alpha_{i-1}``, and the
  features ``f_{i,j}`` enter the additive score, so the model knows where it is in the input.
- Coverage (Tu et al., 2016, "Modeling Coverage for Neural Machine Translation"; See et al., 2017,
  "Get To The Point"): the sum of all previous alignments ``c^t = sum_{t' < t} a^{t'}`` enters the score,
  and the coverage loss ``sum_i min(a_i^t, c_i^t)`` penalises attending again to what is already covered.
  The coverage update is simply ``c^{t+1} = c^t + a^t``.

Plain ``jnp`` functions; the filters and score weights live in :mod:`attn_jax.layers.location_aware`
and :mod:`attn_jax.layers.coverage`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike


def location_features(prev_weights: ArrayLike, filters: ArrayLike) -> Array:
    """Location features ``f = F * alpha_prev`` (Chorowski et al., 2015).

    A 1-D convolution of the previous alignment with ``channels`` filters of ``width`` taps, 'SAME'
    padded with zeros so that feature ``j`` is centred on position ``j``. Like every deep-learning
    "convolution" it is a cross-correlation, ``f[j, c] = sum_k alpha[j + k - (width - 1) // 2] F[k, c]``;
    for learned filters the two are the same thing.

    Args:
      prev_weights: ``[batch..., kv_len]`` previous attention weights ``alpha_{i-1}``.
      filters: ``[width, channels]`` filters ``F``.

    Returns:
      ``[batch..., kv_len, channels]`` features, in the promoted dtype of the two inputs.
    """
    prev_weights, filters = jnp.asarray(prev_weights), jnp.asarray(filters)
    dtype = jnp.result_type(prev_weights, filters)
    *batch, kv_len = prev_weights.shape
    lhs = prev_weights.reshape(-1, kv_len, 1).astype(dtype)  # [N, kv_len, 1]
    rhs = filters[:, None, :].astype(dtype)  # [width, 1, channels]
    out = jax.lax.conv_general_dilated(
        lhs, rhs, window_strides=(1,), padding="SAME", dimension_numbers=("NWC", "WIO", "NWC")
    )  # [N, kv_len, channels]
    return out.reshape(*batch, kv_len, filters.shape[-1])


def coverage_loss(weights: ArrayLike, coverage: ArrayLike, mask: ArrayLike | None = None) -> Array:
    """Coverage loss ``sum_i min(a_i^t, c_i^t)`` of one decoder step (See et al., 2017).

    Pass the coverage *before* this step's update (the sum of the previous steps' weights); the loss is
    bounded by 1 when ``weights`` sum to 1. Average it over decoder steps and add it to the task loss with
    a weight (``lambda = 1`` in the paper).

    Args:
      weights: ``[batch..., kv_len]`` attention weights ``a^t`` of this step.
      coverage: ``[batch..., kv_len]`` coverage ``c^t``.
      mask: optional boolean ``[batch..., kv_len]``; positions with False do not count.

    Returns:
      ``[batch...]`` float32 loss per query.
    """
    overlap = jnp.minimum(jnp.asarray(weights, jnp.float32), jnp.asarray(coverage, jnp.float32))
    if mask is not None:
        overlap = jnp.where(mask, overlap, 0.0)
    return jnp.sum(overlap, axis=-1)
