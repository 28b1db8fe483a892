"""Tests for the pure local-attention functions (Luong et al., 2015)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attn_jax.attention.local import (
    gaussian_window,
    local_attention_weights,
    local_window_mask,
    monotonic_position,
    predictive_position,
)


def test_monotonic_position_is_step_clipped_to_source():
    step = jnp.array([0, 3, 9, -2])
    np.testing.assert_array_equal(monotonic_position(step, 6), [0.0, 3.0, 5.0, 0.0])
    # Per-example source lengths.
    np.testing.assert_array_equal(monotonic_position(jnp.array([4, 4]), jnp.array([3, 8])), [2.0, 4.0])
    assert monotonic_position(step, 6).dtype == jnp.float32


def test_predictive_position_is_source_length_times_sigmoid():
    logit = jnp.array([-2.0, 0.0, 3.0])
    expected = np.array([10.0, 10.0, 7.0]) / (1.0 + np.exp(-np.array([-2.0, 0.0, 3.0])))
    np.testing.assert_allclose(predictive_position(logit, jnp.array([10, 10, 7])), expected, rtol=1e-6)


def test_local_window_mask_by_hand():
    mask = local_window_mask(jnp.array([0.0, 3.0, 2.5]), 6, 1)
    expected = np.array(
        [
            [1, 1, 0, 0, 0, 0],  # centre 0: {0, 1} (the window is cut at the start)
            [0, 0, 1, 1, 1, 0],  # centre 3: {2, 3, 4}
            [0, 0, 1, 1, 0, 0],  # centre 2.5: |s - 2.5| <= 1 -> {2, 3}
        ],
        dtype=bool,
    )
    np.testing.assert_array_equal(mask, expected)
    assert mask.dtype == jnp.bool_


def test_gaussian_window_formula():
    center, sigma = jnp.array([2.0, 4.5]), 1.5
    s = np.arange(7.0)
    expected = np.exp(-((s[None] - np.array([[2.0], [4.5]])) ** 2) / (2 * sigma**2))
    np.testing.assert_allclose(gaussian_window(center, 7, sigma), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_window(center, 7, 0.0)


def _np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_local_m_weights_are_softmax_over_window_centred_on_step():
    logits = jnp.asarray(np.random.default_rng(0).normal(size=(2, 9)), jnp.float32)
    step = jnp.array([1, 6])
    center = monotonic_position(step, 9)
    w = np.asarray(local_attention_weights(logits, center, 2))
    for b, t in enumerate([1, 6]):
        lo, hi = max(t - 2, 0), t + 2
        expected = np.zeros(9)
        expected[lo : hi + 1] = _np_softmax(np.asarray(logits[b, lo : hi + 1]))
        np.testing.assert_allclose(w[b], expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)


def test_local_p_weights_are_windowed_softmax_times_gaussian_not_renormalised():
    logits = jnp.asarray(np.random.default_rng(1).normal(size=(3, 12)), jnp.float32)
    center = jnp.array([2.3, 7.9, 11.5])
    half_width = 3
    mask = jnp.arange(12) < jnp.array([[12], [12], [10]])  # the last example has 10 real positions
    w = local_attention_weights(logits, center, half_width, mask, gaussian=True)
    window = local_window_mask(center, 12, half_width) & mask
    expected = np.asarray(jax.nn.softmax(jnp.where(window, logits, -1e30), axis=-1)) * np.asarray(window)
    expected = expected * np.asarray(gaussian_window(center, 12, half_width / 2))
    np.testing.assert_allclose(w, expected, rtol=1e-5, atol=1e-7)
    assert np.all(np.asarray(w)[~np.asarray(window)] == 0.0)
    assert np.all(np.asarray(w).sum(-1) < 1.0)  # the Gaussian factor is not renormalised


def test_local_weights_with_no_allowed_position_in_window_are_zero_and_finite():
    logits = jnp.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    mask = jnp.array([[True, True, False, False, False, False]])
    center = jnp.array([5.0])

    def total(c):
        return jnp.sum(local_attention_weights(logits, c, 1, mask, gaussian=True))

    w = local_attention_weights(logits, center, 1, mask, gaussian=True)
    np.testing.assert_array_equal(w, np.zeros((1, 6)))
    assert np.all(np.isfinite(jax.grad(total)(center)))


def test_local_p_position_gets_gradient_through_gaussian():
    logits = jnp.zeros((1, 10))
    grad = jax.grad(lambda c: jnp.sum(local_attention_weights(logits, c, 2, gaussian=True)[0, 6]))
    # Position 6 gains weight as the centre moves right towards it.
    assert grad(jnp.array([5.0]))[0] > 0.0


_weights_jit = jax.jit(local_attention_weights, static_argnames=("half_width", "gaussian"))


@settings(max_examples=20, deadline=None)
@given(
    half_width=st.integers(1, 3),
    center=st.floats(-2.0, 12.0),
    valid=st.integers(0, 10),
    gaussian=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_local_weights_properties(half_width, center, valid, gaussian, seed):
    kv_len = 10
    logits = jnp.asarray(5.0 * np.random.default_rng(seed).normal(size=kv_len), jnp.float32)
    mask = jnp.arange(kv_len) < valid
    center = jnp.float32(center)
    w = np.asarray(_weights_jit(logits, center, half_width=half_width, mask=mask, gaussian=gaussian))
    allowed = np.asarray(local_window_mask(center, kv_len, half_width) & mask)
    assert w.dtype == np.float32 and np.all(np.isfinite(w))
    assert np.all(w >= 0.0) and np.all(w[~allowed] == 0.0)
    if not allowed.any():
        assert np.all(w == 0.0)
    elif not gaussian:
        np.testing.assert_allclose(w.sum(), 1.0, rtol=1e-5)
    else:
        assert w.sum() <= 1.0 + 1e-6
