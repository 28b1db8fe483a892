"""Local attention (Luong et al., 2015, "Effective Approaches to Attention-based Neural Machine Translation").

At decoder step ``t`` the model picks an aligned source position ``p_t`` and attends only to the window
``[p_t - D, p_t + D]`` of source positions:

- *local-m* (monotonic): ``p_t = t``, assuming source and target are roughly aligned;
- *local-p* (predictive): ``p_t = S * sigmoid(v_p^T tanh(W_p h_t))`` with ``S`` the source length, and the
  in-window weights are multiplied by a Gaussian ``exp(-(s - p_t)^2 / (2 sigma^2))`` with ``sigma = D / 2``,
  which favours positions near ``p_t`` and lets ``p_t`` be learned by backpropagation.

Positions are 0-based. Everything here is a plain ``jnp`` function of ``[batch..., kv_len]`` logits and a
``[batch...]`` centre; the parameters (``W_p``, ``v_p`` and the score) live in
:class:`attn_jax.layers.local.LocalAttention`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from attn_jax.attention.masks import combine_masks
from attn_jax.attention.normalizers import softmax


def monotonic_position(step: ArrayLike, source_length: ArrayLike) -> Array:
    """Aligned position of local-m attention (Luong et al., 2015): ``p_t = t``, clipped to ``[0, S - 1]``.

    Args:
      step: ``[batch...]`` integer decoder step ``t`` (0-based).
      source_length: scalar or ``[batch...]`` source length ``S`` (number of real source positions).

    Returns:
      ``[batch...]`` float32 centre of the window.
    """
    step = jnp.asarray(step, jnp.float32)
    last = jnp.maximum(jnp.asarray(source_length, jnp.float32) - 1.0, 0.0)
    return jnp.clip(step, 0.0, last)


def predictive_position(logit: ArrayLike, source_length: ArrayLike) -> Array:
    """Aligned position of local-p attention (Luong et al., 2015): ``p_t = S * sigmoid(logit)``.

    ``logit`` is ``v_p^T tanh(W_p h_t)``, computed by the module from the decoder state, so
    ``p_t`` is a real number in ``[0, S]`` and differentiable.

    Args:
      logit: ``[batch...]`` unnormalised position score.
      source_length: scalar or ``[batch...]`` source length ``S``.

    Returns:
      ``[batch...]`` float32 centre of the window.
    """
    return jnp.asarray(source_length, jnp.float32) * jax.nn.sigmoid(jnp.asarray(logit, jnp.float32))


def local_window_mask(center: ArrayLike, kv_len: int, half_width: float) -> Array:
    """Window ``[p_t - D, p_t + D]`` of local attention (Luong et al., 2015) as a boolean mask.

    Args:
      center: ``[batch...]`` aligned position ``p_t`` (integer or real).
      kv_len: number of source positions.
      half_width: the window half-width ``D >= 0`` (a Python number).

    Returns:
      ``[batch..., kv_len]`` boolean, True at the positions ``s`` with ``|s - p_t| <= D``.
    """
    if half_width < 0:
        raise ValueError(f"local attention half_width must be >= 0, got {half_width}.")
    positions = jnp.arange(kv_len, dtype=jnp.float32)  # [kv_len]
    center = jnp.asarray(center, jnp.float32)[..., None]  # [batch..., 1]
    return jnp.abs(positions - center) <= half_width


def gaussian_window(center: ArrayLike, kv_len: int, sigma: float) -> Array:
    """Gaussian favouring positions near ``p_t`` (Luong et al., 2015): ``exp(-(s - p_t)^2 / (2 sigma^2))``.

    Args:
      center: ``[batch...]`` aligned position ``p_t``.
      kv_len: number of source positions.
      sigma: standard deviation ``> 0`` (``D / 2`` in the paper).

    Returns:
      ``[batch..., kv_len]`` float32 values in ``(0, 1]``, equal to 1 at ``s = p_t``.
    """
    if sigma <= 0:
        raise ValueError(f"gaussian_window needs sigma > 0, got {sigma} (half_width D > 0).")
    positions = jnp.arange(kv_len, dtype=jnp.float32)  # [kv_len]
    center = jnp.asarray(center, jnp.float32)[..., None]  # [batch..., 1]
    return jnp.exp(-jnp.square(positions - center) / (2.0 * jnp.float32(sigma) ** 2))


def local_attention_weights(
    logits: ArrayLike,
    center: ArrayLike,
    half_width: float,
    mask: ArrayLike | None = None,
    gaussian: bool = False,
) -> Array:
    """Local attention weights (Luong et al., 2015): softmax inside the window, optionally times a Gaussian.

    ``a_t(s) = softmax_{s in window}(score_t(s)) * exp(-(s - p_t)^2 / (2 sigma^2))`` with
    ``sigma = D / 2`` when ``gaussian`` (local-p), or without the Gaussian factor (local-m). As in the
    paper, the Gaussian multiplies the aligned weights *after* the softmax and the product is **not**
    renormalised, so with ``gaussian=True`` a row sums to less than 1. The window mask carries no
    gradient; ``p_t`` is learned through the Gaussian factor.

    Args:
      logits: ``[batch..., kv_len]`` alignment scores ``score(h_t, h_s)``.
      center: ``[batch...]`` aligned position ``p_t``.
      half_width: the window half-width ``D`` (a Python number; ``> 0`` when ``gaussian``).
      mask: optional boolean ``[batch..., kv_len]``, True = may attend (e.g. source padding).
      gaussian: multiply by the Gaussian with ``sigma = D / 2`` (local-p).

    Returns:
      ``[batch..., kv_len]`` float32 weights, exactly zero outside the window and at masked positions,
      and all zeros for a row with no allowed position in its window.
    """
    kv_len = jnp.shape(logits)[-1]
    window = combine_masks(local_window_mask(center, kv_len, half_width), mask)
    weights = softmax(logits, window)  # [batch..., kv_len]
    if gaussian:
        weights = weights * gaussian_window(center, kv_len, half_width / 2.0)
    return weights
