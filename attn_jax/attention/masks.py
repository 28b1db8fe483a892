"""Boolean attention masks.

Every mask here is boolean with ``True`` meaning "this query may attend to this key", and is shaped to
broadcast against attention logits ``[batch..., heads, q_len, kv_len]``. Masks are combined with logical
AND (:func:`combine_masks`) and applied by the normalisers in :mod:`attn_jax.attention.normalizers`,
which fill disallowed logits with ``finfo(dtype).min`` rather than ``-inf``.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import Array, lax
from jax.typing import ArrayLike


def padding_mask(
    lengths_or_tokens: ArrayLike,
    max_len: int | None = None,
    *,
    pad_id: int | None = None,
    q_lengths_or_tokens: ArrayLike | None = None,
    q_len: int | None = None,
) -> Array:
    """Mask out padded key positions (and optionally padded query positions).

    Keys are described either by their lengths ``[batch...]`` (integers, with ``max_len`` given) or by a
    token array ``[batch..., kv_len]`` together with ``pad_id``.

    Returns:
      ``[batch..., 1, 1, kv_len]`` when only keys are given, or ``[batch..., 1, q_len, kv_len]`` when
      ``q_lengths_or_tokens`` is also given (a padded query row then attends to nothing).
    """
    key_valid = _valid_positions(lengths_or_tokens, max_len, pad_id, "max_len")
    mask = key_valid[..., None, None, :]  # [batch..., 1, 1, kv_len]
    if q_lengths_or_tokens is not None:
        query_valid = _valid_positions(q_lengths_or_tokens, q_len, pad_id, "q_len")
        mask = mask & query_valid[..., None, :, None]  # [batch..., 1, q_len, kv_len]
    return mask


def _valid_positions(
    lengths_or_tokens: ArrayLike, max_len: int | None, pad_id: int | None, len_name: str
) -> Array:
    """``[batch..., len]`` booleans, True where a position holds a real (non-pad) element."""
    x = jnp.asarray(lengths_or_tokens)
    if pad_id is not None:
        return x != pad_id
    if max_len is None:
        raise ValueError(
            f"padding_mask needs either pad_id (for a token array) or {len_name} (for lengths)."
        )
    return jnp.arange(max_len) < x[..., None]


def causal_mask(q_len: int, kv_len: int | None = None, *, offset: int = 0) -> Array:
    """Lower-triangular mask: query ``i`` may attend to keys ``j <= i + offset``.

    The autoregressive mask of decoder self-attention (Vaswani et al., 2017).

    ``offset`` places the queries at the end of a longer key sequence (e.g. ``kv_len - q_len`` when
    the keys include a cached prefix), matching ``jax.nn.dot_product_attention(is_causal=True)`` for
    ``offset=0``.

    Returns:
      ``[1, 1, q_len, kv_len]`` boolean mask.
    """
    kv_len = q_len if kv_len is None else kv_len
    q_pos = jnp.arange(q_len)[:, None] + offset
    kv_pos = jnp.arange(kv_len)[None, :]
    return (kv_pos <= q_pos)[None, None]


def window_mask(
    q_len: int, kv_len: int | None = None, window: int | tuple[int, int] = 0, *, offset: int = 0
) -> Array:
    """Sliding-window (local) mask: query ``i`` sees keys ``j`` with ``-left <= j - (i + offset) <= right``.

    ``window`` is a symmetric half-width or a ``(left, right)`` pair, the convention of
    ``jax.nn.dot_product_attention(local_window_size=...)``. Combine with :func:`causal_mask` (or use
    ``right=0``) for a causal sliding window as in Longformer (Beltagy et al., 2020).

    Returns:
      ``[1, 1, q_len, kv_len]`` boolean mask.
    """
    kv_len = q_len if kv_len is None else kv_len
    left, right = (window, window) if isinstance(window, int) else window
    if left < 0 or right < 0:
        raise ValueError(f"window sizes must be >= 0, got {window!r}")
    rel = jnp.arange(kv_len)[None, :] - (jnp.arange(q_len)[:, None] + offset)
    return ((rel >= -left) & (rel <= right))[None, None]


def segment_mask(q_segment_ids: ArrayLike, kv_segment_ids: ArrayLike | None = None) -> Array:
    """Block-diagonal mask for packed sequences: attend only within the same segment id.

    Args:
      q_segment_ids: ``[batch..., q_len]`` integer segment ids.
      kv_segment_ids: ``[batch..., kv_len]``; defaults to ``q_segment_ids`` (self-attention).

    Returns:
      ``[batch..., 1, q_len, kv_len]`` boolean mask.
    """
    q_ids = jnp.asarray(q_segment_ids)
    kv_ids = q_ids if kv_segment_ids is None else jnp.asarray(kv_segment_ids)
    return (q_ids[..., :, None] == kv_ids[..., None, :])[..., None, :, :]


def combine_masks(*masks: ArrayLike | None) -> Array | None:
    """Logical AND of the given masks, broadcasting their shapes; ``None`` entries are ignored.

    Args:
      masks: boolean arrays broadcastable to one another, e.g. ``[batch..., 1, 1, kv_len]`` and
        ``[1, 1, q_len, kv_len]``.

    Returns:
      the broadcast AND, or ``None`` when every argument is ``None`` (no masking at all).
    """
    present = [jnp.asarray(m, dtype=bool) for m in masks if m is not None]
    if not present:
        return None
    out = present[0]
    for m in present[1:]:
        out = out & m
    return out


def query_has_keys(
    q_len: int,
    kv_len: int,
    *,
    causal: bool = False,
    window: int | tuple[int, int] | None = None,
    kv_valid: ArrayLike | None = None,
    q_segment_ids: ArrayLike | None = None,
    kv_segment_ids: ArrayLike | None = None,
) -> Array:
    """Whether each query may attend to at least one key, without building the ``[q_len, kv_len]`` mask.

    Query ``i`` may attend to key ``j`` when :func:`causal_mask` / :func:`window_mask` allow it, the key is
    valid (``kv_valid``, e.g. not padding) and, with segment ids, both have the same segment id. Kernels
    that cannot tell an empty row from a full one use this to return zeros there. Cost
    ``O((q_len + kv_len) log kv_len)``: valid keys are sorted by (segment, position) and each query
    binary-searches the first key of its segment at or after the left edge of its window.

    Args:
      q_len, kv_len: sequence lengths.
      causal, window: as in :func:`attn_jax.attention.dot_product_attention`.
      kv_valid: ``[batch..., kv_len]`` booleans, ``True`` = a real key.
      q_segment_ids: ``[batch..., q_len]`` integers.
      kv_segment_ids: ``[batch..., kv_len]`` integers; defaults to ``q_segment_ids``.

    Returns:
      ``[batch..., q_len]`` booleans (``[q_len]`` when no batched argument is given).
    """
    q_pos = jnp.arange(q_len)
    lo = jnp.zeros(q_len, jnp.int32)
    hi = jnp.full(q_len, kv_len - 1, jnp.int32)
    if window is not None:
        left, right = (window, window) if isinstance(window, int) else window
        lo = jnp.maximum(lo, q_pos - left)
        hi = jnp.minimum(hi, q_pos + right)
    if causal:
        hi = jnp.minimum(hi, q_pos)
    if kv_valid is None and q_segment_ids is None:
        return lo <= hi
    if q_segment_ids is None:
        q_ids, kv_ids = jnp.zeros(q_len, jnp.int32), jnp.zeros(kv_len, jnp.int32)
    else:
        q_ids = jnp.asarray(q_segment_ids, jnp.int32)
        kv_ids = q_ids if kv_segment_ids is None else jnp.asarray(kv_segment_ids, jnp.int32)
    valid = jnp.ones(kv_len, bool) if kv_valid is None else jnp.asarray(kv_valid, bool)
    batch = jnp.broadcast_shapes(q_ids.shape[:-1], kv_ids.shape[:-1], valid.shape[:-1])
    flat = lambda x, n: jnp.broadcast_to(x, (*batch, n)).reshape(-1, n)
    found = _first_key_in_range(flat(q_ids, q_len), flat(kv_ids, kv_len), flat(valid, kv_len), lo, hi)
    return found.reshape(*batch, q_len)


@jax.jit
@partial(jax.vmap, in_axes=(0, 0, 0, None, None))
def _first_key_in_range(q_ids: Array, kv_ids: Array, valid: Array, lo: Array, hi: Array) -> Array:
    """``[q_len]``: whether a valid key with the query's segment id lies in ``[lo, hi]`` (one example)."""
    kv_len = kv_ids.shape[0]
    positions = jnp.arange(kv_len)
    # Valid keys first, then by segment id, then by position.
    order = jnp.lexsort((positions, kv_ids, ~valid))
    num_valid = valid.sum()
    in_valid = positions < num_valid
    sorted_ids = jnp.where(in_valid, kv_ids[order], jnp.iinfo(jnp.int32).max)
    sorted_pos = positions[order]
    start = jnp.searchsorted(sorted_ids, q_ids, side="left")
    stop = jnp.minimum(jnp.searchsorted(sorted_ids, q_ids, side="right"), num_valid)

    def halve(_, bounds):  # binary search for the first position >= lo within [start, stop)
        low, high = bounds
        active = low < high
        mid = (low + high) // 2
        before = sorted_pos[jnp.minimum(mid, kv_len - 1)] < lo
        return jnp.where(active & before, mid + 1, low), jnp.where(active & ~before, mid, high)

    first, _ = lax.fori_loop(0, max(1, kv_len).bit_length() + 1, halve, (start, stop))
    return (first < stop) & (sorted_pos[jnp.minimum(first, kv_len - 1)] <= hi)
