"""Transformer building blocks shared by the encoder, decoder and classifier models."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
from jax import Array

from attn_jax.layers.multi_head import MultiHeadAttention


class MlpBlock(nn.Module):
    """Position-wise feed-forward network ``W2 gelu(W1 x)`` (Vaswani et al., 2017; GELU: Hendrycks &
    Gimpel, 2016). ``[batch..., len, features] -> [batch..., len, features]``."""

    mlp_dim: int
    dropout_rate: float = 0.0
    dtype: Any = None

    @nn.compact
    def __call__(self, x: Array, *, deterministic: bool = True) -> Array:
        features = x.shape[-1]
        dense = lambda n, axes, name: nn.Dense(
            n,
            dtype=self.dtype,
            kernel_init=nn.with_logical_partitioning(nn.initializers.xavier_uniform(), axes),
            name=name,
        )
        h = nn.gelu(dense(self.mlp_dim, ("embed", "mlp"), "wi")(x))
        h = nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
        return dense(features, ("mlp", "embed"), "wo")(h)


class EncoderBlock(nn.Module):
    """Pre-LayerNorm Transformer encoder layer (Vaswani et al., 2017; pre-LN: Xiong et al., 2020).

    ``x [batch, len, features]``, ``mask`` broadcastable to ``[batch, heads, len, len]``.
    """

    num_heads: int
    mlp_dim: int
    dropout_rate: float = 0.0
    position: str = "none"
    dtype: Any = None
    sow_weights: bool = False

    @nn.compact
    def __call__(self, x: Array, mask: Array | None = None, *, deterministic: bool = True) -> Array:
        h = nn.LayerNorm(dtype=self.dtype, name="attention_norm")(x)
        h = MultiHeadAttention(
            num_heads=self.num_heads,
            position=self.position,
            dropout_rate=self.dropout_rate,
            dtype=self.dtype,
            sow_weights=self.sow_weights,
            name="attention",
        )(h, mask=mask, deterministic=deterministic)
        x = x + nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
        h = nn.LayerNorm(dtype=self.dtype, name="mlp_norm")(x)
        h = MlpBlock(self.mlp_dim, self.dropout_rate, self.dtype, name="mlp")(h, deterministic=deterministic)
        return x + nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
