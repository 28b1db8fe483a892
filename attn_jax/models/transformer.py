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
    num_kv_heads: int | None = None
    dropout_rate: float = 0.0
    position: str = "none"
    implementation: str | None = None
    dtype: Any = None
    sow_weights: bool = False

    @nn.compact
    def __call__(self, x: Array, mask: Array | None = None, deterministic: bool = True) -> Array:
        h = nn.LayerNorm(dtype=self.dtype, name="attention_norm")(x)
        h = MultiHeadAttention(
            num_heads=self.num_heads,
            num_kv_heads=self.num_kv_heads,
            position=self.position,
            dropout_rate=self.dropout_rate,
            implementation=self.implementation,
            dtype=self.dtype,
            sow_weights=self.sow_weights,
            name="attention",
        )(h, mask=mask, deterministic=deterministic)
        x = x + nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
        return _mlp_residual(self, x, deterministic)


class DecoderBlock(nn.Module):
    """Pre-LayerNorm Transformer decoder layer: causal self-attention, cross-attention to the encoder
    output, feed-forward (Vaswani et al., 2017; pre-LN: Xiong et al., 2020).

    ``x [batch, len, features]``, ``memory [batch, src_len, features]``, ``memory_mask`` broadcastable
    to ``[batch, heads, len, src_len]``. With ``decode`` the self-attention keeps a key/value cache and
    ``x`` holds the next token(s) only. ``position`` applies to the self-attention; cross-attention has
    none (source and target positions are not comparable).
    """

    num_heads: int
    mlp_dim: int
    num_kv_heads: int | None = None
    dropout_rate: float = 0.0
    position: str = "none"
    decode: bool = False
    implementation: str | None = None
    dtype: Any = None
    sow_weights: bool = False

    @nn.compact
    def __call__(
        self, x: Array, memory: Array, memory_mask: Array | None = None, deterministic: bool = True
    ) -> Array:
        attention = lambda name, **kw: MultiHeadAttention(
            num_heads=self.num_heads,
            num_kv_heads=self.num_kv_heads,
            dropout_rate=self.dropout_rate,
            implementation=self.implementation,
            dtype=self.dtype,
            sow_weights=self.sow_weights,
            name=name,
            **kw,
        )
        h = nn.LayerNorm(dtype=self.dtype, name="self_attention_norm")(x)
        h = attention("self_attention", causal=True, position=self.position, decode=self.decode)(
            h, deterministic=deterministic
        )
        x = x + nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
        h = nn.LayerNorm(dtype=self.dtype, name="cross_attention_norm")(x)
        h = attention("cross_attention")(h, memory, mask=memory_mask, deterministic=deterministic)
        x = x + nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
        return _mlp_residual(self, x, deterministic)


def _mlp_residual(block: EncoderBlock | DecoderBlock, x: Array, deterministic: bool) -> Array:
    """``x + MLP(LayerNorm(x))``, the feed-forward half of a pre-LN block (called inside ``block``)."""
    h = nn.LayerNorm(dtype=block.dtype, name="mlp_norm")(x)
    h = MlpBlock(block.mlp_dim, block.dropout_rate, block.dtype, name="mlp")(
        h, deterministic=deterministic
    )
    return x + nn.Dropout(block.dropout_rate)(h, deterministic=deterministic)
