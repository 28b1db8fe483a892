"""Pure attention functions: scores, masks, normalisers, weighted sums and kernels (no parameters)."""

from attn_jax.attention.dot_product import (
    available_implementations,
    dot_product_attention,
    weighted_sum,
)
from attn_jax.attention.masks import (
    causal_mask,
    combine_masks,
    padding_mask,
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
from attn_jax.attention.scores import (
    additive_scores,
    cosine_scores,
    dot_scores,
    general_scores,
    scaled_dot_scores,
)
from attn_jax.attention.hard import (
    attention_entropy,
    attention_log_prob,
    reinforce_loss,
    sample_attention,
    update_baseline,
)
