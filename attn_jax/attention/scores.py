"""Score (compatibility) functions: how well each query matches each key.

Every function takes already projected queries ``[batch..., q_len, heads, dim]`` and keys
``[batch..., kv_len, heads, dim]`` (plus the formula's own weights, where it has any) and returns
float32 logits ``[batch..., heads, q_len, kv_len]``, ready for a normaliser such as
:func:`attn_jax.attention.softmax`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike


def _logits_einsum(query: ArrayLike, key: ArrayLike) -> Array:
    # [batch..., q, h, d] x [batch..., k, h, d] -> [batch..., h, q, k], accumulated in float32.
    return jnp.einsum("...qhd,...khd->...hqk", query, key, preferred_element_type=jnp.float32)


def dot_scores(query: ArrayLike, key: ArrayLike) -> Array:
    """Dot-product score ``q . k`` (Luong et al., 2015, "dot").

    Args:
      query: ``[batch..., q_len, heads, dim]``.
      key: ``[batch..., kv_len, heads, dim]``.

    Returns:
      ``[batch..., heads, q_len, kv_len]`` float32 logits.
    """
    return _logits_einsum(query, key)


def scaled_dot_scores(query: ArrayLike, key: ArrayLike, scale: float | None = None) -> Array:
    """Scaled dot-product score ``q . k / sqrt(d)`` (Vaswani et al., 2017).

    Args:
      query: ``[batch..., q_len, heads, dim]``.
      key: ``[batch..., kv_len, heads, dim]``.
      scale: multiplier of the dot product; defaults to ``1 / sqrt(dim)``.

    Returns:
      ``[batch..., heads, q_len, kv_len]`` float32 logits.
    """
    if scale is None:
        scale = jnp.shape(query)[-1] ** -0.5
    return _logits_einsum(query, key) * jnp.float32(scale)


def general_scores(query: ArrayLike, key: ArrayLike, weight: ArrayLike) -> Array:
    """Bilinear ("general") score ``q^T W k`` (Luong et al., 2015).

    Args:
      query: ``[batch..., q_len, heads, q_dim]``.
      key: ``[batch..., kv_len, heads, k_dim]``.
      weight: ``[q_dim, k_dim]`` shared by all heads, or ``[heads, q_dim, k_dim]``.

    Returns:
      ``[batch..., heads, q_len, kv_len]`` float32 logits.
    """
    w = jnp.asarray(weight)
    if w.ndim == 2:
        projected = jnp.einsum("...qhd,de->...qhe", query, w, preferred_element_type=jnp.float32)
    else:
        projected = jnp.einsum("...qhd,hde->...qhe", query, w, preferred_element_type=jnp.float32)
    return _logits_einsum(projected, jnp.asarray(key, jnp.float32))


def additive_scores(query: ArrayLike, key: ArrayLike, v: ArrayLike) -> Array:
    """Additive score ``v^T tanh(W q + U k)`` (Bahdanau et al., 2015; Luong's "concat").

    The projections ``W q`` and ``U k`` are the inputs: project once outside, since keys are reused by
    every decoder step.

    Args:
      query: ``[batch..., q_len, heads, units]`` projected queries ``W q``.
      key: ``[batch..., kv_len, heads, units]`` projected keys ``U k`` (plus any further features, such as
        location or coverage terms, already added).
      v: ``[units]`` shared by all heads, or ``[heads, units]``.

    Returns:
      ``[batch..., heads, q_len, kv_len]`` float32 logits.
    """
    q = jnp.asarray(query, jnp.float32)[..., :, None, :, :]  # [batch..., q, 1, h, u]
    k = jnp.asarray(key, jnp.float32)[..., None, :, :, :]  # [batch..., 1, k, h, u]
    hidden = jnp.tanh(q + k)  # [batch..., q, k, h, u]
    v = jnp.asarray(v, jnp.float32)
    if v.ndim == 1:
        v = jnp.broadcast_to(v, (hidden.shape[-2], v.shape[0]))
    return jnp.einsum("...qkhu,hu->...hqk", hidden, v)


def cosine_scores(query: ArrayLike, key: ArrayLike, scale: float = 1.0, eps: float = 1e-6) -> Array:
    """Cosine-similarity score ``scale * (q . k) / (|q| |k|)`` (Graves et al., 2014, content addressing).

    ``scale`` plays the role of the key strength ``beta`` of the Neural Turing Machine (or the learned
    temperature of cosine attention in Swin-v2, Liu et al., 2022).

    Args:
      query: ``[batch..., q_len, heads, dim]``.
      key: ``[batch..., kv_len, heads, dim]``.
      scale: multiplier of the cosine similarity.
      eps: guards the norm of an all-zero vector.

    Returns:
      ``[batch..., heads, q_len, kv_len]`` float32 logits in ``[-scale, scale]``.
    """
    q = jnp.asarray(query, jnp.float32)
    k = jnp.asarray(key, jnp.float32)
    q = q * jax.lax.rsqrt(jnp.sum(q * q, axis=-1, keepdims=True) + eps)
    k = k * jax.lax.rsqrt(jnp.sum(k * k, axis=-1, keepdims=True) + eps)
    return _logits_einsum(q, k) * jnp.float32(scale)

