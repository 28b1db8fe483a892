"""Differentiable spatial sampling: the grid generator and sampler of Spatial Transformer Networks.

Jaderberg et al. (2015) attend to a region of an image by warping it: an affine transform ``theta``
maps every output pixel to a point of the input (:func:`affine_grid`), and the input is read there with
bilinear interpolation (:func:`bilinear_sample`), which is differentiable with respect to both the image
and the sampling points, so ``theta`` can be learned by backpropagation.

Coordinates are normalised to ``[-1, 1]`` over the *pixel edges* of the image, with pixel ``i`` of a
size-``n`` axis centred at ``(2 i + 1) / n - 1`` (the ``align_corners=False`` convention of
``torch.nn.functional.grid_sample``); the last axis of a grid is ``(x, y)``, i.e. (column, row).
Images are NHWC.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike


def _pixel_centres(size: int) -> Array:
    """``[size]`` normalised coordinates ``(2 i + 1) / size - 1`` of the pixel centres of one axis."""
    return (2.0 * jnp.arange(size, dtype=jnp.float32) + 1.0) / size - 1.0


def affine_grid(theta: ArrayLike, size: Sequence[int]) -> Array:
    """Sampling grid of an affine transform (Jaderberg et al., 2015, eq. 1).

    Each output pixel centre ``(x_t, y_t)`` is mapped to the source point
    ``(x_s, y_s) = theta @ [x_t, y_t, 1]``.

    Args:
      theta: ``[n, 2, 3]`` affine transforms; the identity is ``[[1, 0, 0], [0, 1, 0]]``.
      size: ``(n, out_h, out_w)``, the batch size and the output resolution.

    Returns:
      ``[n, out_h, out_w, 2]`` float32 (or wider) source coordinates ``(x_s, y_s)``, normalised to
      ``[-1, 1]`` over the input image (points outside that range lie outside the image).
    """
    if len(size) != 3:
        raise ValueError(f"size must be (n, out_h, out_w); got {tuple(size)!r}.")
    n, out_h, out_w = (int(s) for s in size)
    theta = jnp.asarray(theta)
    theta = theta.astype(jnp.promote_types(theta.dtype, jnp.float32))
    if theta.shape != (n, 2, 3):
        raise ValueError(f"theta must have shape {(n, 2, 3)} for size {tuple(size)}; got {theta.shape}.")
    ys, xs = jnp.meshgrid(_pixel_centres(out_h), _pixel_centres(out_w), indexing="ij")  # [out_h, out_w]
    target = jnp.stack([xs, ys, jnp.ones_like(xs)], axis=-1).astype(theta.dtype)  # [out_h, out_w, 3]
    return jnp.einsum("hwk,nik->nhwi", target, theta)  # [n, out_h, out_w, 2]


def bilinear_sample(images: ArrayLike, grid: ArrayLike) -> Array:
    """Bilinear sampling kernel (Jaderberg et al., 2015, eq. 5), differentiable in images and grid.

    Each output value is the bilinear interpolation of the four input pixels around its source point.
    A neighbour outside the image contributes 0, so points beyond the edge fade to 0 and points more
    than one pixel outside give exactly 0.

    Args:
      images: ``[n, h, w, c]`` input images (NHWC).
      grid: ``[n, out_h, out_w, 2]`` source points ``(x, y)`` in normalised ``[-1, 1]`` coordinates
        (pixel ``i`` centred at ``(2 i + 1) / size - 1``), e.g. from :func:`affine_grid`.

    Returns:
      ``[n, out_h, out_w, c]`` sampled images in the dtype of ``images`` (computed in at least float32).
    """
    images = jnp.asarray(images)
    grid = jnp.asarray(grid)
    if images.ndim != 4 or grid.ndim != 4 or grid.shape[-1] != 2 or grid.shape[0] != images.shape[0]:
        raise ValueError(
            f"images must be [n, h, w, c] and grid [n, out_h, out_w, 2]; got {images.shape} and {grid.shape}."
        )
    n, h, w, _ = images.shape
    compute = jnp.promote_types(jnp.promote_types(images.dtype, grid.dtype), jnp.float32)
    source = images.astype(compute)
    grid = grid.astype(compute)
    # Normalised coordinates -> pixel indices (pixel i at index i): [n, out_h, out_w].
    x = ((grid[..., 0] + 1.0) * w - 1.0) / 2.0
    y = ((grid[..., 1] + 1.0) * h - 1.0) / 2.0
    x0, y0 = jnp.floor(x), jnp.floor(y)
    wx1, wy1 = x - x0, y - y0  # weights of the right / lower neighbours; floor has zero gradient
    wx0, wy0 = 1.0 - wx1, 1.0 - wy1
    x0, y0 = x0.astype(jnp.int32), y0.astype(jnp.int32)
    batch = jnp.arange(n)[:, None, None]  # [n, 1, 1]

    def corner(yi: Array, xi: Array, weight: Array) -> Array:
        """``weight * images[b, yi, xi]``, 0 where ``(yi, xi)`` is outside: ``[n, out_h, out_w, c]``."""
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        values = source[batch, jnp.clip(yi, 0, h - 1), jnp.clip(xi, 0, w - 1)]  # gather
        return jnp.where(inside, weight, 0.0)[..., None] * values

    out = (
        corner(y0, x0, wy0 * wx0)
        + corner(y0, x0 + 1, wy0 * wx1)
        + corner(y0 + 1, x0, wy1 * wx0)
        + corner(y0 + 1, x0 + 1, wy1 * wx1)
    )
    return out.astype(images.dtype)
