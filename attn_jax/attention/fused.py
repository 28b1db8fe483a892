"""Adapters from :func:`attn_jax.attention.dot_product_attention` to the fused kernels that ship with JAX.

- ``cudnn``: cuDNN's fused flash attention through ``jax.nn.dot_product_attention`` (NVIDIA GPUs,
  float16/bfloat16; Dao et al., 2022).
- ``tpu_splash`` / ``tpu_flash``: the Pallas TPU splash- and flash-attention kernels
  (``jax.experimental.pallas.ops.tpu``), which also run on CPU in Pallas' TPU interpret mode.

Each has a ``*_valid`` predicate saying whether it can serve a call (backend, dtypes, shapes, masks).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import Array

from attn_jax.attention import masks as masks_lib

TPU_BLOCK = 512  # preferred block size of the TPU kernels (lengths must be multiples of 128)


# --------------------------------------------------------------------------------------------------
# Fused kernels: shared pieces


def _unsupported(name: str, **reasons: bool) -> None:
    """Raise a ValueError naming what ``name`` cannot do, for the first true reason."""
    for reason, bad in reasons.items():
        if bad:
            raise ValueError(
                f"implementation={name!r} does not support {reason.replace('_', ' ')}; "
                "use implementation='blockwise' or 'xla' (or None to choose automatically)."
            )


def _padding_parts(mask: Array | None, rank: int) -> tuple[Array | None, Array | None] | None:
    """A mask that only marks padding, as ``(kv_valid [batch..., kv_len], q_valid [batch..., q_len])``.

    A mask of shape ``[batch..., 1, 1, kv_len]`` marks padded keys, ``[batch..., 1, q_len, 1]`` padded
    queries; anything else (per-head or per-pair masks) returns None.
    """
    if mask is None:
        return None, None
    mask = mask.reshape((1,) * (rank - mask.ndim) + mask.shape)
    if mask.shape[-3] != 1:
        return None
    if mask.shape[-2] == 1:
        return mask[..., 0, 0, :], None
    if mask.shape[-1] == 1:
        return None, mask[..., 0, :, 0]
    return None


def _statically_empty_rows(q_len: int, kv_len: int, window: tuple[int, int] | None) -> bool:
    """Whether the window alone leaves some query row with no key (queries past ``kv_len + left``; a
    causal mask always keeps key 0, or key ``i - left`` with a window)."""
    if window is None:
        return False
    return q_len - 1 - window[0] > kv_len - 1


def _zero_empty_rows(
    out: Array,
    *,
    mask: Array | None,
    causal: bool,
    window: tuple[int, int] | None,
    q_segment_ids: Array | None,
    kv_segment_ids: Array | None,
    kv_len: int,
) -> Array:
    """Zero the output rows of queries that may attend to nothing (the kernels average values there).

    ``out``: ``[batch..., q_len, heads, v_dim]``. Padding masks and segment ids are handled in
    ``O(q_len + kv_len)`` memory by :func:`masks.query_has_keys`; other masks are reduced over keys.
    """
    *batch, q_len, _, _ = out.shape
    rank = len(batch) + 3
    padding = _padding_parts(mask, rank)
    if padding is None:  # a general mask: reduce the combined mask over keys
        full = masks_lib.combine_masks(
            mask,
            masks_lib.causal_mask(q_len, kv_len) if causal else None,
            masks_lib.window_mask(q_len, kv_len, window) if window is not None else None,
            masks_lib.segment_mask(q_segment_ids, kv_segment_ids) if q_segment_ids is not None else None,
        )
        has_keys = jnp.swapaxes(jnp.any(full, axis=-1), -1, -2)  # [batch..., q_len, heads or 1]
        return jnp.where(has_keys[..., None], out, jnp.zeros((), out.dtype))
    kv_valid, q_valid = padding
    if kv_valid is None and q_valid is None and q_segment_ids is None:
        if not _statically_empty_rows(q_len, kv_len, window):
            return out
    has_keys = masks_lib.query_has_keys(
        q_len, kv_len, causal=causal, window=window, kv_valid=kv_valid,
        q_segment_ids=q_segment_ids, kv_segment_ids=kv_segment_ids,
    )
    if q_valid is not None:
        has_keys = has_keys & q_valid
    return jnp.where(has_keys[..., None, None], out, jnp.zeros((), out.dtype))


def _flatten_batch(x: Array, batch: tuple[int, ...], rank: int) -> Array:
    """A ``[batch..., a, b, c]``-broadcastable array as 4-D ``[B or 1, a, b, c]``."""
    x = x.reshape((1,) * (rank - x.ndim) + x.shape)
    if all(d == 1 for d in x.shape[:-3]):
        return x.reshape(1, *x.shape[-3:])
    return jnp.broadcast_to(x, (*batch, *x.shape[-3:])).reshape(-1, *x.shape[-3:])


def _tpu_block(length: int) -> int | None:
    """The TPU kernels' block size for ``length``: the largest multiple of 128 up to :data:`TPU_BLOCK`
    that divides it (their tiles need multiples of 128), or None."""
    for block in range(TPU_BLOCK, 127, -128):
        if length % block == 0:
            return block
    return None


def _segments_with_padding(
    batch: tuple[int, ...], q_len: int, kv_len: int, q_ids: Array | None, kv_ids: Array | None,
    kv_valid: Array | None,
) -> tuple[Array, Array] | None:
    """Segment ids ``([B, q_len], [B, kv_len])`` that also exclude padded keys: query ids become
    ``2 * id`` and valid key ids ``2 * id``, padded keys get the odd id 1, which no query has."""
    if q_ids is None and kv_valid is None:
        return None
    flat = lambda x, n: jnp.broadcast_to(jnp.asarray(x, jnp.int32), (*batch, n)).reshape(-1, n)
    q_ids = jnp.zeros((q_len,), jnp.int32) if q_ids is None else q_ids
    kv_ids = jnp.zeros((kv_len,), jnp.int32) if kv_ids is None else kv_ids
    q_ids, kv_ids = 2 * flat(q_ids, q_len), 2 * flat(kv_ids, kv_len)
    if kv_valid is not None:
        kv_ids = jnp.where(flat(kv_valid, kv_len).astype(bool), kv_ids, 1)
    return q_ids, kv_ids


# --------------------------------------------------------------------------------------------------
# cuDNN (NVIDIA GPUs)


def cudnn_attention(
    query: Array, key: Array, value: Array, *, bias, mask, causal, window, q_segment_ids, kv_segment_ids,
    scale, dropout_rate, dropout_rng, return_weights,
) -> tuple[Array, None]:
    """``'cudnn'``: ``jax.nn.dot_product_attention(implementation='cudnn')`` on a flattened batch.

    Segment ids become a mask; rows with nothing to attend to are zeroed afterwards.
    """
    del dropout_rng
    _unsupported(
        "cudnn", return_weights=return_weights, dropout=dropout_rate > 0.0,
        a_sliding_window_that_looks_right_without_causal=(
            window is not None and not causal and window[1] != 0
        ),
    )
    batch, rank = tuple(query.shape[:-3]), query.ndim
    kv_len = key.shape[-3]
    full_mask = mask
    if q_segment_ids is not None:
        full_mask = masks_lib.combine_masks(mask, masks_lib.segment_mask(q_segment_ids, kv_segment_ids))
    flat = lambda x: x.reshape(-1, *x.shape[-3:])
    out = jax.nn.dot_product_attention(
        flat(query), flat(key), flat(value),
        bias=None if bias is None else _flatten_batch(bias, batch, rank).astype(query.dtype),
        mask=None if full_mask is None else _flatten_batch(full_mask, batch, rank),
        scale=scale, is_causal=causal, local_window_size=window, implementation="cudnn",
    ).reshape(query.shape[:-1] + value.shape[-1:])
    out = _zero_empty_rows(
        out, mask=mask, causal=causal, window=window, q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids, kv_len=kv_len,
    )
    return out, None


def _is_nvidia_gpu() -> bool:
    if jax.default_backend() != "gpu":
        return False
    return "nvidia" in jax.devices()[0].device_kind.lower()


def cudnn_valid(*, query, key, value, bias, mask, causal, window, q_segment_ids, dropout_rate,
                 return_weights, **_) -> bool:
    head_dim = query.shape[-1]
    return (
        _is_nvidia_gpu()
        and query.dtype in (jnp.bfloat16, jnp.float16)
        and query.dtype == key.dtype == value.dtype
        and head_dim <= 128 and head_dim % 8 == 0 and value.shape[-1] == head_dim
        and dropout_rate == 0.0 and not return_weights
        and q_segment_ids is None
        and (window is None or causal or window[1] == 0)
        and (bias is None or (query.shape[-3] % 2 == 0 and key.shape[-3] % 2 == 0))
    )


# --------------------------------------------------------------------------------------------------
# Pallas TPU kernels


@functools.lru_cache(maxsize=64)
def _splash_kernel(
    q_len: int, kv_len: int, heads: int, causal: bool, window: tuple[int, int] | None, mqa: bool,
    block_q: int, block_kv: int,
):
    """A (cached) splash-attention kernel for one static mask: ``[heads, q_len, kv_len]``."""
    from jax.experimental.pallas.ops.tpu import splash_attention as splash

    shape = (q_len, kv_len)
    if window is not None:
        base = splash.LocalMask(shape, (window[0], 0 if causal else window[1]), offset=0)
    elif causal:
        base = splash.CausalMask(shape)
    else:
        base = splash.FullMask(shape)
    blocks = splash.BlockSizes(
        block_q=block_q, block_kv=block_kv, block_kv_compute=block_kv,
        block_q_dkv=block_q, block_kv_dkv=block_kv, block_kv_dkv_compute=block_kv,
        block_q_dq=block_q, block_kv_dq=block_kv,
    )
    make = splash.make_splash_mqa_single_device if mqa else splash.make_splash_mha_single_device
    # Off TPU the kernel runs in Pallas' interpreter (slow; for tests on CPU).
    interpret = jax.default_backend() != "tpu"
    return make(splash.MultiHeadMask([base] * heads), block_sizes=blocks, interpret=interpret)


def tpu_splash_attention(
    query: Array, key: Array, value: Array, *, bias, mask, causal, window, q_segment_ids, kv_segment_ids,
    scale, dropout_rate, dropout_rng, return_weights,
) -> tuple[Array, None]:
    """``'tpu_splash'``: the Pallas TPU splash-attention kernel (MHA, or MQA per key/value head for GQA).

    Causal/window masks are static splash masks (fully masked blocks are skipped); segment ids and a
    padding mask become splash segment ids.
    """
    del dropout_rng
    *batch, q_len, heads, head_dim = query.shape
    batch, rank = tuple(batch), query.ndim
    kv_len, kv_heads = key.shape[-3], key.shape[-2]
    padding = _padding_parts(mask, rank)
    block_q, block_kv = _tpu_block(q_len), _tpu_block(kv_len)
    _unsupported(
        "tpu_splash", return_weights=return_weights, dropout=dropout_rate > 0.0, bias=bias is not None,
        masks_other_than_padding=padding is None,
        lengths_that_are_not_multiples_of_128=block_q is None or block_kv is None,
        a_value_dim_other_than_head_dim=value.shape[-1] != head_dim,
        queries_with_no_key_in_their_window=_statically_empty_rows(q_len, kv_len, window),
    )
    from jax.experimental.pallas.ops.tpu import splash_attention as splash

    kv_valid, _ = padding
    groups = heads // kv_heads
    q = (query * jnp.asarray(scale, query.dtype)).reshape(-1, q_len, kv_heads, groups, head_dim)
    q = q.transpose(0, 2, 3, 1, 4)  # [B, Hk, G, q_len, D]
    k = key.reshape(-1, kv_len, kv_heads, head_dim).transpose(0, 2, 1, 3)  # [B, Hk, kv_len, D]
    v = value.reshape(-1, kv_len, kv_heads, head_dim).transpose(0, 2, 1, 3)
    segments = _segments_with_padding(batch, q_len, kv_len, q_segment_ids, kv_segment_ids, kv_valid)
    seg_axis = None if segments is None else 0
    segments = None if segments is None else splash.SegmentIds(*segments)
    if groups == 1:
        kernel = _splash_kernel(q_len, kv_len, heads, causal, window, False, block_q, block_kv)
        run = lambda q, k, v, s: kernel(q[:, 0], k, v, segment_ids=s)[:, None]  # q [Hk, 1, q_len, D]
    else:
        kernel = _splash_kernel(q_len, kv_len, groups, causal, window, True, block_q, block_kv)
        run = jax.vmap(lambda q, k, v, s: kernel(q, k, v, segment_ids=s), in_axes=(0, 0, 0, None))
    out = jax.vmap(run, in_axes=(0, 0, 0, seg_axis))(q, k, v, segments)  # [B, Hk, G, q_len, D]
    out = out.transpose(0, 3, 1, 2, 4).reshape(*batch, q_len, heads, head_dim)
    out = _zero_empty_rows(
        out, mask=mask, causal=causal, window=window, q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids, kv_len=kv_len,
    )
    return out, None


def tpu_flash_attention(
    query: Array, key: Array, value: Array, *, bias, mask, causal, window, q_segment_ids, kv_segment_ids,
    scale, dropout_rate, dropout_rng, return_weights,
) -> tuple[Array, None]:
    """``'tpu_flash'``: the Pallas TPU flash-attention kernel, which (unlike splash) takes a bias.

    The bias is broadcast to ``[B, heads, q_len, kv_len]`` (the kernel's only bias shape); grouped
    key/value heads are repeated; segment ids and a padding mask become its segment ids.
    """
    del dropout_rng
    *batch, q_len, heads, head_dim = query.shape
    batch, rank = tuple(batch), query.ndim
    kv_len, kv_heads = key.shape[-3], key.shape[-2]
    padding = _padding_parts(mask, rank)
    block_q, block_kv = _tpu_block(q_len), _tpu_block(kv_len)
    _unsupported(
        "tpu_flash", return_weights=return_weights, dropout=dropout_rate > 0.0, window=window is not None,
        masks_other_than_padding=padding is None,
        lengths_that_are_not_multiples_of_128=block_q is None or block_kv is None,
        a_value_dim_other_than_head_dim=value.shape[-1] != head_dim,
    )
    from jax.experimental.pallas.ops.tpu import flash_attention as flash

    kv_valid, _ = padding
    groups = heads // kv_heads
    to_heads_major = lambda x, n: x.reshape(-1, n, x.shape[-2], head_dim).transpose(0, 2, 1, 3)
    # The kernel computes (q k^T + ab) * sm_scale: scale q instead, so the bias is not scaled.
    q = to_heads_major(query * jnp.asarray(scale, query.dtype), q_len)  # [B, H, q_len, D]
    k = jnp.repeat(to_heads_major(key, kv_len), groups, axis=1)  # [B, H, kv_len, D]
    v = jnp.repeat(to_heads_major(value, kv_len), groups, axis=1)
    num_batch = q.shape[0]
    ab = None
    if bias is not None:
        ab = jnp.broadcast_to(
            _flatten_batch(bias, batch, rank), (num_batch, heads, q_len, kv_len)
        ).astype(jnp.float32)
    segments = _segments_with_padding(batch, q_len, kv_len, q_segment_ids, kv_segment_ids, kv_valid)
    segments = None if segments is None else flash.SegmentIds(*segments)
    blocks = flash.BlockSizes(
        block_q=block_q, block_k_major=block_kv, block_k=block_kv, block_b=1,
        block_q_major_dkv=block_q, block_k_major_dkv=block_kv, block_k_dkv=block_kv, block_q_dkv=block_q,
        block_k_major_dq=block_kv, block_k_dq=block_kv, block_q_dq=block_q,
    )
    out = flash.flash_attention(
        q, k, v, ab, segments, causal=causal, sm_scale=1.0, block_sizes=blocks
    )  # [B, H, q_len, D]
    out = out.transpose(0, 2, 1, 3).reshape(*batch, q_len, heads, head_dim)
    out = _zero_empty_rows(
        out, mask=mask, causal=causal, window=None, q_segment_ids=q_segment_ids,
        kv_segment_ids=kv_segment_ids, kv_len=kv_len,
    )
    return out, None


def _tpu_common_valid(*, query, key, value, mask, dropout_rate, return_weights) -> bool:
    q_len, kv_len = query.shape[-3], key.shape[-3]
    return (
        jax.default_backend() == "tpu"
        and dropout_rate == 0.0 and not return_weights
        and q_len % 128 == 0 and kv_len % 128 == 0
        and value.shape[-1] == query.shape[-1]
        and _padding_parts(mask, query.ndim) is not None
    )


def tpu_splash_valid(*, query, key, value, bias, mask, window, dropout_rate, return_weights,
                      **_) -> bool:
    return (
        bias is None
        and not _statically_empty_rows(query.shape[-3], key.shape[-3], window)
        and _tpu_common_valid(query=query, key=key, value=value, mask=mask, dropout_rate=dropout_rate,
                              return_weights=return_weights)
    )


def tpu_flash_valid(*, query, key, value, mask, window, dropout_rate, return_weights, **_) -> bool:
    return window is None and _tpu_common_valid(
        query=query, key=key, value=value, mask=mask, dropout_rate=dropout_rate,
        return_weights=return_weights,
    )
