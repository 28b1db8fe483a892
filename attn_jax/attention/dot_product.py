"""Scaled dot-product attention: the single entry point that every multi-head layer calls.

``dot_product_attention`` validates its inputs and hands the masks to an implementation *structurally*
(``causal``, ``window`` and segment ids as such, a user ``mask``/``bias`` as given), so kernels that never
build the ``[q_len, kv_len]`` score matrix do not have to build a mask of that size either. The
implementations, by name:

- ``'xla'``: the reference; builds the full mask and score matrix. Runs everywhere.
- ``'blockwise'``: memory-efficient attention in pure JAX (Rabe & Staats, 2021; Dao et al., 2022),
  :mod:`attn_jax.attention.blockwise`. Runs everywhere.
- ``'cudnn'``: cuDNN's fused flash attention through ``jax.nn.dot_product_attention`` (NVIDIA GPUs,
  float16/bfloat16).
- ``'tpu_splash'`` / ``'tpu_flash'``: the Pallas TPU splash- and flash-attention kernels that ship
  with JAX (``jax.experimental.pallas.ops.tpu``). Both also run on CPU in Pallas' TPU interpret mode
  (``jax.experimental.pallas.tpu.force_tpu_interpret_mode()``), slowly, which is how they are tested
  without a TPU.

``implementation=None`` takes the first valid one in :data:`AUTO_ORDER` for the backend, shapes and
masks, and names it in a ``logging`` debug message.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from attn_jax.attention import masks as masks_lib
from attn_jax.attention.blockwise import blockwise_attention
from attn_jax.attention.fused import (
    cudnn_attention,
    cudnn_valid,
    tpu_flash_attention,
    tpu_flash_valid,
    tpu_splash_attention,
    tpu_splash_valid,
)
from attn_jax.attention.normalizers import softmax

_LOG = logging.getLogger(__name__)

Window = int | tuple[int, int]

# On CPU the blockwise kernel is faster than 'xla' from this key length on (benchmarks/attention.py on a
# 2-core CPU, float32, 8 heads, head_dim 64; at 512 tokens 1.8x forward and 1.1x forward+backward, causal
# 1.2x and 2.4x; at 256 'xla' is 1.2-1.6x faster forward+backward, and compiles faster).
CPU_BLOCKWISE_MIN_KV_LEN = 512
# On GPU/TPU, when no fused kernel fits, 'xla' is used unless its float32 score matrix would exceed this.
ACCELERATOR_XLA_MAX_SCORE_BYTES = 2**30


def _xla_attention(
    query: Array,
    key: Array,
    value: Array,
    *,
    bias: Array | None,
    mask: Array | None,
    causal: bool,
    window: tuple[int, int] | None,
    q_segment_ids: Array | None,
    kv_segment_ids: Array | None,
    scale: float,
    dropout_rate: float,
    dropout_rng: Array | None,
    return_weights: bool,
) -> tuple[Array, Array | None]:
    """Reference implementation: materialises ``[batch..., heads, q_len, kv_len]`` logits and mask."""
    *batch, q_len, heads, head_dim = query.shape
    kv_len, kv_heads = key.shape[-3], key.shape[-2]
    groups = heads // kv_heads
    mask = masks_lib.combine_masks(
        mask,
        masks_lib.causal_mask(q_len, kv_len) if causal else None,
        masks_lib.window_mask(q_len, kv_len, window) if window is not None else None,
        masks_lib.segment_mask(q_segment_ids, kv_segment_ids) if q_segment_ids is not None else None,
    )
    if groups == 1:  # plain multi-head: 4-D products, which XLA lays out without extra transposes
        q, q_spec, head_axes = query, "...qhd", "h"
    else:  # [batch..., q_len, kv_heads, groups, head_dim]: query head n uses key/value head n // groups.
        q, q_spec, head_axes = query.reshape(*batch, q_len, kv_heads, groups, head_dim), "...qhgd", "hg"
    logits = jnp.einsum(
        f"{q_spec},...khd->...{head_axes}qk", q, key, preferred_element_type=jnp.float32
    )  # [batch..., heads, q_len, kv_len] or [batch..., kv_heads, groups, q_len, kv_len]
    logits = logits * jnp.float32(scale)
    if bias is not None:
        logits = logits + _heads_layout(bias, logits.ndim, kv_heads, groups).astype(jnp.float32)
    if mask is not None:
        mask = _heads_layout(mask, logits.ndim, kv_heads, groups)
    weights = softmax(logits, mask)  # float32
    probs = weights
    if dropout_rate > 0.0:
        keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, probs.shape)
        # A product with a 0 or 1/keep multiplier (not a select on the weights): its gradient is a
        # product too, which XLA:CPU fuses with the value-gradient matmul and the softmax backward.
        probs = probs * (keep.astype(jnp.float32) * jnp.float32(1.0 / (1.0 - dropout_rate)))
    out = jnp.einsum(f"...{head_axes}qk,...khd->{q_spec}", probs.astype(value.dtype), value)
    out = out.reshape(*batch, q_len, heads, value.shape[-1])
    if not return_weights:
        return out, None
    return out, weights.reshape(*batch, heads, q_len, kv_len)


def _heads_layout(x: Array, ndim: int, kv_heads: int, groups: int) -> Array:
    """A mask or bias in the layout of the logits: ``_group_heads`` when heads are grouped, else
    ``[..., heads or 1, q, k]`` at the logits' rank."""
    if groups > 1:
        return _group_heads(x, ndim, kv_heads, groups)
    x = jnp.asarray(x)
    return x.reshape((1,) * (ndim - x.ndim) + x.shape)


