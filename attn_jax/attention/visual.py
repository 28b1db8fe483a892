"""Regularisers of visual (image-region) attention."""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike


def doubly_stochastic_penalty(
    weights: ArrayLike, mask: ArrayLike | None = None, *, target: float = 1.0
) -> Array:
    """Doubly stochastic attention penalty ``sum_i (target - sum_t alpha_ti)^2`` (Xu et al., 2015, eq. 14).

    Softmax makes every decoder step's weights sum to 1 over regions; this penalty also pushes every
    region's total attention over the caption towards ``target`` (1 in the paper), so that the model
    looks at every part of the image at some point. Multiply by the paper's ``lambda`` and add to the loss.

    Args:
      weights: ``[batch, steps, regions]`` attention weights ``alpha_ti``.
      mask: ``[batch, steps]`` boolean (or 0/1), ``True`` for real decoder steps; padded steps are ignored.
      target: the total attention each region should receive.

    Returns:
      ``[batch]`` float32 penalties.
    """
    alpha = jnp.asarray(weights, jnp.float32)  # [batch, steps, regions]
    if mask is not None:
        alpha = alpha * jnp.asarray(mask, jnp.float32)[..., None]
    per_region = jnp.sum(alpha, axis=-2)  # [batch, regions]
    return jnp.sum(jnp.square(target - per_region), axis=-1)
