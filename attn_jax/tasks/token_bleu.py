"""Sentence BLEU on token ids inside ``jit``: a reward for REINFORCE-trained hard attention."""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike


def _ngram_equal(a: Array, a_valid: Array, b: Array, b_valid: Array, n: int) -> Array:
    """``[batch, len_a, len_b]``: the n-gram of ``a`` starting at i equals the one of ``b`` starting at j
    (both n-grams lying inside their valid tokens)."""
    eq = jnp.ones((a.shape[0], a.shape[1], b.shape[1]), bool)
    for k in range(n):
        a_k = jnp.roll(a, -k, axis=1)
        b_k = jnp.roll(b, -k, axis=1)
        ok_a = jnp.roll(a_valid, -k, axis=1) & (jnp.arange(a.shape[1]) + k < a.shape[1])
        ok_b = jnp.roll(b_valid, -k, axis=1) & (jnp.arange(b.shape[1]) + k < b.shape[1])
        eq &= (a_k[:, :, None] == b_k[:, None, :]) & ok_a[:, :, None] & ok_b[:, None, :]
    return eq


def sentence_bleu(
    hypotheses: ArrayLike, hyp_mask: ArrayLike, references: ArrayLike, ref_mask: ArrayLike, max_n: int = 4
) -> Array:
    """Smoothed sentence BLEU in ``[0, 1]`` per row (Papineni et al., 2002; add-one smoothing of the
    n > 1 precisions, Lin & Och, 2004), on token ids.

    Args:
      hypotheses, references: ``[batch, len]`` int ids.
      hyp_mask, ref_mask: ``[batch, len]`` True at real tokens (a prefix of each row).
      max_n: longest n-gram.

    Returns:
      ``[batch]`` float32.
    """
    hyp, ref = jnp.asarray(hypotheses), jnp.asarray(references)
    hyp_valid, ref_valid = jnp.asarray(hyp_mask, bool), jnp.asarray(ref_mask, bool)
    hyp_len = jnp.sum(hyp_valid, -1).astype(jnp.float32)  # [batch]
    ref_len = jnp.sum(ref_valid, -1).astype(jnp.float32)
    log_precision = jnp.zeros(hyp.shape[0], jnp.float32)
    for n in range(1, max_n + 1):
        in_hyp = _ngram_equal(hyp, hyp_valid, hyp, hyp_valid, n)  # [batch, len, len]
        starts = jnp.diagonal(in_hyp, axis1=1, axis2=2)  # a valid hypothesis n-gram starts at i
        hyp_count = jnp.maximum(jnp.sum(in_hyp, -1), 1).astype(jnp.float32)  # occurrences of i's n-gram
        ref_count = jnp.sum(_ngram_equal(hyp, hyp_valid, ref, ref_valid, n), -1).astype(jnp.float32)
        # Each occurrence of an n-gram takes an equal share of its clipped count min(hyp, ref).
        matches = jnp.sum(jnp.where(starts, jnp.minimum(hyp_count, ref_count) / hyp_count, 0.0), -1)
        total = jnp.sum(starts, -1).astype(jnp.float32)
        smooth = 0.0 if n == 1 else 1.0
        log_precision += jnp.log((matches + smooth) / jnp.maximum(total + smooth, 1.0) + 1e-9) / max_n
    brevity = jnp.minimum(0.0, 1.0 - ref_len / jnp.maximum(hyp_len, 1.0))
    return jnp.where(hyp_len > 0, jnp.exp(log_precision + brevity), 0.0)
