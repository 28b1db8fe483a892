"""Flax linen modules that own attention parameters (import these into your own Flax code)."""

from attn_jax.layers.bidaf import BiDAFAttention
from attn_jax.layers.multi_head import MultiHeadAttention
from attn_jax.layers.pointer import PointerGenerator
from attn_jax.layers.pooling import AttentionPooling
from attn_jax.layers.positional import (
    ALiBiBias,
    LearnedPositionalEmbedding,
    RelativePositionBias,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
)
from attn_jax.layers.spatial_transformer import SpatialTransformer
from attn_jax.layers.visual import VisualAttention, VisualAttentionOutput
