"""Every public name exists, is importable from its package, and names its paper in its docstring."""

import re

import pytest

import attn_jax.attention as attention
import attn_jax.layers as layers

ATTENTION_NAMES = [
    "dot_scores", "scaled_dot_scores", "general_scores", "additive_scores", "cosine_scores",
    "padding_mask", "causal_mask", "window_mask", "combine_masks",
    "dot_product_attention", "softmax", "sparsemax", "gumbel_softmax",
    "monotonic_position", "predictive_position", "local_attention_weights",
    "sample_attention", "attention_log_prob", "reinforce_loss", "update_baseline",
    "location_features", "coverage_loss", "affine_grid", "bilinear_sample",
]
LAYER_NAMES = [
    "MultiHeadAttention", "AdditiveAttention", "LuongAttention", "LocalAttention",
    "LocationAwareAttention", "CoverageAttention", "HardAttention", "AttentionPooling",
    "BiDAFAttention", "PointerGenerator", "SpatialTransformer", "VisualAttention",
    "SinusoidalPositionalEncoding", "LearnedPositionalEmbedding", "RotaryEmbedding",
    "ALiBiBias", "RelativePositionBias",
]
CITATION = re.compile(r"\b(19|20)\d\d\b")  # "(Author et al., 2015)"
NO_PAPER = {"padding_mask", "combine_masks"}  # bookkeeping with no paper of their own


@pytest.mark.parametrize("name", ATTENTION_NAMES)
def test_attention_function_is_public_and_cites_its_paper(name):
    fn = getattr(attention, name)
    doc = fn.__doc__ or ""
    assert CITATION.search(doc) or name in NO_PAPER, f"{name} docstring names no paper"
    assert "[" in doc, f"{name} docstring gives no shapes"


@pytest.mark.parametrize("name", LAYER_NAMES)
def test_layer_is_public_and_cites_its_paper(name):
    cls = getattr(layers, name)
    assert CITATION.search(cls.__doc__ or ""), f"{name} docstring names no paper"
