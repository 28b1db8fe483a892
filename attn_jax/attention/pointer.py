"""Copying from the source: the pointer-generator's output distribution (See et al., 2017).

See et al., 2017, "Get To The Point: Summarization with Pointer-Generator Networks": the decoder either
generates a word from a fixed vocabulary (probability ``p_gen``) or copies a source word by pointing at it
with its attention weights. Words are indexed in an *extended vocabulary*: ids ``[0, vocab_size)`` are the
fixed vocabulary and ids ``[vocab_size, extended_vocab_size)`` are the example's own source OOVs (the
first OOV of an example gets id ``vocab_size``, the next ``vocab_size + 1``, ...).
``extended_vocab_size`` is a static Python int: ``vocab_size`` plus the largest number of source OOVs
in the batch (or a fixed maximum, to avoid recompiling), so every example shares one output shape.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

# Added to every probability before the log, so an impossible word scores about log(1e-10) = -23
# instead of log(0) = -inf, with finite gradients everywhere.
DEFAULT_FLOOR = 1e-10


def copy_distribution(
    attention_weights: ArrayLike,
    source_ids: ArrayLike,
    extended_vocab_size: int,
    source_mask: ArrayLike | None = None,
) -> Array:
    """The copy distribution ``P_copy(w) = sum_{i: w_i = w} a_i`` (See et al., 2017, eq. 9), by scatter-add.

    A word that occurs several times in the source accumulates the attention on all its occurrences.
    Positions that are masked out, or whose id lies outside ``[0, extended_vocab_size)`` (e.g. a
    negative pad id), contribute nothing.

    Args:
      attention_weights: ``[batch..., src_len]`` attention over the source (usually summing to 1).
      source_ids: ``[batch..., src_len]`` integer ids of the source words in the extended vocabulary.
      extended_vocab_size: static size of the extended vocabulary.
      source_mask: boolean ``[batch..., src_len]``, ``True`` = real source position.

    Returns:
      ``[batch..., extended_vocab_size]`` float32.
    """
    weights = jnp.asarray(attention_weights, jnp.float32)
    ids = jnp.asarray(source_ids)
    if weights.shape != ids.shape:
        raise ValueError(
            f"attention_weights {weights.shape} and source_ids {ids.shape} must have the same shape."
        )
    valid = (ids >= 0) & (ids < extended_vocab_size)
    if source_mask is not None:
        valid = valid & jnp.asarray(source_mask, bool)
    weights = jnp.where(valid, weights, 0.0)
    ids = jnp.where(valid, ids, 0)
    *batch, src_len = weights.shape
    rows = math.prod(batch)
    flat_weights = weights.reshape(rows, src_len)  # [rows, src_len]
    flat_ids = ids.reshape(rows, src_len)
    row_index = jnp.arange(rows)[:, None]  # [rows, 1]
    out = jnp.zeros((rows, extended_vocab_size), jnp.float32)
    out = out.at[row_index, flat_ids].add(flat_weights)  # [rows, extended_vocab_size]
    return out.reshape(*batch, extended_vocab_size)


def mix_copy_and_generate(
    vocab_probs: ArrayLike,
    copy_dist: ArrayLike,
    p_gen: ArrayLike,
    *,
    floor: float = DEFAULT_FLOOR,
) -> Array:
    """Log of the pointer-generator mixture ``P(w) = p_gen P_vocab(w) + (1 - p_gen) P_copy(w)``
    (See et al., 2017, eq. 9).

    ``P_vocab`` is zero on the source OOVs (ids ``>= vocab_size``). The mixture is formed in probability
    space in float32 and ``floor`` is added before the log, so a word with probability 0 gets the finite
    log-probability ``log(floor)`` (never ``-inf``) and gradients stay finite.

    Args:
      vocab_probs: ``[batch..., vocab_size]`` generation distribution ``P_vocab`` (a softmax).
      copy_dist: ``[batch..., extended_vocab_size]`` from :func:`copy_distribution`.
      p_gen: ``[batch...]`` generation probability in ``[0, 1]``.
      floor: small probability added to every word before the log.

    Returns:
      ``[batch..., extended_vocab_size]`` float32 log-probabilities.
    """
    copy_dist = jnp.asarray(copy_dist, jnp.float32)
    vocab_probs = pad_vocab(jnp.asarray(vocab_probs, jnp.float32), copy_dist.shape[-1], 0.0)
    p_gen = jnp.asarray(p_gen, jnp.float32)[..., None]  # [batch..., 1]
    probs = p_gen * vocab_probs + (1.0 - p_gen) * copy_dist  # [batch..., extended_vocab_size]
    return jnp.log(probs + floor)


def pad_vocab(scores: ArrayLike, extended_vocab_size: int, value: float) -> Array:
    """Pad per-word scores ``[batch..., vocab_size]`` to ``[batch..., extended_vocab_size]`` with ``value``.

    Used for the pointer-generator's extended vocabulary (See et al., 2017): with ``value=0`` on
    probabilities, or ``value=log(floor)`` on log-probabilities when copying is switched off.
    """
    scores = jnp.asarray(scores)
    vocab_size = scores.shape[-1]
    if extended_vocab_size < vocab_size:
        raise ValueError(
            f"extended_vocab_size ({extended_vocab_size}) must be at least the vocabulary size "
            f"({vocab_size})."
        )
    widths = [(0, 0)] * (scores.ndim - 1) + [(0, extended_vocab_size - vocab_size)]
    return jnp.pad(scores, widths, constant_values=value)
