"""Beam bookkeeping: expand a per-row cache to beams, gather beams by parent, GNMT length penalty.

Beams of one example sit next to each other: row ``b * beam_size + k`` of a flat ``[batch * beam, ...]``
leaf is beam ``k`` of example ``b``, which is how a model sees them (its batch axis is
``batch * beam``). Rank-0 leaves (a shared ``cache_index``) pass through every helper untouched.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from attn_jax.decoding.step import Cache, is_per_row


def expand_to_beams(cache: Cache, beam_size: int) -> Cache:
    """Repeat each row ``beam_size`` times: per-row leaves ``[batch, ...]`` -> ``[batch * beam_size, ...]``.

    Every beam of an example starts from the example's state (encoder memory, empty key/value cache);
    rank-0 leaves are left as they are.
    """
    return jax.tree.map(lambda x: jnp.repeat(x, beam_size, axis=0) if is_per_row(x) else x, cache)


def flatten_beams(tree: Cache) -> Cache:
    """Merge the beam axis into the batch axis: ``[batch, beam, ...]`` -> ``[batch * beam, ...]``."""
    return jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]) if is_per_row(x) else x, tree)


def unflatten_beams(tree: Cache, beam_size: int) -> Cache:
    """Split the batch axis into examples and beams: ``[batch * beam, ...]`` -> ``[batch, beam, ...]``."""
    return jax.tree.map(lambda x: x.reshape(-1, beam_size, *x.shape[1:]) if is_per_row(x) else x, tree)


def gather_beams(cache: Cache, beam_indices: ArrayLike, beam_size: int) -> Cache:
    """Pick, for each example, the beams named by ``beam_indices`` (the parents of the surviving beams).

    ``cache`` per-row leaves are ``[batch * beam_size, ...]``; ``beam_indices [batch, new_beam]`` int
    indexes beams within each example. Returns per-row leaves ``[batch * new_beam, ...]`` where row
    ``b * new_beam + j`` is old beam ``beam_indices[b, j]`` of example ``b``. Rank-0 leaves are untouched.
    """
    beam_indices = jnp.asarray(beam_indices)
    batch = beam_indices.shape[0]
    rows = (jnp.arange(batch)[:, None] * beam_size + beam_indices).reshape(-1)  # [batch * new_beam]
    return jax.tree.map(lambda x: x[rows] if is_per_row(x) else x, cache)


def select_beams(x: Array, beam_indices: Array) -> Array:
    """Gather beams: ``x [batch, beam, ...]``, ``beam_indices [batch, k]`` -> ``[batch, k, ...]``.

    For arrays kept per example and beam (sequences, scores) rather than the model's flat cache rows.
    """
    return x[jnp.arange(x.shape[0])[:, None], beam_indices]


def length_penalty(length: ArrayLike, alpha: ArrayLike) -> Array:
    """GNMT length penalty ``((5 + length) / 6) ** alpha`` (Wu et al., 2016); ``length`` counts EOS.

    A hypothesis scores ``log p(y) / length_penalty(|y|, alpha)``: ``alpha = 0`` ranks by raw
    log-probability, larger ``alpha`` favours longer outputs. Works elementwise on any shape ``[...]``.
    """
    length = jnp.asarray(length, jnp.float32)
    return ((5.0 + length) / 6.0) ** jnp.asarray(alpha, jnp.float32)