def _group_heads(x: Array, ndim: int, kv_heads: int, groups: int) -> Array:
    """Reshape a ``[..., heads or 1, q, k]`` mask or bias to ``[..., kv_heads or 1, groups or 1, q, k]``."""
    x = jnp.asarray(x)
    x = x.reshape((1,) * (ndim - 1 - x.ndim) + x.shape)  # rank of [batch..., heads, q, k]
    if x.shape[-3] == 1:
        return x[..., None, :, :]
    return x.reshape(*x.shape[:-3], kv_heads, groups, *x.shape[-2:])


def _blockwise(query: Array, key: Array, value: Array, *, return_weights: bool, **call: Any):
    """``'blockwise'``: :func:`attn_jax.attention.blockwise.blockwise_attention`."""
    if return_weights:
        raise ValueError(
            "implementation='blockwise' never builds the attention weights, so it cannot return them; "
            "use implementation='xla' (or None) with return_weights=True."
        )
    return blockwise_attention(query, key, value, **call), None


# --------------------------------------------------------------------------------------------------
# Registry and automatic choice


def _blockwise_valid(*, query, key, return_weights, **_) -> bool:
    if return_weights:
        return False
    kv_len = key.shape[-3]
    if jax.default_backend() == "cpu":
        return kv_len >= CPU_BLOCKWISE_MIN_KV_LEN
    score_bytes = 4 * math.prod(query.shape[:-1]) * kv_len  # float32 [batch..., heads, q_len, kv_len]
    return score_bytes > ACCELERATOR_XLA_MAX_SCORE_BYTES


@dataclasses.dataclass(frozen=True)
class _Implementation:
    """One attention kernel: the function, whether it fits a call, and the backends it runs on."""

    fn: Callable[..., tuple[Array, Array | None]]
    is_valid: Callable[..., bool]
    backends: tuple[str, ...]  # empty: every backend


_IMPLEMENTATIONS: dict[str, _Implementation] = {
    "xla": _Implementation(_xla_attention, lambda **_: True, ()),
    "blockwise": _Implementation(_blockwise, _blockwise_valid, ()),
    "cudnn": _Implementation(cudnn_attention, cudnn_valid, ("gpu",)),
    "tpu_splash": _Implementation(tpu_splash_attention, tpu_splash_valid, ("tpu",)),
    "tpu_flash": _Implementation(tpu_flash_attention, tpu_flash_valid, ("tpu",)),
}

