"""Memory-efficient blockwise attention in pure JAX (Rabe & Staats, 2021; Dao et al., 2022).

Queries are cut into blocks of ``block_q`` rows and keys/values into blocks of ``block_kv`` rows. For each
query block the kernel loops over the key/value blocks it can see, keeping a running row maximum ``m``, a
running sum ``l`` of ``exp(logit - m)`` and a running weighted sum of values (the online softmax of
FlashAttention), so the ``[q_len, kv_len]`` score matrix is never built: memory is ``O(block_q * block_kv)``
per step instead of ``O(q_len * kv_len)``. The backward pass is a ``jax.custom_vjp`` that keeps only the
output and the row log-sum-exp and recomputes each block's probabilities (FlashAttention's backward).

Masks reach the kernel structurally: ``causal`` and ``window`` as positions (blocks that they mask
entirely are never visited, which is where the causal speed-up comes from), segment ids as
``[batch..., len]`` integers, and a user ``mask``/``bias`` (anything broadcastable to
``[batch..., heads, q_len, kv_len]``, e.g. a ``[batch, 1, 1, kv_len]`` padding mask) sliced block by
block. Blocks that the segment ids and the user mask leave fully masked are skipped at run time.

Semantics are those of the ``'xla'`` path of :func:`attn_jax.attention.dot_product_attention`: float32
softmax and accumulation whatever the input dtype, grouped key/value heads, masked logits at
``finfo(float32).min``, and zeros (with zero gradients) for a query row that may attend to nothing.
Dropout (Srivastava et al., 2014) draws its keep-mask per ``(rng, query block, key block)``, so the
backward pass regenerates the same mask; :func:`dropout_keep_mask` rebuilds the full mask for checks.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array, lax
from jax.typing import ArrayLike

Window = int | tuple[int, int]

# Default block sizes (query rows, key/value rows), measured with forward+backward on a 2-core CPU
# (float32, 8 heads, head_dim 64, 1,024 and 4,096 tokens). Without a causal or window band nothing can be
# skipped, and large key blocks amortise each loop step's slicing and rescaling: 512 x 2048 was 1.2x
# faster than 256 x 512 at 4,096 tokens. With a band, small blocks skip more of the masked area:
# 256 x 512 was within a few percent of the fastest of 128..512 x 256..512.
DENSE_BLOCKS = (512, 2048)
BANDED_BLOCKS = (256, 512)

_MIN = float(np.finfo(np.float32).min)  # masked logit, never -inf
_MAX = float(np.finfo(np.float32).max)  # log-sum-exp of an empty row: exp(logit - MAX) == 0


@dataclasses.dataclass(frozen=True)
class _Config:
    """Static description of one call: lengths, blocking and the structural masks."""

    q_len: int
    kv_len: int
    block_q: int
    block_kv: int
    num_q_blocks: int
    num_kv_blocks: int
    left: int | None  # keys j may attend from i - left (None: unbounded)
    right: int | None  # ... to i + right (None: unbounded); causal makes it 0
    dropout_rate: float
    skip_dynamic: bool  # test each block of the mask / segment ids and skip fully masked ones

    def kv_block_range(self) -> tuple[np.ndarray, np.ndarray]:
        """``[lo, hi)`` of the key blocks each query block can see: ``[num_q_blocks]`` int32 each."""
        i = np.arange(self.num_q_blocks)
        first_q = i * self.block_q
        last_q = np.minimum(first_q + self.block_q, self.q_len) - 1
        lo = np.zeros_like(i) if self.left is None else (first_q - self.left) // self.block_kv
        hi = (
            np.full_like(i, self.num_kv_blocks)
            if self.right is None
            else (last_q + self.right) // self.block_kv + 1
        )
        lo = np.clip(lo, 0, self.num_kv_blocks)
        hi = np.clip(hi, lo, self.num_kv_blocks)
        return lo.astype(np.int32), hi.astype(np.int32)

    def q_block_range(self) -> tuple[np.ndarray, np.ndarray]:
        """``[lo, hi)`` of the query blocks that see each key block: ``[num_kv_blocks]`` int32 each."""
        lo_kv, hi_kv = self.kv_block_range()
        j = np.arange(self.num_kv_blocks)[:, None]
        sees = (lo_kv[None, :] <= j) & (j < hi_kv[None, :])  # [num_kv_blocks, num_q_blocks]
        any_q = sees.any(axis=1)
        lo = np.where(any_q, sees.argmax(axis=1), 0)
        hi = np.where(any_q, self.num_q_blocks - sees[:, ::-1].argmax(axis=1), 0)
        return lo.astype(np.int32), hi.astype(np.int32)


@dataclasses.dataclass(frozen=True)
class _Blocked:
    """Inputs in the kernel's blocked layout (block index first, so a loop step is one slice).

    ``q``: ``[nq, B, Hk, G, bq, D]`` (already scaled); ``k``: ``[nk, B, Hk, bk, D]``;
    ``v``: ``[nk, B, Hk, bk, Dv]``; ``bias``/``mask``: ``[nq or 1, nk or 1, B or 1, Hk or 1, G or 1,
    bq or 1, bk or 1]``; ``q_seg``: ``[nq, B, bq]``; ``kv_seg``: ``[nk, B, bk]``.
    """

    q: Array
    k: Array
    v: Array
    bias: Array | None
    mask: Array | None
    q_seg: Array | None
    kv_seg: Array | None


def _index(x: Array, i: Array | int) -> Array:
    """``x[i]`` along the leading axis as a dynamic slice."""
    return lax.dynamic_index_in_dim(x, i, axis=0, keepdims=False)


def _tile(x: Array, i: Array, j: Array) -> Array:
    """Block ``(i, j)`` of a ``[nq or 1, nk or 1, ...]`` blocked mask or bias (broadcast axes stay at 0)."""
    x = _index(x, i if x.shape[0] > 1 else 0)
    return _index(x, j if x.shape[0] > 1 else 0)


def _allowed(
    cfg: _Config, data: _Blocked, i: Array, j: Array, key_major: bool = False
) -> Array | None:
    """Boolean ``[B or 1, Hk or 1, G or 1, bq, bk]``: which logits of block ``(i, j)`` may be attended to
    (``[B or 1, Hk or 1, bk, G or 1, bq]`` when ``key_major``).

    ``None`` when nothing in this call masks anything.
    """
    parts = []
    if key_major:
        q_pos = i * cfg.block_q + lax.broadcasted_iota(jnp.int32, (1, 1, cfg.block_q), 2)
        kv_pos = j * cfg.block_kv + lax.broadcasted_iota(jnp.int32, (cfg.block_kv, 1, 1), 0)
    else:
        q_pos = i * cfg.block_q + lax.broadcasted_iota(jnp.int32, (cfg.block_q, 1), 0)
        kv_pos = j * cfg.block_kv + lax.broadcasted_iota(jnp.int32, (1, cfg.block_kv), 1)
    if cfg.left is not None or cfg.right is not None:
        rel = kv_pos - q_pos  # [bq, bk]
        if cfg.left is not None:
            parts.append(rel >= -cfg.left)
        if cfg.right is not None:
            parts.append(rel <= cfg.right)
    if cfg.kv_len % cfg.block_kv:  # padded keys in the last block
        parts.append(kv_pos < cfg.kv_len)
    if data.q_seg is not None:
        if key_major:
            q_seg = _index(data.q_seg, i)[:, None, None, None, :]  # [B, 1, 1, 1, bq]
            kv_seg = _index(data.kv_seg, j)[:, None, :, None, None]  # [B, 1, bk, 1, 1]
        else:
            q_seg = _index(data.q_seg, i)[:, None, None, :, None]  # [B, 1, 1, bq, 1]
            kv_seg = _index(data.kv_seg, j)[:, None, None, None, :]  # [B, 1, 1, 1, bk]
        parts.append(q_seg == kv_seg)
    if data.mask is not None:
        tile = _tile(data.mask, i, j)
        parts.append(tile.transpose(0, 1, 4, 2, 3) if key_major else tile)
    if not parts:
        return None
    allowed = parts[0]
    for part in parts[1:]:
        allowed = allowed & part
    return allowed


def _logits(
    cfg: _Config, data: _Blocked, q_i: Array, k_j: Array, i: Array, j: Array, key_major: bool = False
) -> Array:
    """Masked float32 logits ``[B, Hk, G, bq, bk]`` of block ``(i, j)`` (``[B, Hk, bk, G, bq]`` when
    ``key_major``, the layout in which the backward pass's products need no transposes)."""
    if key_major:
        s = jnp.einsum("bhkd,bhgqd->bhkgq", k_j, q_i, preferred_element_type=jnp.float32)
    else:
        s = jnp.einsum("bhgqd,bhkd->bhgqk", q_i, k_j, preferred_element_type=jnp.float32)
    if data.bias is not None:
        # Clamped so that a -inf bias can never give inf - inf.
        tile = _tile(data.bias, i, j).astype(jnp.float32)
        s = jnp.maximum(s + (tile.transpose(0, 1, 4, 2, 3) if key_major else tile), _MIN)
    allowed = _allowed(cfg, data, i, j, key_major)
    if allowed is not None:
        s = jnp.where(allowed, s, _MIN)
    return s


def _keep(rng: Array, i: Array, j: Array, shape: tuple[int, ...], rate: float) -> Array:
    """Dropout keep-mask of block ``(i, j)``: the same bits in the forward and the backward pass."""
    return jax.random.bernoulli(jax.random.fold_in(jax.random.fold_in(rng, i), j), 1.0 - rate, shape)


def _maybe_skip(
    cfg: _Config, data: _Blocked, i: Array, j: Array, compute: Callable, carry: tuple
) -> tuple:
    """Run ``compute(carry)`` unless the segment ids / user mask leave block ``(i, j)`` fully masked."""
    if not cfg.skip_dynamic:
        return compute(carry)
    allowed = _allowed(cfg, data, i, j)
    return lax.cond(jnp.any(allowed), compute, lambda c: c, carry)


# --------------------------------------------------------------------------------------------------
# Forward


def _forward(cfg: _Config, data: _Blocked, rng: Array | None) -> tuple[Array, Array]:
    """Blocked output ``[nq, B, Hk, G, bq, Dv]`` (value dtype) and log-sum-exp ``[nq, B, Hk, G, bq]``."""
    _, batch, kv_heads, groups, block_q, _ = data.q.shape
    value_dim = data.v.shape[-1]
    kv_lo, kv_hi = cfg.kv_block_range()

    def query_block(_, xs):
        i, q_i, lo, hi = xs  # q_i [B, Hk, G, bq, D]

        def kv_step(j, carry):
            def compute(carry):
                m, row_sum, acc = carry  # [B, Hk, G, bq], [B, Hk, G, bq], [B, Hk, G, bq, Dv]
                v_j = _index(data.v, j)
                s = _logits(cfg, data, q_i, _index(data.k, j), i, j)  # [B, Hk, G, bq, bk]
                m_new = jnp.maximum(m, s.max(axis=-1))
                p = jnp.exp(s - m_new[..., None])
                alpha = jnp.exp(m - m_new)
                row_sum = alpha * row_sum + p.sum(axis=-1)
                if cfg.dropout_rate > 0.0:
                    keep = _keep(rng, i, j, p.shape, cfg.dropout_rate)
                    p = jnp.where(keep, p * (1.0 / (1.0 - cfg.dropout_rate)), 0.0)
                pv = jnp.einsum(
                    "bhgqk,bhkd->bhgqd", p.astype(v_j.dtype), v_j, preferred_element_type=jnp.float32
                )
                return m_new, row_sum, alpha[..., None] * acc + pv

            return _maybe_skip(cfg, data, i, j, compute, carry)

        stats_shape = (batch, kv_heads, groups, block_q)
        init = (
            jnp.full(stats_shape, _MIN, jnp.float32),
            jnp.zeros(stats_shape, jnp.float32),
            jnp.zeros((*stats_shape, value_dim), jnp.float32),
        )
        m, row_sum, acc = lax.fori_loop(lo, hi, kv_step, init)
        # A row that saw no allowed key keeps m == MIN: its output is 0 and its log-sum-exp is MAX, so the
        # backward pass gives it zero probabilities and zero gradients.
        empty = m <= _MIN
        row_sum = jnp.where(empty, 1.0, row_sum)
        out = jnp.where(empty[..., None], 0.0, acc / row_sum[..., None])
        lse = jnp.where(empty, _MAX, m + jnp.log(row_sum))
        return None, (out.astype(data.v.dtype), lse)

    xs = (jnp.arange(cfg.num_q_blocks, dtype=jnp.int32), data.q, jnp.asarray(kv_lo), jnp.asarray(kv_hi))
    _, (out, lse) = lax.scan(query_block, None, xs)
    return out, lse


# --------------------------------------------------------------------------------------------------
# Backward


def _backward(
    cfg: _Config, data: _Blocked, rng: Array | None, out: Array, lse: Array, d_out: Array
) -> tuple[Array, Array, Array, Array | None]:
    """Gradients of the blocked inputs: ``(dq, dk, dv, dbias)`` (FlashAttention's backward pass).

    Outer loop over key blocks (accumulating their ``dk``, ``dv``), inner loop over the query blocks that
    see them, adding into a full ``dq`` (and ``dbias``) carried through both loops.
    """
    q_lo, q_hi = cfg.q_block_range()
    # D_i = sum_j P_ij dP_ij = dO_i . O_i, also with dropout.  [nq, B, Hk, G, bq]
    delta = jnp.einsum(
        "nbhgqd,nbhgqd->nbhgq", d_out, out, preferred_element_type=jnp.float32
    )
    inv_keep = 1.0 / (1.0 - cfg.dropout_rate)

    def kv_block(carry, xs):
        dq_t, dbias = carry
        j, k_j, k_t_j, v_j, lo, hi = xs  # k_j [B, Hk, bk, D], k_t_j [B, Hk, D, bk], v_j [B, Hk, bk, Dv]

        def q_step(i, inner):
            def compute(inner):
                dk, dv, dq_t, dbias = inner
                q_i, do_i = _index(data.q, i), _index(d_out, i)
                # Key-major tiles [B, Hk, bk, G, bq]: dv and dk are then plain products.
                s = _logits(cfg, data, q_i, k_j, i, j, key_major=True)
                p = jnp.exp(s - _index(lse, i)[:, :, None])
                dp = jnp.einsum("bhkd,bhgqd->bhkgq", v_j, do_i, preferred_element_type=jnp.float32)
                if cfg.dropout_rate > 0.0:
                    keep = _keep(rng, i, j, _query_major(p.shape), cfg.dropout_rate)
                    keep = keep.transpose(0, 1, 4, 2, 3)
                    p_used = jnp.where(keep, p * inv_keep, 0.0)
                    dp = jnp.where(keep, dp * inv_keep, 0.0)
                else:
                    p_used = p
                dv = dv + jnp.einsum(
                    "bhkgq,bhgqd->bhkd", p_used.astype(do_i.dtype), do_i,
                    preferred_element_type=jnp.float32,
                )
                ds = p * (dp - _index(delta, i)[:, :, None])  # d logits, [B, Hk, bk, G, bq]
                ds_in = ds.astype(q_i.dtype)
                dk = dk + jnp.einsum("bhkgq,bhgqd->bhkd", ds_in, q_i, preferred_element_type=jnp.float32)
                # dq transposed, [B, Hk, D, G, bq]: with k pre-transposed this is a plain product too.
                dq_t_i = jnp.einsum("bhdk,bhkgq->bhdgq", k_t_j, ds_in, preferred_element_type=jnp.float32)
                dq_t = lax.dynamic_update_index_in_dim(dq_t, _index(dq_t, i) + dq_t_i, i, axis=0)
                if dbias is not None:
                    dbias = _add_bias_grad(dbias, ds.transpose(0, 1, 3, 4, 2), i, j)
                return dk, dv, dq_t, dbias

            return _maybe_skip(cfg, data, i, j, compute, inner)

        dk = jnp.zeros(k_j.shape, jnp.float32)
        dv = jnp.zeros(v_j.shape, jnp.float32)
        dk, dv, dq_t, dbias = lax.fori_loop(lo, hi, q_step, (dk, dv, dq_t, dbias))
        return (dq_t, dbias), (dk.astype(k_j.dtype), dv.astype(v_j.dtype))

    num_q_blocks, batch, kv_heads, groups, block_q, head_dim = data.q.shape
    dq_t = jnp.zeros((num_q_blocks, batch, kv_heads, head_dim, groups, block_q), jnp.float32)
    dbias = None if data.bias is None else jnp.zeros(data.bias.shape, jnp.float32)
    xs = (
        jnp.arange(cfg.num_kv_blocks, dtype=jnp.int32), data.k, jnp.swapaxes(data.k, -1, -2), data.v,
        jnp.asarray(q_lo), jnp.asarray(q_hi),
    )
    (dq_t, dbias), (dk, dv) = lax.scan(kv_block, (dq_t, dbias), xs)
    if dbias is not None:
        dbias = dbias.astype(data.bias.dtype)
    dq = dq_t.transpose(0, 1, 2, 4, 5, 3)  # [nq, B, Hk, G, bq, D]
    return dq.astype(data.q.dtype), dk, dv, dbias


def _query_major(shape: tuple[int, ...]) -> tuple[int, ...]:
    """``[B, Hk, bk, G, bq]`` -> ``[B, Hk, G, bq, bk]``."""
    batch, kv_heads, block_kv, groups, block_q = shape
    return batch, kv_heads, groups, block_q, block_kv


def _add_bias_grad(dbias: Array, ds: Array, i: Array, j: Array) -> Array:
    """Add block ``(i, j)`` of the logit gradient into the blocked bias gradient, summed over its
    broadcast axes (``dbias`` is ``[nq or 1, nk or 1, B or 1, Hk or 1, G or 1, bq or 1, bk or 1]``)."""
    block_shape = dbias.shape[2:]
    axes = tuple(a for a, (n, m) in enumerate(zip(block_shape, ds.shape, strict=True)) if n == 1 and m > 1)
    update = ds.sum(axis=axes, keepdims=True) if axes else ds
    iq = i if dbias.shape[0] > 1 else 0
    jk = j if dbias.shape[1] > 1 else 0
    row = _index(dbias, iq)
    row = lax.dynamic_update_index_in_dim(row, _index(row, jk) + update, jk, axis=0)
    return lax.dynamic_update_index_in_dim(dbias, row, iq, axis=0)


# --------------------------------------------------------------------------------------------------
# custom_vjp wiring


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def _attend(cfg: _Config, data: _Blocked, rng: Array | None) -> Array:
    return _forward(cfg, data, rng)[0]


def _attend_fwd(cfg: _Config, data: _Blocked, rng: Array | None):
    out, lse = _forward(cfg, data, rng)
    return out, (data, rng, out, lse)


def _attend_bwd(cfg: _Config, residuals, d_out: Array):
    data, rng, out, lse = residuals
    dq, dk, dv, dbias = _backward(cfg, data, rng, out, lse, d_out)
    grads = _Blocked(q=dq, k=dk, v=dv, bias=dbias, mask=None, q_seg=None, kv_seg=None)
    return grads, None


_attend.defvjp(_attend_fwd, _attend_bwd)

jax.tree_util.register_dataclass(
    _Blocked, data_fields=["q", "k", "v", "bias", "mask", "q_seg", "kv_seg"], meta_fields=[]
)


# --------------------------------------------------------------------------------------------------
# Layout: [batch..., len, heads, dim] <-> blocked


def _num_blocks(length: int, block: int) -> tuple[int, int]:
    """``(block, count)``: the block size actually used (never above the length) and how many."""
    block = max(1, min(block, length))
    return block, -(-length // block)


def default_block_sizes(causal: bool = False, window: Window | None = None) -> tuple[int, int]:
    """``(block_q, block_kv)`` used when a call gives none: smaller blocks when a causal or window band
    lets whole blocks be skipped."""
    return BANDED_BLOCKS if causal or window is not None else DENSE_BLOCKS


def _pad_axis(x: Array, axis: int, size: int, value: float | bool | int = 0) -> Array:
    pad = size - x.shape[axis]
    if pad == 0:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, pad)
    return jnp.pad(x, widths, constant_values=value)


def _canonical_pairwise(
    x: ArrayLike, name: str, batch: tuple[int, ...], heads: int, kv_heads: int, q_len: int, kv_len: int
) -> Array:
    """A mask or bias broadcastable to ``[batch..., heads, q_len, kv_len]`` as
    ``[B or 1, Hk or 1, G or 1, q_len or 1, kv_len or 1]`` (flattened batch, heads grouped as in GQA)."""
    x = jnp.asarray(x)
    rank = len(batch) + 3
    if x.ndim > rank:
        raise ValueError(f"{name} of shape {x.shape} has more dimensions than [batch..., heads, q, k].")
    x = x.reshape((1,) * (rank - x.ndim) + x.shape)
    *x_batch, x_heads, x_q, x_k = x.shape
    for got, full, what in ((x_heads, heads, "heads"), (x_q, q_len, "q_len"), (x_k, kv_len, "kv_len")):
        if got not in (1, full):
            raise ValueError(f"{name} of shape {x.shape} does not broadcast over {what}={full}.")
    if all(d == 1 for d in x_batch):
        x = x.reshape(1, x_heads, x_q, x_k)
    else:
        x = jnp.broadcast_to(x, (*batch, x_heads, x_q, x_k)).reshape(-1, x_heads, x_q, x_k)
    if x_heads == 1:
        return x[:, :, None]
    return x.reshape(x.shape[0], kv_heads, heads // kv_heads, x_q, x_k)


def _block_pairwise(x: Array, cfg: _Config, pad_value: float | bool) -> Array:
    """``[Bb, Hkb, Gb, Qb, Kb]`` -> ``[nq or 1, nk or 1, Bb, Hkb, Gb, bq or 1, bk or 1]``."""
    full_q, full_k = x.shape[3] > 1, x.shape[4] > 1
    if full_q:
        x = _pad_axis(x, 3, cfg.num_q_blocks * cfg.block_q, pad_value)
    if full_k:
        x = _pad_axis(x, 4, cfg.num_kv_blocks * cfg.block_kv, pad_value)
    nq, bq = (cfg.num_q_blocks, cfg.block_q) if full_q else (1, 1)
    nk, bk = (cfg.num_kv_blocks, cfg.block_kv) if full_k else (1, 1)
    x = x.reshape(*x.shape[:3], nq, bq, nk, bk)
    return x.transpose(3, 5, 0, 1, 2, 4, 6)


def _block_sequence(x: Array, block: int, count: int) -> Array:
    """``[B, T, H, D]`` -> ``[n, B, H, block, D]`` (zero padded)."""
    x = _pad_axis(x, 1, block * count)
    batch, _, heads, dim = x.shape
    return x.reshape(batch, count, block, heads, dim).transpose(1, 0, 3, 2, 4)


def _block_segments(ids: ArrayLike, batch: tuple[int, ...], length: int, block: int, count: int) -> Array:
    """``[batch..., len]`` -> ``[n, B, block]`` (padding gets id -1; padded keys are masked anyway)."""
    ids = jnp.broadcast_to(jnp.asarray(ids, jnp.int32), (*batch, length)).reshape(-1, length)
    ids = _pad_axis(ids, 1, block * count, -1)
    return ids.reshape(ids.shape[0], count, block).transpose(1, 0, 2)


def _normalise_window(window: Window | None, causal: bool) -> tuple[int | None, int | None]:
    """``(left, right)`` reach of the structural mask; ``None`` = unbounded on that side."""
    left = right = None
    if window is not None:
        left, right = (window, window) if isinstance(window, int) else window
        if left < 0 or right < 0:
            raise ValueError(f"window sizes must be >= 0, got {window!r}")
    if causal:
        right = 0
    return left, right


def blockwise_attention(
    query: ArrayLike,
    key: ArrayLike,
    value: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    causal: bool = False,
    window: Window | None = None,
    q_segment_ids: ArrayLike | None = None,
    kv_segment_ids: ArrayLike | None = None,
    scale: float | None = None,
    dropout_rate: float = 0.0,
    dropout_rng: Array | None = None,
    block_q: int | None = None,
    block_kv: int | None = None,
) -> Array:
    """Memory-efficient attention ``softmax(q k^T * scale + bias) v`` (Rabe & Staats, 2021), computed one
    ``[block_q, block_kv]`` tile at a time with the online softmax of FlashAttention (Dao et al., 2022).

    The same function as the ``'xla'`` implementation of
    :func:`attn_jax.attention.dot_product_attention` (grouped-query attention, zeros for a query row with
    nothing to attend to), in ``O(block_q * block_kv)`` temporary memory per step; the gradient
    recomputes blocks instead of storing the probabilities. Usually called through
    ``dot_product_attention(..., implementation='blockwise')``.

    Args:
      query: ``[batch..., q_len, heads, head_dim]``.
      key: ``[batch..., kv_len, kv_heads, head_dim]``; ``heads`` is a multiple of ``kv_heads``.
      value: ``[batch..., kv_len, kv_heads, v_dim]``.
      bias: added to the logits; broadcastable to ``[batch..., heads, q_len, kv_len]``; sliced per block,
        and differentiable.
      mask: boolean, ``True`` = may attend; broadcastable to ``[batch..., heads, q_len, kv_len]``.
      causal: query ``i`` attends to keys ``j <= i``; key blocks above the diagonal are never visited.
      window: sliding window, a half-width or ``(left, right)``: ``i - left <= j <= i + right``.
      q_segment_ids: ``[batch..., q_len]`` integers; queries attend only to keys of the same segment.
      kv_segment_ids: ``[batch..., kv_len]`` integers; defaults to ``q_segment_ids``.
      scale: logit multiplier, ``1/sqrt(head_dim)`` by default.
      dropout_rate: dropout on the attention weights, needs ``dropout_rng``. The keep-mask is drawn per
        ``(dropout_rng, query block, key block)``, so it depends on the block sizes
        (see :func:`dropout_keep_mask`).
      dropout_rng: ``jax.random`` key.
      block_q: query rows per block (lowered to ``q_len`` when longer); ``None``: from
        :func:`default_block_sizes`.
      block_kv: key/value rows per block (lowered to ``kv_len`` when longer); ``None``: likewise.

    Returns:
      ``[batch..., q_len, heads, v_dim]`` in the value dtype.
    """
    query, key, value = jnp.asarray(query), jnp.asarray(key), jnp.asarray(value)
    *batch, q_len, heads, head_dim = query.shape
    kv_len, kv_heads, value_dim = key.shape[-3], key.shape[-2], value.shape[-1]
    batch = tuple(batch)
    if heads % kv_heads:
        raise ValueError(f"query heads ({heads}) must be a multiple of key/value heads ({kv_heads}).")
    if not 0.0 <= dropout_rate < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1); got {dropout_rate}.")
    if dropout_rate > 0.0 and dropout_rng is None:
        raise ValueError("dropout_rate > 0 needs a dropout_rng key.")
    default_q, default_kv = default_block_sizes(causal, window)
    block_q = default_q if block_q is None else block_q
    block_kv = default_kv if block_kv is None else block_kv
    if block_q < 1 or block_kv < 1:
        raise ValueError(f"block sizes must be positive; got block_q={block_q}, block_kv={block_kv}.")
    if kv_segment_ids is not None and q_segment_ids is None:
        raise ValueError("kv_segment_ids needs q_segment_ids.")
    if q_segment_ids is not None and kv_segment_ids is None:
        if q_len != kv_len:
            raise ValueError("kv_segment_ids are required when q_len != kv_len.")
        kv_segment_ids = q_segment_ids
    scale = head_dim**-0.5 if scale is None else scale
    left, right = _normalise_window(window, causal)
    bq, nq = _num_blocks(q_len, block_q)
    bk, nk = _num_blocks(kv_len, block_kv)
    cfg = _Config(
        q_len=q_len, kv_len=kv_len, block_q=bq, block_kv=bk, num_q_blocks=nq, num_kv_blocks=nk,
        left=left, right=right, dropout_rate=float(dropout_rate),
        skip_dynamic=mask is not None or q_segment_ids is not None,
    )
    groups = heads // kv_heads
    flat = (-1,) if batch else (1,)
    q = (query.astype(jnp.float32) * scale).astype(query.dtype)  # scaling q is cheaper than the logits
    q = q.reshape(*flat, q_len, kv_heads, groups, head_dim)
    q = _pad_axis(q, 1, nq * bq).reshape(-1, nq, bq, kv_heads, groups, head_dim)
    q = q.transpose(1, 0, 3, 4, 2, 5)  # [nq, B, Hk, G, bq, D]
    pairwise = (batch, heads, kv_heads, q_len, kv_len)
    data = _Blocked(
        q=q,
        k=_block_sequence(key.reshape(*flat, kv_len, kv_heads, head_dim), bk, nk),
        v=_block_sequence(value.reshape(*flat, kv_len, kv_heads, value_dim), bk, nk),
        bias=(
            None if bias is None
            else _block_pairwise(_canonical_pairwise(bias, "bias", *pairwise), cfg, 0.0)
        ),
        mask=(
            None if mask is None
            else _block_pairwise(_canonical_pairwise(jnp.asarray(mask, bool), "mask", *pairwise), cfg, False)
        ),
        q_seg=None if q_segment_ids is None else _block_segments(q_segment_ids, batch, q_len, bq, nq),
        kv_seg=None if kv_segment_ids is None else _block_segments(kv_segment_ids, batch, kv_len, bk, nk),
    )
    rng = dropout_rng if dropout_rate > 0.0 else None
    out = _attend(cfg, data, rng)  # [nq, B, Hk, G, bq, Dv]
    out = out.transpose(1, 0, 4, 2, 3, 5).reshape(-1, nq * bq, heads, value_dim)[:, :q_len]
    return out.reshape(*batch, q_len, heads, value_dim)


def dropout_keep_mask(
    rng: Array,
    batch: tuple[int, ...],
    heads: int,
    kv_heads: int,
    q_len: int,
    kv_len: int,
    rate: float,
    *,
    block_q: int,
    block_kv: int,
) -> Array:
    """The full dropout keep-mask ``[batch..., heads, q_len, kv_len]`` that :func:`blockwise_attention`
    uses for these shapes, rate and block sizes, assembled from its per-block draws (for tests and
    debugging: it is ``O(q_len * kv_len)``). The block sizes are those of the call, e.g.
    :func:`default_block_sizes` when it gave none."""
    bq, nq = _num_blocks(q_len, block_q)
    bk, nk = _num_blocks(kv_len, block_kv)
    shape = (math.prod(batch), kv_heads, heads // kv_heads, bq, bk)
    keep = _keep_blocks(rng, shape, nq, nk, float(rate))  # [B, Hk, G, nq * bq, nk * bk]
    return keep[..., :q_len, :kv_len].reshape(*batch, heads, q_len, kv_len)


@partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _keep_blocks(rng: Array, shape: tuple[int, ...], nq: int, nk: int, rate: float) -> Array:
    """Every block's keep-mask, tiled: ``[B, Hk, G, nq * bq, nk * bk]``."""
    i, j = jnp.meshgrid(jnp.arange(nq, dtype=jnp.int32), jnp.arange(nk, dtype=jnp.int32), indexing="ij")
    keep = jax.vmap(jax.vmap(lambda i, j: _keep(rng, i, j, shape, rate)))(i, j)  # [nq, nk, B, Hk, G, bq, bk]
    batch, kv_heads, groups, bq, bk = shape
    return keep.transpose(2, 3, 4, 0, 5, 1, 6).reshape(batch, kv_heads, groups, nq * bq, nk * bk)
