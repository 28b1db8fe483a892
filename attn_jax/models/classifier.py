"""Sequence classifiers: a Transformer encoder read out by attention pooling."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jax import Array

from attn_jax.layers.pooling import AttentionPooling
from attn_jax.layers.positional import SinusoidalPositionalEncoding
from attn_jax.models.transformer import EncoderBlock


class TransformerClassifier(nn.Module):
    """Transformer encoder (Vaswani et al., 2017) + attention pooling (Yang et al., 2016) + linear head.

    ``position`` is ``'sinusoidal'`` (absolute encodings added to the embeddings) or a
    :class:`~attn_jax.layers.MultiHeadAttention` scheme applied in every layer: ``'rotary'``,
    ``'alibi'``, ``'relative'``.

    ``tokens [batch, len]`` int ids with 0 = padding -> ``logits [batch, num_classes]`` float32.
    """

    vocab_size: int
    num_classes: int
    embed_dim: int = 64
    num_layers: int = 2
    num_heads: int = 4
    mlp_dim: int = 128
    dropout_rate: float = 0.1
    pooling_units: int = 64
    position: str = "rotary"  # 'sinusoidal' (added to embeddings) or a MultiHeadAttention scheme
    dtype: Any = None
    sow_weights: bool = False

    @nn.compact
    def __call__(self, tokens: Array, *, deterministic: bool = True) -> Array:
        valid = tokens != 0  # [batch, len]
        x = nn.Embed(
            self.vocab_size,
            self.embed_dim,
            embedding_init=nn.with_logical_partitioning(
                nn.linear.default_embed_init, ("vocab", "embed")
            ),
            dtype=self.dtype,
            name="embed",
        )(tokens)  # [batch, len, embed_dim]
        if self.position == "sinusoidal":
            x = SinusoidalPositionalEncoding()(x)
        x = nn.Dropout(self.dropout_rate)(x, deterministic=deterministic)
        mask = valid[:, None, None, :]  # [batch, 1, 1, len]
        for i in range(self.num_layers):
            x = EncoderBlock(
                num_heads=self.num_heads,
                mlp_dim=self.mlp_dim,
                dropout_rate=self.dropout_rate,
                position="none" if self.position == "sinusoidal" else self.position,
                dtype=self.dtype,
                sow_weights=self.sow_weights,
                name=f"layer_{i}",
            )(x, mask, deterministic=deterministic)
        x = nn.LayerNorm(dtype=self.dtype, name="final_norm")(x)
        pooled = AttentionPooling(
            units=self.pooling_units, dtype=self.dtype, sow_weights=self.sow_weights, name="pool"
        )(x, valid)  # [batch, embed_dim]
        logits = nn.Dense(self.num_classes, dtype=self.dtype, name="head")(pooled)
        return logits.astype(jnp.float32)
