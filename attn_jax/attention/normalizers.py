"""Normalisers that turn attention logits into attention weights.

All of them take an optional boolean ``mask`` (``True`` = may attend) broadcastable to the logits, compute
in float32 whatever the input dtype, and give an all-zero row (with finite gradients) where a query has
nothing to attend to.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

_BIG_NEG = float(jnp.finfo(jnp.float32).min)  # the masked logit: finite, so never inf - inf


def mask_logits(logits: ArrayLike, mask: ArrayLike | None) -> Array:
    """Float32 logits with disallowed positions set to ``finfo(float32).min`` (never ``-inf``).

    Logits that are already below that value (e.g. a user bias of ``-inf``) are clamped to it, so that
    a subtraction of the row maximum can never produce ``inf - inf``.
    """
    logits = jnp.maximum(jnp.asarray(logits, jnp.float32), _BIG_NEG)
    if mask is None:
        return logits
    return jnp.where(mask, logits, _BIG_NEG)


def _any_allowed(mask: ArrayLike, shape: tuple[int, ...], axis: int) -> Array:
    """Boolean ``shape`` with the normalised axis kept (size 1): whether any position is allowed."""
    return jnp.any(jnp.broadcast_to(mask, shape), axis=axis, keepdims=True)


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def _softmax(x: Array, axis: int) -> Array:
    """Softmax of float32 ``x``, whose derivative is written with its output ``y``: ``y (t - <y, t>)``.

    Logits below ``finfo(float32).min`` (a ``-inf`` bias) are clamped to it here, inside the rule, so
    the backward pass keeps only ``y``: autodiff would also keep the logits for the clamp's derivative
    and the exponentials and row sums for the division's, which made the ``'xla'`` attention's
    forward+backward about 25% slower than Flax's at 1,024 tokens on CPU.
    """
    x = jnp.maximum(x, _BIG_NEG)
    unnormalised = jnp.exp(x - x.max(axis=axis, keepdims=True))
    return unnormalised / unnormalised.sum(axis=axis, keepdims=True)


@_softmax.defjvp
def _softmax_jvp(axis: int, primals: tuple[Array], tangents: tuple[Array]) -> tuple[Array, Array]:
    (x,), (t,) = primals, tangents
    y = _softmax(x, axis)
    return y, y * (t - (y * t).sum(axis=axis, keepdims=True))


def softmax(logits: ArrayLike, mask: ArrayLike | None = None, *, axis: int = -1) -> Array:
    """Masked softmax in float32 (Bridle, 1990), the normaliser of soft attention.

    Args:
      logits: ``[..., kv_len]`` scores of any float dtype.
      mask: boolean, broadcastable to ``logits``; ``True`` = may attend.
      axis: the axis to normalise over.

    Returns:
      float32 weights of the logits' shape: each row sums to 1 over allowed positions, is exactly 0 at
      masked positions, and is all zeros when no position is allowed.
    """
    x = jnp.asarray(logits, jnp.float32)
    if mask is not None:
        # Added rather than selected, so that XLA:CPU keeps the logits' matmul and the softmax in one
        # fusion: a masked logit becomes finfo.min + logit, which is finfo.min itself (after the clamp
        # in _softmax) for any logit of magnitude below 1e31.
        x = x + jnp.where(mask, jnp.float32(0.0), jnp.float32(_BIG_NEG))
    weights = _softmax(x, axis)
    if mask is None:
        return weights
    # Masked entries are already exactly 0 (exp underflows) unless the whole row is masked, where the
    # softmax is uniform: only those rows need zeroing, by a [..., 1]-shaped 0/1 factor (a product,
    # like the mask, so its gradient stays in the fused softmax backward).
    return weights * _any_allowed(mask, x.shape, axis).astype(jnp.float32)


def log_softmax(logits: ArrayLike, mask: ArrayLike | None = None, *, axis: int = -1) -> Array:
    """Masked log-softmax in float32; masked positions get ``finfo(float32).min`` rather than ``-inf``."""
    x = mask_logits(logits, mask)
    out = jax.nn.log_softmax(x, axis=axis)
    if mask is None:
        return out
    return jnp.where(mask, out, _BIG_NEG)


def sparsemax(logits: ArrayLike, mask: ArrayLike | None = None, *, axis: int = -1) -> Array:
    """Sparsemax (Martins & Astudillo, 2016): the Euclidean projection of the logits onto the simplex.

    Unlike softmax it gives exactly-zero weight to low-scoring positions, so the attention is sparse.
    ``p = max(z - tau, 0)`` with ``tau`` chosen so that ``p`` sums to 1.

    Args:
      logits: ``[..., kv_len]`` scores.
      mask: boolean, broadcastable to ``logits``; ``True`` = may attend.
      axis: the axis to normalise over.

    Returns:
      float32 weights of the logits' shape, a distribution over allowed positions with exact zeros
      (all zeros for a row with nothing allowed).
    """
    z = jnp.moveaxis(jnp.asarray(logits, jnp.float32), axis, -1)
    m = None if mask is None else jnp.moveaxis(jnp.broadcast_to(mask, jnp.shape(logits)), axis, -1)
    # Sparsemax is shift-invariant: measure logits from the (allowed) row maximum, so that the cumulative
    # sums below stay small and float32 keeps its precision.
    allowed = z if m is None else jnp.where(m, z, _BIG_NEG)
    row_max = jnp.max(allowed, axis=-1, keepdims=True)
    if m is not None:
        row_max = jnp.where(jnp.any(m, axis=-1, keepdims=True), row_max, 0.0)
    z = z - jax.lax.stop_gradient(row_max)
    if m is not None:
        # The support never holds a logit below (row max - 1): masked positions go to -2, outside it.
        z = jnp.where(m, z, -2.0)
    n = z.shape[-1]
    z_sorted = -jnp.sort(-z, axis=-1)  # descending
    cumsum = jnp.cumsum(z_sorted, axis=-1)
    k = jnp.arange(1, n + 1, dtype=z.dtype)
    in_support = 1.0 + k * z_sorted > cumsum
    support_size = jnp.sum(in_support, axis=-1, keepdims=True)  # >= 1 always
    tau_sum = jnp.take_along_axis(cumsum, support_size.astype(jnp.int32) - 1, axis=-1)
    tau = (tau_sum - 1.0) / support_size.astype(z.dtype)
    p = jnp.maximum(z - tau, 0.0)
    if m is not None:
        p = p * m
    return jnp.moveaxis(p, -1, axis)


def gumbel_softmax(
    rng: Array,
    logits: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    temperature: float = 1.0,
    hard: bool = False,
    axis: int = -1,
) -> Array:
    """Gumbel-softmax relaxed sample (Jang et al., 2017; Maddison et al., 2017).

    With ``hard=True`` the forward value is the one-hot argmax of the perturbed logits while the gradient
    is that of the relaxed sample: the straight-through estimator (Bengio et al., 2013).

    Args:
      rng: a ``jax.random`` key.
      logits: ``[..., kv_len]`` unnormalised scores.
      mask: boolean, broadcastable to ``logits``; masked positions are never sampled.
      temperature: softmax temperature ``tau > 0``; lower is closer to one-hot.
      hard: return a straight-through one-hot sample.
      axis: the axis of categories.

    Returns:
      float32 weights of the logits' shape (a relaxed or one-hot sample).
    """
    x = jnp.asarray(logits, jnp.float32)
    gumbel = jax.random.gumbel(rng, x.shape, jnp.float32)
    soft = softmax((x + gumbel) / temperature, mask, axis=axis)
    if not hard:
        return soft
    index = jnp.argmax(mask_logits(x + gumbel, mask), axis=axis, keepdims=True)
    one_hot = (jnp.arange(x.shape[axis]).reshape(_axis_shape(x.ndim, axis)) == index).astype(soft.dtype)
    if mask is not None:
        one_hot = one_hot * _any_allowed(mask, x.shape, axis)
    return soft + jax.lax.stop_gradient(one_hot - soft)


def _axis_shape(ndim: int, axis: int) -> tuple[int, ...]:
    shape = [1] * ndim
    shape[axis] = -1
    return tuple(shape)
