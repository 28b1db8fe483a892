"""Position information for attention, as pure functions of integer positions.

Everything takes explicit positions (``[batch..., len]`` or ``[len]`` integers) rather than lengths, so
the same code serves full sequences, packed sequences and cached decoding (where queries start at the
cache index).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike


def sinusoidal_positions(
    positions: ArrayLike, dim: int, *, max_timescale: float = 10_000.0
) -> Array:
    """Fixed sinusoidal encodings (Vaswani et al., 2017, section 3.5).

    Frequencies form a geometric sequence from 1 to ``1/max_timescale``; the first half of the features
    holds the sines and the second half the cosines.

    Args:
      positions: ``[batch..., len]`` integer (or float) positions.
      dim: encoding size (even).

    Returns:
      ``[batch..., len, dim]`` float32 encodings.
    """
    if dim % 2:
        raise ValueError(f"sinusoidal encodings need an even dim; got {dim}.")
    half = dim // 2
    inv_freq = jnp.exp(-math.log(max_timescale) * jnp.arange(half, dtype=jnp.float32) / half)
    angles = jnp.asarray(positions, jnp.float32)[..., None] * inv_freq  # [batch..., len, half]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


def apply_rotary(x: ArrayLike, positions: ArrayLike, *, base: float = 10_000.0) -> Array:
    """Rotary position embedding, RoPE (Su et al., 2021).

    Rotates feature pairs ``(i, i + dim/2)`` of each head by the angle ``position * base^(-2i/dim)``,
    so that the dot product of a rotated query and key depends on their positions only through the
    offset between them.

    Args:
      x: ``[batch..., len, heads, dim]`` queries or keys (``dim`` even).
      positions: ``[batch..., len]`` or ``[len]`` integer positions.
      base: the wavelength base.

    Returns:
      ``[batch..., len, heads, dim]`` rotated, in ``x``'s dtype (the rotation is computed in float32).
    """
    x = jnp.asarray(x)
    dim = x.shape[-1]
    if dim % 2:
        raise ValueError(f"rotary embeddings need an even head_dim; got {dim}.")
    half = dim // 2
    inv_freq = base ** (-jnp.arange(half, dtype=jnp.float32) / half)
    angles = jnp.asarray(positions, jnp.float32)[..., None] * inv_freq  # [batch..., len, half]
    sin = jnp.sin(angles)[..., None, :]  # [batch..., len, 1, half]
    cos = jnp.cos(angles)[..., None, :]
    x1, x2 = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    rotated = jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return rotated.astype(x.dtype)


def alibi_slopes(num_heads: int) -> Array:
    """Per-head ALiBi slopes (Press et al., 2022): ``2^(-8 i / n)`` for ``i = 1..n``.

    For a head count that is not a power of two, the paper's recipe: the slopes of the closest smaller
    power of two, followed by every other slope of the next power of two.

    Returns:
      ``[num_heads]`` float32 slopes.
    """

    def power_of_two_slopes(n: int) -> list[float]:
        return [2.0 ** (-8.0 * (i + 1) / n) for i in range(n)]

    closest = 2 ** math.floor(math.log2(num_heads))
    slopes = power_of_two_slopes(closest)
    if closest < num_heads:
        slopes += power_of_two_slopes(2 * closest)[0::2][: num_heads - closest]
    return jnp.asarray(slopes, jnp.float32)


def alibi_bias(slopes: ArrayLike, q_positions: ArrayLike, kv_positions: ArrayLike) -> Array:
    """Attention with Linear Biases (Press et al., 2022): ``-slope_h * |i - j|`` added to the logits.

    For causal attention this is the paper's ``-slope * (i - j)``; the absolute value extends it to
    bidirectional attention.

    Args:
      slopes: ``[heads]``.
      q_positions: ``[batch..., q_len]`` or ``[q_len]``.
      kv_positions: ``[batch..., kv_len]`` or ``[kv_len]``.

    Returns:
      ``[batch..., heads, q_len, kv_len]`` float32 bias.
    """
    distance = jnp.abs(relative_positions(q_positions, kv_positions)).astype(jnp.float32)
    return -jnp.asarray(slopes, jnp.float32)[:, None, None] * distance[..., None, :, :]


def relative_positions(q_positions: ArrayLike, kv_positions: ArrayLike) -> Array:
    """``kv_position - q_position`` for every pair: ``[batch..., q_len, kv_len]`` int32."""
    q = jnp.asarray(q_positions, jnp.int32)
    kv = jnp.asarray(kv_positions, jnp.int32)
    return kv[..., None, :] - q[..., :, None]


def clipped_relative_buckets(relative_position: ArrayLike, max_distance: int) -> Array:
    """Relative distances clipped to ``[-k, k]`` and shifted to ``[0, 2k]`` (Shaw et al., 2018)."""
    rel = jnp.clip(jnp.asarray(relative_position), -max_distance, max_distance)
    return (rel + max_distance).astype(jnp.int32)


def t5_relative_buckets(
    relative_position: ArrayLike,
    *,
    num_buckets: int = 32,
    max_distance: int = 128,
    bidirectional: bool = True,
) -> Array:
    """Log-spaced relative-position buckets of T5 (Raffel et al., 2020).

    Half the buckets hold exact small distances, the rest grow logarithmically up to ``max_distance``,
    beyond which distances share the last bucket. With ``bidirectional`` the buckets are split between
    keys before and after the query.

    Args:
      relative_position: ``kv_position - q_position``, any shape, integers.

    Returns:
      int32 bucket ids in ``[0, num_buckets)`` of the same shape.
    """
    rel = jnp.asarray(relative_position, jnp.int32)
    offset = jnp.zeros_like(rel)
    if bidirectional:
        num_buckets //= 2
        offset = jnp.where(rel > 0, num_buckets, 0)
        distance = jnp.abs(rel)
    else:
        distance = jnp.maximum(-rel, 0)  # only keys at or before the query are distinct
    max_exact = num_buckets // 2
    log_ratio = jnp.log(jnp.maximum(distance, 1).astype(jnp.float32) / max_exact) / math.log(
        max_distance / max_exact
    )
    large = max_exact + (log_ratio * (num_buckets - max_exact)).astype(jnp.int32)
    large = jnp.minimum(large, num_buckets - 1)
    return (offset + jnp.where(distance < max_exact, distance, large)).astype(jnp.int32)
