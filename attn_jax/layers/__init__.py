"""Flax linen modules that own attention parameters (import these into your own Flax code)."""

from attn_jax.layers.additive import AdditiveAttention
from attn_jax.layers.bidaf import BiDAFAttention
from attn_jax.layers.coverage import CoverageAttention
from attn_jax.layers.hard import HardAttention, HardAttentionOutput
from attn_jax.layers.local import LocalAttention
from attn_jax.layers.location_aware import LocationAwareAttention
from attn_jax.layers.luong import LuongAttention
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
