"""AttentionPooling (Yang et al., 2016) against a plain-numpy reference, plus masking, sow, jit, bf16."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from attn_jax.layers.pooling import AttentionPooling

FEATURES, UNITS = 6, 5


def _init(inputs: np.ndarray, **kwargs) -> tuple[AttentionPooling, dict]:
    module = AttentionPooling(units=UNITS, **kwargs)
    return module, module.init(jax.random.key(0), jnp.asarray(inputs))


def _reference(params: dict, inputs: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, ...]:
    """HAN word attention written from the paper: u = tanh(W h + b), a = softmax(u . u_w), s = sum a h."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])
    h = np.asarray(inputs, np.float64)
    u = np.tanh(h @ p["proj"]["kernel"] + p["proj"]["bias"])  # [batch, len, units]
    logits = u @ p["context"]  # [batch, len]
    if mask is None:
        mask = np.ones(logits.shape, bool)
    e = np.where(mask, np.exp(logits - logits.max(-1, keepdims=True)), 0.0)
    total = e.sum(-1, keepdims=True)
    alpha = np.divide(e, total, out=np.zeros_like(e), where=total > 0)
    return np.einsum("bl,blf->bf", alpha, h), alpha


def test_matches_numpy_reference_with_mask():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 7, FEATURES)).astype(np.float32)
    mask = np.arange(7)[None, :] < np.array([[7], [4], [1]])
    module, params = _init(x, sow_weights=True)
    out, state = module.apply(params, x, mask, mutable=["intermediates"])
    ref_out, ref_alpha = _reference(params, x, mask)
    (weights,) = state["intermediates"]["attention_weights"]
    assert out.shape == (3, FEATURES)
    assert weights.shape == (3, 7) and weights.dtype == jnp.float32
    np.testing.assert_allclose(weights, ref_alpha, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
    assert np.all(np.asarray(weights)[~mask] == 0.0)
    np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, rtol=1e-6)


def test_no_mask_matches_reference_and_extra_batch_dims():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 4, FEATURES)).astype(np.float32)
    module, params = _init(x)
    out = module.apply(params, x)
    ref_out, _ = _reference(params, x.reshape(6, 4, FEATURES), None)
    assert out.shape == (2, 3, FEATURES)
    np.testing.assert_allclose(out.reshape(6, FEATURES), ref_out, rtol=1e-5, atol=1e-5)


def test_fully_masked_row_gives_zeros_and_finite_grads():
    x = np.random.default_rng(2).normal(size=(2, 4, FEATURES)).astype(np.float32)
    mask = np.array([[True, True, False, False], [False] * 4])
    module, params = _init(x)
    out = module.apply(params, x, mask)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[1], 0.0)

    def loss(p, inputs):
        return jnp.sum(module.apply(p, inputs, mask) ** 2)

    grads = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, jnp.asarray(x))
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


_MAX_LEN = 6
_MODULE, _PARAMS = _init(np.zeros((1, _MAX_LEN, FEATURES), np.float32))
_APPLY = jax.jit(_MODULE.apply)  # one compilation for every hypothesis example


@settings(max_examples=10, deadline=None)
@given(length=st.integers(1, _MAX_LEN), seed=st.integers(0, 2**16))
def test_padding_content_does_not_change_the_output(length: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1, _MAX_LEN, FEATURES)).astype(np.float32)
    mask = np.arange(_MAX_LEN)[None, :] < length
    other = np.where(mask[..., None], x, 100.0 * rng.normal(size=x.shape)).astype(np.float32)
    out = _APPLY(_PARAMS, x, mask)
    np.testing.assert_allclose(out, _APPLY(_PARAMS, other, mask), rtol=1e-5, atol=1e-5)
    ref_out, _ = _reference(_PARAMS, x[:, :length], None)
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)


def test_jit_and_bfloat16():
    x = np.random.default_rng(3).normal(size=(2, 5, FEATURES)).astype(np.float32)
    mask = np.array([[True] * 5, [True, True, True, False, False]])
    module, params = _init(x, sow_weights=True)
    apply = jax.jit(lambda p, inputs, m: module.apply(p, inputs, m, mutable=["intermediates"]))
    out32, _ = apply(params, x, mask)
    np.testing.assert_allclose(out32, module.apply(params, x, mask), rtol=1e-6, atol=1e-6)
    out16, state = apply(params, jnp.asarray(x, jnp.bfloat16), mask)
    (weights,) = state["intermediates"]["attention_weights"]
    assert out16.dtype == jnp.bfloat16 and weights.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(out16, np.float32)))
    np.testing.assert_allclose(np.asarray(out16, np.float32), out32, rtol=5e-2, atol=5e-2)
