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
    to ``[batch, heads, len, src_len]``. ``position`` applies to the self-attention; cross-attention has
    none (source and target positions are not comparable).

    With ``decode``, ``x`` holds the next token(s) only: the self-attention keeps a key/value cache, and
    the cross-attention keeps the keys and values of ``memory``, projected once per source by
    :meth:`cache_memory` (or by a call given ``memory``); steps pass ``memory=None`` and reuse them.
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

    def setup(self) -> None:
        # Declared here, not inline in `__call__`, so that `cache_memory` can call it as well.
        self.cross_attention = self._attention(static_kv=self.decode)

    @nn.nowrap
    def _attention(self, **kw: Any) -> MultiHeadAttention:
        return MultiHeadAttention(
            num_heads=self.num_heads,
            num_kv_heads=self.num_kv_heads,
            dropout_rate=self.dropout_rate,
            implementation=self.implementation,
            dtype=self.dtype,
            sow_weights=self.sow_weights,
            **kw,
        )

    @nn.compact
    def __call__(
        self,
        x: Array,
        memory: Array | None,
        memory_mask: Array | None = None,
        deterministic: bool = True,
    ) -> Array:
        if memory is None and not self.decode:
            raise ValueError("memory=None (cached cross-attention keys/values) needs decode=True.")
        h = nn.LayerNorm(dtype=self.dtype, name="self_attention_norm")(x)
        h = self._attention(causal=True, position=self.position, decode=self.decode, name="self_attention")(
            h, deterministic=deterministic
        )
        x = x + nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
        h = nn.LayerNorm(dtype=self.dtype, name="cross_attention_norm")(x)
        h = self.cross_attention(h, memory, mask=memory_mask, deterministic=deterministic)
        x = x + nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
        return _mlp_residual(self, x, deterministic)

    def cache_memory(self, memory: Array) -> None:
        """With ``decode``: project ``memory [batch, src_len, features]`` into the cross-attention's
        cached keys and values (``[batch, src_len, kv_heads, head_dim]`` each), once per source, so that
        decoding steps skip that projection (most of a step's work when the source is long)."""
        if not self.decode:
            raise ValueError("cache_memory needs decode=True: only a decoding layer keeps a cache.")
        self.cross_attention(None, memory)


def _mlp_residual(block: EncoderBlock | DecoderBlock, x: Array, deterministic: bool) -> Array:
    """``x + MLP(LayerNorm(x))``, the feed-forward half of a pre-LN block (called inside ``block``)."""
    h = nn.LayerNorm(dtype=block.dtype, name="mlp_norm")(x)
    h = MlpBlock(block.mlp_dim, block.dropout_rate, block.dtype, name="mlp")(h, deterministic=deterministic)
    return x + nn.Dropout(block.dropout_rate)(h, deterministic=deterministic)
