"""Positional encodings and position biases as Flax modules.

Encodings (:class:`SinusoidalPositionalEncoding`, :class:`LearnedPositionalEmbedding`) are added to token
embeddings; :class:`RotaryEmbedding` rotates queries and keys; :class:`ALiBiBias` and
:class:`RelativePositionBias` return logit biases ``[batch..., heads, q_len, kv_len]`` for
:func:`attn_jax.attention.dot_product_attention`.
"""

from __future__ import annotations

from typing import Any, Literal

import flax.linen as nn
import jax.numpy as jnp
from jax import Array

from attn_jax.attention import positions as pos_lib


def _default_positions(x: Array, positions: Array | None, length_axis: int) -> Array:
    return jnp.arange(x.shape[length_axis]) if positions is None else positions


class SinusoidalPositionalEncoding(nn.Module):
    """Adds fixed sinusoidal encodings to its input (Vaswani et al., 2017).

    ``__call__(inputs [batch..., len, features], positions [batch..., len] | None)``; positions default
    to ``0..len-1``.
    """

    max_timescale: float = 10_000.0

    @nn.compact
    def __call__(self, inputs: Array, positions: Array | None = None) -> Array:
        positions = _default_positions(inputs, positions, -2)
        pe = pos_lib.sinusoidal_positions(positions, inputs.shape[-1], max_timescale=self.max_timescale)
        return inputs + pe.astype(inputs.dtype)


class LearnedPositionalEmbedding(nn.Module):
    """Adds a learned embedding per absolute position (Gehring et al., 2017; Devlin et al., 2019).

    ``__call__(inputs [batch..., len, features], positions [batch..., len] | None)``; positions must be
    below ``max_len``.
    """

    max_len: int
    embedding_init: Any = nn.initializers.normal(stddev=0.02)
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, inputs: Array, positions: Array | None = None) -> Array:
        features = inputs.shape[-1]
        table = self.param(
            "embedding",
            nn.with_logical_partitioning(self.embedding_init, ("length", "embed")),
            (self.max_len, features),
            self.param_dtype,
        )
        positions = _default_positions(inputs, positions, -2)
        return inputs + jnp.take(table, positions, axis=0).astype(inputs.dtype)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding, RoPE (Su et al., 2021), applied to queries or keys.

    ``__call__(x [batch..., len, heads, head_dim], positions [batch..., len] | None)`` returns ``x``
    rotated by its positions; no parameters.
    """

    base: float = 10_000.0

    def __call__(self, x: Array, positions: Array | None = None) -> Array:
        return pos_lib.apply_rotary(x, _default_positions(x, positions, -3), base=self.base)


class ALiBiBias(nn.Module):
    """Attention with Linear Biases (Press et al., 2022): ``-slope_h * |i - j|``; no parameters.

    ``__call__(q_positions [batch..., q_len], kv_positions [batch..., kv_len] | None)`` returns
    ``[batch..., heads, q_len, kv_len]`` float32.
    """

    num_heads: int

    def __call__(self, q_positions: Array, kv_positions: Array | None = None) -> Array:
        kv_positions = q_positions if kv_positions is None else kv_positions
        return pos_lib.alibi_bias(pos_lib.alibi_slopes(self.num_heads), q_positions, kv_positions)


class RelativePositionBias(nn.Module):
    """A learned scalar bias per head and relative distance.

    ``bucketing='t5'`` uses the log-spaced buckets of T5 (Raffel et al., 2020); ``bucketing='clip'``
    clips distances to ``[-max_distance, max_distance]`` as in Shaw et al. (2018), here as a logit bias
    (their key-side term ``a^K_ij``, reduced to a scalar per head).

    ``__call__(q_positions [batch..., q_len], kv_positions [batch..., kv_len] | None)`` returns
    ``[batch..., heads, q_len, kv_len]`` float32.
    """

    num_heads: int
    num_buckets: int = 32
    max_distance: int = 128
    bidirectional: bool = True
    bucketing: Literal["t5", "clip"] = "t5"
    embedding_init: Any = nn.initializers.normal(stddev=0.02)
    param_dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, q_positions: Array, kv_positions: Array | None = None) -> Array:
        kv_positions = q_positions if kv_positions is None else kv_positions
        rel = pos_lib.relative_positions(q_positions, kv_positions)  # [batch..., q_len, kv_len]
        if self.bucketing == "t5":
            buckets = pos_lib.t5_relative_buckets(
                rel,
                num_buckets=self.num_buckets,
                max_distance=self.max_distance,
                bidirectional=self.bidirectional,
            )
            num_buckets = self.num_buckets
        elif self.bucketing == "clip":
            buckets = pos_lib.clipped_relative_buckets(rel, self.max_distance)
            num_buckets = 2 * self.max_distance + 1
        else:
            raise ValueError(f"bucketing must be 't5' or 'clip'; got {self.bucketing!r}.")
        table = self.param(
            "rel_embedding",
            nn.with_logical_partitioning(self.embedding_init, ("relpos_buckets", "heads")),
            (num_buckets, self.num_heads),
            self.param_dtype,
        )
        bias = jnp.take(table, buckets, axis=0).astype(jnp.float32)  # [batch..., q, k, heads]
        return jnp.moveaxis(bias, -1, -3)
