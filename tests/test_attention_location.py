"""Tests for location features (Chorowski et al., 2015) and the coverage loss (See et al., 2017)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attn_jax.attention.location import coverage_loss, location_features


def _np_same_correlation(x: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """'SAME' cross-correlation by the definition: f[j, c] = sum_k x[j + k - (width - 1) // 2] F[k, c]."""
    width, channels = filters.shape
    left = (width - 1) // 2
    padded = np.pad(x, (left, width - 1 - left))
    out = np.zeros((x.shape[0], channels))
    for j in range(x.shape[0]):
        out[j] = padded[j : j + width] @ filters
    return out


@pytest.mark.parametrize("width", [1, 3, 5, 4])
def test_location_features_match_numpy(width):
    rng = np.random.default_rng(width)
    prev = rng.dirichlet(np.ones(9), size=(2, 3)).astype(np.float32)  # [2, 3, 9]
    filters = rng.normal(size=(width, 4)).astype(np.float32)
    out = np.asarray(location_features(prev, filters))
    assert out.shape == (2, 3, 9, 4)
    for idx in np.ndindex(2, 3):
        np.testing.assert_allclose(out[idx], _np_same_correlation(prev[idx], filters), rtol=1e-5, atol=1e-6)
        if width % 2:  # odd widths: numpy's own 'same' convolution (of the flipped filter) agrees
            for c in range(4):
                ref = np.convolve(prev[idx], filters[::-1, c], mode="same")
                np.testing.assert_allclose(out[idx][:, c], ref, rtol=1e-5, atol=1e-6)


def test_location_features_of_one_hot_is_the_flipped_filter_around_the_peak():
    prev = jnp.zeros(7).at[3].set(1.0)
    filters = jnp.array([[1.0], [2.0], [3.0]])
    np.testing.assert_allclose(location_features(prev, filters)[:, 0], [0, 0, 3, 2, 1, 0, 0])


def test_coverage_loss_by_hand():
    weights = jnp.array([[0.5, 0.3, 0.2, 0.0], [0.1, 0.1, 0.4, 0.4]])
    coverage = jnp.array([[0.2, 0.9, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    # min: [0.2, 0.3, 0.0, 0.0] -> 0.5 ; second row has no coverage yet -> 0.
    np.testing.assert_allclose(coverage_loss(weights, coverage), [0.5, 0.0], atol=1e-7)
    mask = jnp.array([[True, False, True, True], [True] * 4])
    np.testing.assert_allclose(coverage_loss(weights, coverage, mask), [0.2, 0.0], atol=1e-7)
    assert coverage_loss(weights, coverage).dtype == jnp.float32


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_coverage_loss_is_bounded(seed):
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(8)).astype(np.float32)
    coverage = (3.0 * rng.uniform(size=8)).astype(np.float32)
    loss = float(coverage_loss(weights, coverage))
    assert 0.0 <= loss <= min(weights.sum(), coverage.sum()) + 1e-6
    # Attending exactly to what is already covered costs the full weight mass.
    np.testing.assert_allclose(coverage_loss(weights, weights), weights.sum(), rtol=1e-6)
