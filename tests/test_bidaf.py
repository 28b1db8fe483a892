"""BiDAF attention flow (Seo et al., 2017) against a plain-numpy reference, plus masking, sow, jit, bf16."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attn_jax.attention.bidaf import (
    bidaf_merge,
    context_to_query_attention,
    query_to_context_attention,
    trilinear_similarity,
)
from attn_jax.layers.bidaf import BiDAFAttention

D = 4


def _masked_softmax(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    row_max = np.where(mask, x, -1e300).max(-1, keepdims=True)
    e = np.where(mask, np.exp(np.where(mask, x - row_max, 0.0)), 0.0)
    total = e.sum(-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def _reference(w: np.ndarray, h: np.ndarray, u: np.ndarray, h_mask: np.ndarray, u_mask: np.ndarray):
    """Seo et al. (2017), section 2.4, written literally: S_tj = w . [h_t; u_j; h_t * u_j], ..."""
    w, h, u = (np.asarray(a, np.float64) for a in (w, h, u))
    batch, t_len, j_len = h.shape[0], h.shape[1], u.shape[1]
    s = np.zeros((batch, t_len, j_len))
    for b in range(batch):
        for t in range(t_len):
            for j in range(j_len):
                s[b, t, j] = w @ np.concatenate([h[b, t], u[b, j], h[b, t] * u[b, j]])
    a = _masked_softmax(s, h_mask[:, :, None] & u_mask[:, None, :])  # [batch, T, J]
    u_tilde = np.einsum("btj,bjd->btd", a, u)
    row_max = np.where(u_mask[:, None, :], s, -np.finfo(np.float64).max).max(-1)  # [batch, T]
    b_weights = _masked_softmax(row_max, h_mask & u_mask.any(-1, keepdims=True))
    h_tilde = np.einsum("bt,btd->bd", b_weights, h)[:, None, :]  # tiled over T by broadcasting
    h_tilde = np.broadcast_to(h_tilde, h.shape)
    g = np.concatenate([h, u_tilde, h * u_tilde, h * h_tilde], axis=-1)
    return s, a, b_weights, g


def _example(seed: int = 0):
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(3, 5, D)).astype(np.float32)
    u = rng.normal(size=(3, 4, D)).astype(np.float32)
    h_mask = np.arange(5)[None, :] < np.array([[5], [3], [2]])
    u_mask = np.arange(4)[None, :] < np.array([[4], [2], [1]])
    return h, u, h_mask, u_mask


def test_module_matches_numpy_reference():
    h, u, h_mask, u_mask = _example()
    module = BiDAFAttention(sow_weights=True)
    params = module.init(jax.random.key(0), h, u)
    w = np.asarray(params["params"]["kernel"])
    assert w.shape == (3 * D,)
    g, state = module.apply(params, h, u, h_mask, u_mask, mutable=["intermediates"])
    s_ref, a_ref, b_ref, g_ref = _reference(w, h, u, h_mask, u_mask)
    (c2q,) = state["intermediates"]["attention_weights"]
    (q2c,) = state["intermediates"]["q2c_weights"]
    assert g.shape == (3, 5, 4 * D)
    assert c2q.shape == (3, 5, 4) and q2c.shape == (3, 5)
    assert c2q.dtype == jnp.float32 and q2c.dtype == jnp.float32
    np.testing.assert_allclose(c2q, a_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q2c, b_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-5)
    s = trilinear_similarity(h, u, w[:D], w[D : 2 * D], w[2 * D :])
    np.testing.assert_allclose(s, s_ref, rtol=1e-5, atol=1e-5)


def test_pure_functions_without_masks_compose_to_the_module():
    h, u, _, _ = _example(1)
    module = BiDAFAttention()
    params = module.init(jax.random.key(1), h, u)
    w = params["params"]["kernel"]
    s = trilinear_similarity(h, u, w[:D], w[D : 2 * D], w[2 * D :])
    u_tilde, a = context_to_query_attention(s, u)
    h_tilde, b = query_to_context_attention(s, h)
    assert h_tilde.shape == (3, D)
    np.testing.assert_allclose(a.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(b.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(module.apply(params, h, u), bidaf_merge(h, u_tilde, h_tilde), rtol=1e-6)
    ones = np.ones((3, 5), bool), np.ones((3, 4), bool)
    np.testing.assert_allclose(module.apply(params, h, u), _reference(w, h, u, *ones)[3], rtol=1e-5)


def test_masked_positions_get_zero_weight():
    h, u, h_mask, u_mask = _example(2)
    module = BiDAFAttention(sow_weights=True)
    params = module.init(jax.random.key(0), h, u)
    _, state = module.apply(params, h, u, h_mask, u_mask, mutable=["intermediates"])
    c2q = np.asarray(state["intermediates"]["attention_weights"][0])
    q2c = np.asarray(state["intermediates"]["q2c_weights"][0])
    assert np.all(c2q[~(h_mask[:, :, None] & u_mask[:, None, :])] == 0.0)
    assert np.all(q2c[~h_mask] == 0.0)
    np.testing.assert_allclose(c2q.sum(-1)[h_mask], 1.0, rtol=1e-6)
    np.testing.assert_allclose(q2c.sum(-1), 1.0, rtol=1e-6)


def test_q2c_max_ignores_masked_query_positions():
    """A padded query word with a huge similarity must not steer query-to-context attention."""
    rng = np.random.default_rng(3)
    h = rng.normal(size=(1, 5, D)).astype(np.float32)
    u = rng.normal(size=(1, 3, D)).astype(np.float32)
    s = rng.normal(size=(1, 5, 3)).astype(np.float32)
    s_padded = np.concatenate([s, np.full((1, 5, 1), 50.0, np.float32)], axis=-1)
    s_padded[0, 2, 3] = 1000.0  # would win every max and take all of q2c if it counted
    u_mask = np.array([[True, True, True, False]])
    _, b = query_to_context_attention(s_padded, h, query_mask=u_mask)
    _, b_ref = query_to_context_attention(s, h)
    np.testing.assert_allclose(b, b_ref, rtol=1e-6)
    np.testing.assert_allclose(b, _masked_softmax(s.max(-1), np.ones((1, 5), bool)), rtol=1e-5)

    # The same through the module: padding the query with a huge vector changes nothing.
    module = BiDAFAttention()
    params = module.init(jax.random.key(0), h, u)
    u_padded = np.concatenate([u, np.full((1, 1, D), 1e3, np.float32)], axis=1)
    np.testing.assert_allclose(
        module.apply(params, h, u_padded, None, u_mask), module.apply(params, h, u), rtol=1e-5
    )


def test_fully_masked_rows_are_finite_with_finite_grads():
    h, u, _, _ = _example(4)
    h_mask = np.array([[True] * 5, [False] * 5, [True] * 5])
    u_mask = np.array([[True] * 4, [True] * 4, [False] * 4])
    module = BiDAFAttention(sow_weights=True)
    params = module.init(jax.random.key(0), h, u)
    g, state = module.apply(params, h, u, h_mask, u_mask, mutable=["intermediates"])
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(state["intermediates"]["q2c_weights"][0][1:], 0.0)
    np.testing.assert_array_equal(state["intermediates"]["attention_weights"][0][1:], 0.0)

    def loss(p, context, query):
        return jnp.sum(module.apply(p, context, query, h_mask, u_mask) ** 2)

    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(params, h, u)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(grads))


_T, _J = 6, 4
_MODULE = BiDAFAttention()
_PARAMS = _MODULE.init(jax.random.key(5), np.zeros((1, _T, D)), np.zeros((1, _J, D)))
_APPLY = jax.jit(_MODULE.apply)  # one compilation for every hypothesis example


@settings(max_examples=10, deadline=None)
@given(t=st.integers(1, _T), j=st.integers(1, _J), seed=st.integers(0, 2**16))
def test_padded_batch_matches_reference(t: int, j: int, seed: int):
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(1, _T, D)).astype(np.float32)
    u = rng.normal(size=(1, _J, D)).astype(np.float32)
    h_mask, u_mask = np.arange(_T)[None] < t, np.arange(_J)[None] < j
    g = np.asarray(_APPLY(_PARAMS, h, u, h_mask, u_mask))
    g_ref = _reference(_PARAMS["params"]["kernel"], h, u, h_mask, u_mask)[3]
    np.testing.assert_allclose(g, g_ref, rtol=1e-4, atol=1e-5)


def test_jit_bfloat16_and_extra_batch_dims():
    rng = np.random.default_rng(6)
    h = rng.normal(size=(2, 3, 5, D)).astype(np.float32)
    u = rng.normal(size=(2, 3, 4, D)).astype(np.float32)
    module = BiDAFAttention(dtype=jnp.bfloat16, sow_weights=True)
    params = module.init(jax.random.key(0), h, u)
    apply = jax.jit(lambda p, c, q: module.apply(p, c, q, mutable=["intermediates"]))
    g16, state = apply(params, jnp.asarray(h, jnp.bfloat16), jnp.asarray(u, jnp.bfloat16))
    assert g16.shape == (2, 3, 5, 4 * D) and g16.dtype == jnp.bfloat16
    assert state["intermediates"]["attention_weights"][0].dtype == jnp.float32
    g32 = BiDAFAttention().apply(params, h, u)
    np.testing.assert_allclose(np.asarray(g16, np.float32), g32, rtol=0.1, atol=0.1)


def test_rejects_different_widths():
    with pytest.raises(ValueError, match="same width"):
        BiDAFAttention().init(jax.random.key(0), np.zeros((1, 3, 4)), np.zeros((1, 2, 5)))
