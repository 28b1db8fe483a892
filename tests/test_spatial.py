"""Tests of the spatial-transformer sampling functions and module (Jaderberg et al., 2015)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.test_util import check_grads
from scipy import ndimage

from attn_jax.attention.spatial import affine_grid, bilinear_sample
from attn_jax.layers.spatial_transformer import SpatialTransformer

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)

# Jitted once per shape: far cheaper than compiling every primitive eagerly.
grid_fn = jax.jit(affine_grid, static_argnums=1)
sample = jax.jit(bilinear_sample)


def _centres(size: int) -> np.ndarray:
    return (2 * np.arange(size) + 1) / size - 1


def _to_pixels(coord: np.ndarray, size: int) -> np.ndarray:
    return ((coord + 1) * size - 1) / 2


def _to_normalised(pixel: np.ndarray, size: int) -> np.ndarray:
    return (2 * pixel + 1) / size - 1


def test_affine_grid_identity_gives_pixel_centres():
    grid = np.asarray(grid_fn(np.stack([IDENTITY, IDENTITY]), (2, 3, 4)))
    assert grid.shape == (2, 3, 4, 2)
    ys, xs = np.meshgrid(_centres(3), _centres(4), indexing="ij")
    for b in range(2):
        np.testing.assert_allclose(grid[b, ..., 0], xs, atol=1e-6)
        np.testing.assert_allclose(grid[b, ..., 1], ys, atol=1e-6)


def test_affine_grid_scale_and_translation_by_hand():
    # x_s = 0.5 x_t + 0.25, y_s = 2 y_t - 0.5 on a 2x2 output whose centres are at -0.5 and 0.5.
    theta = np.array([[[0.5, 0.0, 0.25], [0.0, 2.0, -0.5]]], np.float32)
    grid = np.asarray(grid_fn(theta, (1, 2, 2)))
    expected = np.array(
        [[[0.0, -1.5], [0.5, -1.5]], [[0.0, 0.5], [0.5, 0.5]]], np.float32
    )  # [row, col, (x, y)]
    np.testing.assert_allclose(grid[0], expected, atol=1e-6)


def test_affine_grid_rejects_bad_shapes():
    with pytest.raises(ValueError, match="theta"):
        affine_grid(np.zeros((2, 2, 3)), (3, 4, 4))
    with pytest.raises(ValueError, match="size"):
        affine_grid(np.zeros((1, 2, 3)), (1, 4, 4, 3))


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    h=st.integers(2, 7),
    w=st.integers(2, 7),
    c=st.integers(1, 3),
)
def test_bilinear_sample_matches_scipy_map_coordinates(seed, h, w, c):
    rng = np.random.default_rng(seed)
    n, points = 2, 11
    images = rng.normal(size=(n, h, w, c)).astype(np.float32)
    # Interior pixel coordinates: all four neighbours are inside the image.
    y_pix = rng.uniform(0, h - 1, size=(n, 1, points))
    x_pix = rng.uniform(0, w - 1, size=(n, 1, points))
    grid = np.stack([_to_normalised(x_pix, w), _to_normalised(y_pix, h)], axis=-1).astype(np.float32)
    out = np.asarray(sample(images, grid))
    assert out.shape == (n, 1, points, c)
    for b in range(n):
        for ch in range(c):
            expected = ndimage.map_coordinates(
                images[b, :, :, ch].astype(np.float64), [y_pix[b, 0], x_pix[b, 0]], order=1
            )
            np.testing.assert_allclose(out[b, 0, :, ch], expected, rtol=1e-4, atol=1e-4)


def test_bilinear_sample_identity_grid_returns_image():
    images = np.random.default_rng(0).normal(size=(3, 5, 6, 2)).astype(np.float32)
    grid = grid_fn(np.stack([IDENTITY] * 3), (3, 5, 6))
    np.testing.assert_allclose(np.asarray(sample(images, grid)), images, atol=1e-5)


def test_bilinear_sample_outside_is_zero_and_edges_fade():
    images = np.ones((1, 4, 4, 1), np.float32)
    h = w = 4
    far = np.array([[-1.6, 0.0], [1.6, 0.0], [0.0, -1.6], [0.0, 3.0], [5.0, 5.0]], np.float32)
    out = np.asarray(sample(images, far[None, None]))
    np.testing.assert_array_equal(out, 0.0)
    # Half a pixel beyond the left edge: the only inside neighbour has weight 1/2.
    x = _to_normalised(np.float32(-0.5), w)
    y = _to_normalised(np.float32(1.0), h)
    edge = np.asarray(sample(images, np.array([[[[x, y]]]], np.float32)))
    np.testing.assert_allclose(edge, 0.5, atol=1e-6)


def test_bilinear_sample_keeps_dtype():
    images = jnp.ones((1, 3, 3, 2), jnp.bfloat16)
    grid = grid_fn(IDENTITY[None], (1, 2, 2))
    assert sample(images, grid).dtype == jnp.bfloat16


def test_bilinear_sample_gradients():
    rng = np.random.default_rng(1)
    n, h, w, c = 2, 4, 5, 2
    images = rng.normal(size=(n, h, w, c)).astype(np.float32)
    # Pixel coordinates at fractional parts in [0.2, 0.8], away from the kinks at integers; some
    # points lie partly outside the image (within one pixel of its edge).
    y_pix = rng.integers(-1, h, size=(n, 3, 3)) + rng.uniform(0.2, 0.8, size=(n, 3, 3))
    x_pix = rng.integers(-1, w, size=(n, 3, 3)) + rng.uniform(0.2, 0.8, size=(n, 3, 3))
    grid = np.stack([_to_normalised(x_pix, w), _to_normalised(y_pix, h)], axis=-1).astype(np.float32)
    check_grads(sample, (images, grid), order=1, modes=("fwd", "rev"), atol=5e-2, rtol=5e-2)


IMAGES = jax.random.normal(jax.random.key(0), (2, 12, 10, 3))


@pytest.fixture(scope="module")
def small_stn():
    model = SpatialTransformer(features=(4,), hidden=8, sow_weights=True)
    return model, jax.jit(model.init)(jax.random.key(1), IMAGES)


def test_spatial_transformer_is_identity_at_init(small_stn):
    model, params = small_stn
    out, state = jax.jit(lambda p, x: model.apply(p, x, mutable=["intermediates"]))(params, IMAGES)
    assert out.shape == IMAGES.shape
    np.testing.assert_allclose(np.asarray(out), np.asarray(IMAGES), atol=1e-5)
    (theta,) = state["intermediates"]["theta"]
    np.testing.assert_allclose(np.asarray(theta), np.stack([IDENTITY] * 2), atol=1e-6)


def test_spatial_transformer_out_size(small_stn):
    model, params = small_stn
    smaller = model.clone(out_size=(6, 5))  # same parameters: out_size only changes the grid
    out = jax.jit(smaller.apply)(params, IMAGES)
    assert out.shape == (2, 6, 5, 3)


def test_spatial_transformer_localisation_gets_gradient(small_stn):
    model, params = small_stn
    target = jnp.roll(IMAGES, 1, axis=2)

    def loss(p):
        return jnp.mean((model.apply(p, IMAGES) - target) ** 2)

    grads = jax.jit(jax.grad(loss))(params)["params"]["loc_theta"]
    assert jnp.all(jnp.isfinite(grads["kernel"])) and jnp.all(jnp.isfinite(grads["bias"]))
    assert float(jnp.abs(grads["kernel"]).sum()) > 0.0
    assert float(jnp.abs(grads["bias"]).sum()) > 0.0
