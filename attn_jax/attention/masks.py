"""Boolean attention masks.

Every mask here is boolean with ``True`` meaning "this query may attend to this key", and is shaped to
broadcast against attention logits ``[batch..., heads, q_len, kv_len]``. Masks are combined with logical
AND (:func:`combine_masks`) and applied by the normalisers in :mod:`attn_jax.attention.normalizers`,
which fill disallowed logits with ``finfo(dtype).min`` rather than ``-inf``.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array
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