# Preference of implementation=None: the fused kernels, then blockwise where it wins, else xla.
AUTO_ORDER = ("cudnn", "tpu_splash", "tpu_flash", "blockwise", "xla")


def available_implementations(backend: str | None = None) -> tuple[str, ...]:
    """Names accepted by ``dot_product_attention(implementation=...)``; with ``backend`` (``'cpu'``,
    ``'gpu'``, ``'tpu'``), only those that run there natively."""
    return tuple(
        name for name, impl in _IMPLEMENTATIONS.items()
        if backend is None or not impl.backends or backend in impl.backends
    )


def _choose_implementation(name: str | None, **call: Any) -> Callable[..., Any]:
    if name is not None:
        if name not in _IMPLEMENTATIONS:
            raise ValueError(
                f"Unknown attention implementation {name!r}; "
                f"valid: {', '.join(available_implementations())} (or None for automatic)."
            )
        return _IMPLEMENTATIONS[name].fn
    for candidate in AUTO_ORDER:
        if _IMPLEMENTATIONS[candidate].is_valid(**call):
            _LOG.debug("dot_product_attention: using the %r implementation", candidate)
            return _IMPLEMENTATIONS[candidate].fn
    return _xla_attention


def _check_shapes(query: Array, key: Array, value: Array) -> None:
    if query.ndim < 3:
        raise ValueError(
            f"query must be [batch..., q_len, heads, head_dim]; got shape {query.shape}."
        )
    if key.ndim != query.ndim or value.ndim != query.ndim:
        raise ValueError(
            f"query, key and value must have the same rank; got {query.shape}, {key.shape}, "
            f"{value.shape}."
        )
    if key.shape[:-1] != value.shape[:-1]:
        raise ValueError(f"key {key.shape} and value {value.shape} must agree up to head_dim.")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"query head_dim {query.shape[-1]} != key head_dim {key.shape[-1]}.")
    heads, kv_heads = query.shape[-2], key.shape[-2]
    if heads % kv_heads:
        raise ValueError(
            f"query heads ({heads}) must be a multiple of key/value heads ({kv_heads})."
        )


def _check_segments(
    q_segment_ids: ArrayLike | None, kv_segment_ids: ArrayLike | None, q_len: int, kv_len: int
) -> tuple[Array | None, Array | None]:
    if q_segment_ids is None:
        if kv_segment_ids is not None:
            raise ValueError("kv_segment_ids needs q_segment_ids.")
        return None, None
    q_ids = jnp.asarray(q_segment_ids)
    if kv_segment_ids is None:
        if q_len != kv_len:
            raise ValueError("kv_segment_ids are required when q_len != kv_len.")
        kv_ids = q_ids
    else:
        kv_ids = jnp.asarray(kv_segment_ids)
    for ids, length, name in ((q_ids, q_len, "q_segment_ids"), (kv_ids, kv_len, "kv_segment_ids")):
        if ids.ndim < 1 or ids.shape[-1] != length or not jnp.issubdtype(ids.dtype, jnp.integer):
            raise ValueError(f"{name} must be integers [batch..., {length}]; got {ids.dtype}{ids.shape}.")
    return q_ids, kv_ids


