"""Scaled dot-product attention: the single entry point that every multi-head layer calls.

``dot_product_attention`` validates its inputs, builds the mask from ``mask``/``causal``/``window``, and
dispatches to an implementation by name. ``'xla'`` is the plain reference that materialises the score
matrix; faster kernels register themselves in ``_IMPLEMENTATIONS`` and are picked by
``implementation=None`` when they are valid for the backend, shapes and masks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from attn_jax.attention import masks as masks_lib
from attn_jax.attention.normalizers import softmax

_LOG = logging.getLogger(__name__)

Window = int | tuple[int, int]


def _xla_attention(
    query: Array,
    key: Array,
    value: Array,
    *,
    bias: Array | None,
    mask: Array | None,
    scale: float,
    dropout_rate: float,
    dropout_rng: Array | None,
    return_weights: bool,
) -> tuple[Array, Array | None]:
    """Reference implementation: materialises ``[batch..., heads, q_len, kv_len]`` logits."""
    *batch, q_len, heads, head_dim = query.shape
    kv_len, kv_heads = key.shape[-3], key.shape[-2]
    groups = heads // kv_heads
    # [batch..., q_len, kv_heads, groups, head_dim]: query head n uses key/value head n // groups.
    q = query.reshape(*batch, q_len, kv_heads, groups, head_dim)
    logits = jnp.einsum(
        "...qhgd,...khd->...hgqk", q, key, preferred_element_type=jnp.float32
    )  # [batch..., kv_heads, groups, q_len, kv_len]
    logits = logits * jnp.float32(scale)
    if bias is not None:
        logits = logits + _group_heads(bias, logits.ndim, kv_heads, groups).astype(jnp.float32)
    if mask is not None:
        mask = _group_heads(mask, logits.ndim, kv_heads, groups)
    weights = softmax(logits, mask)  # float32
    probs = weights
    if dropout_rate > 0.0:
        keep = jax.random.bernoulli(dropout_rng, 1.0 - dropout_rate, probs.shape)
        probs = jnp.where(keep, probs / (1.0 - dropout_rate), 0.0)
    out = jnp.einsum("...hgqk,...khd->...qhgd", probs.astype(value.dtype), value)
    out = out.reshape(*batch, q_len, heads, value.shape[-1])
    if not return_weights:
        return out, None
    return out, weights.reshape(*batch, heads, q_len, kv_len)


def _group_heads(x: Array, ndim: int, kv_heads: int, groups: int) -> Array:
    """Reshape a ``[..., heads or 1, q, k]`` mask or bias to ``[..., kv_heads or 1, groups or 1, q, k]``."""
    x = jnp.asarray(x)
    x = x.reshape((1,) * (ndim - 1 - x.ndim) + x.shape)  # rank of [batch..., heads, q, k]
    if x.shape[-3] == 1:
        return x[..., None, :, :]
    return x.reshape(*x.shape[:-3], kv_heads, groups, *x.shape[-2:])


# name -> (function, predicate saying whether it can run this call). Ordered by preference.
_IMPLEMENTATIONS: dict[str, tuple[Callable[..., Any], Callable[..., bool]]] = {
    "xla": (_xla_attention, lambda **_: True),
}


def available_implementations() -> tuple[str, ...]:
    """Names accepted by ``dot_product_attention(implementation=...)``."""
    return tuple(_IMPLEMENTATIONS)


def _choose_implementation(name: str | None, **call: Any) -> Callable[..., Any]:
    if name is not None:
        if name not in _IMPLEMENTATIONS:
            raise ValueError(
                f"Unknown attention implementation {name!r}; "
                f"valid: {', '.join(available_implementations())} (or None for automatic)."
            )
        return _IMPLEMENTATIONS[name][0]
    for candidate, (fn, is_valid) in _IMPLEMENTATIONS.items():
        if is_valid(**call):
            _LOG.debug("dot_product_attention: using the %r implementation", candidate)
            return fn
    return _IMPLEMENTATIONS["xla"][0]


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


def dot_product_attention(
    query: ArrayLike,
    key: ArrayLike,
    value: ArrayLike,
    *,
    bias: ArrayLike | None = None,
    mask: ArrayLike | None = None,
    causal: bool = False,
    window: Window | None = None,
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
    gradients) instead of an average of all values.

    Args:
      query: ``[batch..., q_len, heads, head_dim]``.
      key: ``[batch..., kv_len, kv_heads, head_dim]``.
      value: ``[batch..., kv_len, kv_heads, v_dim]``.
      bias: added to the logits; broadcastable to ``[batch..., heads, q_len, kv_len]``.
      mask: boolean, ``True`` = may attend; broadcastable to ``[batch..., heads, q_len, kv_len]``.
      causal: query ``i`` attends to keys ``j <= i`` (queries and keys aligned at position 0).
      window: sliding window, a half-width or ``(left, right)`` as in ``jax.nn.dot_product_attention``'s
        ``local_window_size``.
      scale: logit multiplier, ``1/sqrt(head_dim)`` by default.
      dropout_rate: dropout on the attention weights (Srivastava et al., 2014), when not deterministic.
      dropout_rng: ``jax.random`` key, required for dropout.
      deterministic: disables dropout.
      return_weights: also return the (pre-dropout) float32 weights ``[batch..., heads, q_len, kv_len]``.
      implementation: ``'xla'`` (reference) or another registered kernel; ``None`` picks the best valid one.

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
    full_mask = masks_lib.combine_masks(
        mask,
        masks_lib.causal_mask(q_len, kv_len) if causal else None,
        masks_lib.window_mask(q_len, kv_len, window) if window is not None else None,
    )
    fn = _choose_implementation(
        implementation, query=query, key=key, value=value, bias=bias, mask=full_mask,
        dropout_rate=rate, return_weights=return_weights,
    )
    out, weights = fn(
        query, key, value, bias=None if bias is None else jnp.asarray(bias), mask=full_mask,
        scale=scale, dropout_rate=rate, dropout_rng=dropout_rng, return_weights=return_weights,
    )
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
