"""Spatial Transformer (Jaderberg et al., 2015): learned affine attention over an image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jax import Array

from attn_jax.attention.spatial import affine_grid, bilinear_sample

_IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # theta = [[1, 0, 0], [0, 1, 0]], flattened row by row


def _identity_bias(key: Array, shape: Sequence[int], dtype: Any = jnp.float32) -> Array:
    """Bias initialiser of the last localisation layer: the identity transform."""
    del key
    return jnp.broadcast_to(jnp.asarray(_IDENTITY, dtype), shape)


class SpatialTransformer(nn.Module):
    """Spatial Transformer module (Jaderberg et al., 2015).

    A localisation network (``Conv -> ReLU -> 2x2 max-pool`` per entry of ``features``, then
    ``Dense(hidden) -> ReLU -> Dense(6)``) regresses an affine transform ``theta`` from the images; the
    grid generator (:func:`attn_jax.attention.affine_grid`) and the bilinear sampler
    (:func:`attn_jax.attention.bilinear_sample`) then warp the images with it. The last layer starts
    with a zero kernel and the identity as its bias, so at initialisation the module returns its input
    and learns to zoom, crop, rotate or shear from there.

    When ``sow_weights`` is set, ``theta`` ``[batch, 2, 3]`` (float32) is sown as
    ``('intermediates', 'theta')``: ``model.apply(..., mutable=['intermediates'])`` returns it. The
    "attention" of this module is the transform itself; draw the sampled region from it (e.g. the image
    of the output corners under ``theta``).

    Attributes:
      features: output channels of the localisation convolutions (each followed by 2x2 max-pooling).
      kernel_size: kernel of those convolutions.
      hidden: width of the localisation network's hidden dense layer.
      out_size: ``(out_h, out_w)`` of the warped output; ``None`` keeps the input size.
      dtype: computation dtype of the localisation network (``None``: inferred from inputs and params).
      param_dtype: parameter dtype.
      sow_weights: sow ``theta`` into the ``'intermediates'`` collection.
    """

    features: Sequence[int] = (8, 16)
    kernel_size: tuple[int, int] = (3, 3)
    hidden: int = 32
    out_size: tuple[int, int] | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32
    sow_weights: bool = False

    @nn.compact
    def __call__(self, images: Array) -> Array:
        """Warp ``images`` ``[batch, h, w, c]`` (NHWC) to ``[batch, out_h, out_w, c]`` (same dtype)."""
        if images.ndim != 4:
            raise ValueError(f"SpatialTransformer expects NHWC images [batch, h, w, c]; got {images.shape}.")
        n, h, w, _ = images.shape
        out_h, out_w = (h, w) if self.out_size is None else self.out_size
        x = images
        for i, channels in enumerate(self.features):
            x = nn.Conv(
                channels,
                self.kernel_size,
                dtype=self.dtype,
                param_dtype=self.param_dtype,
                name=f"loc_conv_{i}",
            )(x)
            x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2), padding="SAME")
        x = x.reshape(n, -1)  # [batch, features]
        x = nn.relu(
            nn.Dense(self.hidden, dtype=self.dtype, param_dtype=self.param_dtype, name="loc_hidden")(x)
        )
        theta = nn.Dense(
            6,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=nn.initializers.zeros_init(),
            bias_init=_identity_bias,
            name="loc_theta",
        )(x)
        theta = theta.astype(jnp.float32).reshape(n, 2, 3)  # [batch, 2, 3]
        if self.sow_weights:
            self.sow("intermediates", "theta", theta)
        grid = affine_grid(theta, (n, out_h, out_w))  # [batch, out_h, out_w, 2]
        return bilinear_sample(images, grid)