def dot_product_attention(
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
    deterministic: bool = True,
    return_weights: bool = False,
    implementation: str | None = None,
) -> Array | tuple[Array, Array]:
    """Scaled dot-product attention ``softmax(q k^T * scale + bias) v`` (Vaswani et al., 2017).

    Numerically the same function as ``jax.nn.dot_product_attention``, with grouped-query attention
    (Ainslie et al., 2023) and multi-query attention (Shazeer, 2019) when ``heads`` is a multiple of
    ``kv_heads``, except that a query row with nothing to attend to returns zeros (with finite
    gradients) instead of an average of all values. All masks combine with logical AND.

    Args:
      query: ``[batch..., q_len, heads, head_dim]``.
      key: ``[batch..., kv_len, kv_heads, head_dim]``.
      value: ``[batch..., kv_len, kv_heads, v_dim]``.
      bias: added to the logits; broadcastable to ``[batch..., heads, q_len, kv_len]``.
      mask: boolean, ``True`` = may attend; broadcastable to ``[batch..., heads, q_len, kv_len]``.
      causal: query ``i`` attends to keys ``j <= i`` (queries and keys aligned at position 0).
      window: sliding window, a half-width or ``(left, right)`` as in ``jax.nn.dot_product_attention``'s
        ``local_window_size``: query ``i`` attends to keys ``i - left <= j <= i + right``.
      q_segment_ids: ``[batch..., q_len]`` integers for packed sequences: a query attends only to keys
        with the same segment id.
      kv_segment_ids: ``[batch..., kv_len]`` integers; defaults to ``q_segment_ids`` (self-attention).
      scale: logit multiplier, ``1/sqrt(head_dim)`` by default.
      dropout_rate: dropout on the attention weights (Srivastava et al., 2014), when not deterministic.
        Implementations draw different (equally valid) keep-masks from the same key.
      dropout_rng: ``jax.random`` key, required for dropout.
      deterministic: disables dropout.
      return_weights: also return the (pre-dropout) float32 weights ``[batch..., heads, q_len, kv_len]``
        (only ``'xla'`` builds them; ``None`` then picks it).
      implementation: ``'xla'`` (reference), ``'blockwise'``, ``'cudnn'``, ``'tpu_splash'`` or
        ``'tpu_flash'`` (see the module docstring); ``None`` picks the best valid one.

    Returns:
      ``[batch..., q_len, heads, v_dim]`` in the value dtype, and the weights when ``return_weights``.
    """
    query, key, value = jnp.asarray(query), jnp.asarray(key), jnp.asarray(value)
    _check_shapes(query, key, value)
    q_len, kv_len = query.shape[-3], key.shape[-3]
    if scale is None:
        scale = query.shape[-1] ** -0.5
    rate = 0.0 if deterministic else float(dropout_rate)
    if rate > 0.0 and dropout_rng is None:
        raise ValueError("dropout_rate > 0 with deterministic=False needs a dropout_rng key.")
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1); got {dropout_rate}.")
    if window is not None:
        window = (window, window) if isinstance(window, int) else tuple(window)
        if len(window) != 2 or min(window) < 0:
            raise ValueError(f"window sizes must be >= 0, got {window!r}")
    q_segment_ids, kv_segment_ids = _check_segments(q_segment_ids, kv_segment_ids, q_len, kv_len)
    call = dict(
        bias=None if bias is None else jnp.asarray(bias),
        mask=None if mask is None else jnp.asarray(mask, dtype=bool),
        causal=bool(causal), window=window, q_segment_ids=q_segment_ids, kv_segment_ids=kv_segment_ids,
        scale=scale, dropout_rate=rate, dropout_rng=dropout_rng if rate > 0.0 else None,
        return_weights=return_weights,
    )
    fn = _choose_implementation(implementation, query=query, key=key, value=value, **call)
    out, weights = fn(query, key, value, **call)
    return (out, weights) if return_weights else out


def weighted_sum(weights: ArrayLike, value: ArrayLike) -> Array:
    """The attention read-out ``sum_j w_ij v_j`` (Bahdanau et al., 2015, the context vector).

    Args:
      weights: ``[batch..., heads, q_len, kv_len]``.
      value: ``[batch..., kv_len, heads, dim]``.

    Returns:
      ``[batch..., q_len, heads, dim]`` in the value dtype.
    """
    value = jnp.asarray(value)
    return jnp.einsum("...hqk,...khd->...qhd", jnp.asarray(weights).astype(value.dtype), value)
