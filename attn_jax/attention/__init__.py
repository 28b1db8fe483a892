"""Pure attention functions: scores, masks, normalisers, weighted sums, kernels (no parameters, no Flax)."""

from attn_jax.attention.bidaf import (
    bidaf_merge,
    context_to_query_attention,
    query_to_context_attention,
    trilinear_similarity,
)
from attn_jax.attention.blockwise import blockwise_attention, dropout_keep_mask
from attn_jax.attention.dot_product import (
    available_implementations,
    dot_product_attention,
    weighted_sum,
)
from attn_jax.attention.hard import (
    attention_entropy,
    attention_log_prob,
    reinforce_loss,
    sample_attention,
    update_baseline,
)
from attn_jax.attention.local import (
    gaussian_window,
    local_attention_weights,
    local_window_mask,
    monotonic_position,
    predictive_position,
)
from attn_jax.attention.location import coverage_loss, location_features
from attn_jax.attention.masks import (
    causal_mask,
    combine_masks,
    padding_mask,
    query_has_keys,
    segment_mask,
    window_mask,
)
from attn_jax.attention.normalizers import (
    gumbel_softmax,
    log_softmax,
    mask_logits,
    softmax,
    sparsemax,
)
from attn_jax.attention.pointer import copy_distribution, mix_copy_and_generate, pad_vocab
from attn_jax.attention.positions import (
    alibi_bias,
    alibi_slopes,
    apply_rotary,
    clipped_relative_buckets,
    relative_positions,
    sinusoidal_positions,
    t5_relative_buckets,
)
from attn_jax.attention.scores import (
    additive_scores,
    cosine_scores,
    dot_scores,
    general_scores,
    scaled_dot_scores,
)
from attn_jax.attention.spatial import affine_grid, bilinear_sample
from attn_jax.attention.visual import doubly_stochastic_penalty
