"""Property tests (hypothesis) of the normalisers and of attention as a whole."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from attn_jax.attention import dot_product_attention, gumbel_softmax, softmax, sparsemax
from attn_jax.layers.multi_head import MultiHeadAttention

finite = st.floats(-30, 30, allow_nan=False, width=32)
shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=7)


@st.composite
def logits_and_mask(draw):
    shape = draw(shapes)
    logits = draw(hnp.arrays(np.float32, shape, elements=finite))
    mask = draw(hnp.arrays(np.bool_, shape))
    return logits, mask


@given(logits_and_mask())
def test_softmax_is_a_distribution_over_allowed_positions(data):
    logits, mask = data
    w = np.asarray(softmax(logits, mask))
    assert np.all(w[~mask] == 0.0)
    rows_with_any = mask.any(-1)
    np.testing.assert_allclose(w.sum(-1)[rows_with_any], 1.0, rtol=1e-5)
    np.testing.assert_array_equal(w.sum(-1)[~rows_with_any], 0.0)


@given(logits_and_mask(), st.integers(0, 10_000))
def test_softmax_gradient_equals_autodiff_of_the_formula(data, seed):
    """The hand-written derivative of ``softmax`` against autodiff of the plain masked formula."""
    logits, mask = data
    cotangent = jax.random.normal(jax.random.key(seed), logits.shape)

    def plain(x):
        w = jax.nn.softmax(jnp.where(mask, x, jnp.finfo(jnp.float32).min), axis=-1)
        return jnp.sum(jnp.where(mask.any(-1, keepdims=True), w, 0.0) * cotangent)

    ours = jax.grad(lambda x: jnp.sum(softmax(x, mask) * cotangent))(logits)
    np.testing.assert_allclose(ours, jax.grad(plain)(logits), atol=1e-5)


def test_softmax_of_minus_inf_logits_is_finite():
    """A ``-inf`` logit (e.g. from a bias) gets weight 0, and a row of them no NaN: they are clamped."""
    logits = jnp.array([[0.0, -jnp.inf, 1.0], [-jnp.inf, -jnp.inf, -jnp.inf]])
    weights = softmax(logits)
    np.testing.assert_allclose(weights[0], jax.nn.softmax(jnp.array([0.0, -1e30, 1.0])), rtol=1e-6)
    np.testing.assert_allclose(weights[1], [1 / 3, 1 / 3, 1 / 3], rtol=1e-6)  # all clamped alike
    grad = jax.grad(lambda x: jnp.sum(softmax(x) * jnp.arange(3.0)))(logits)
    assert np.all(np.isfinite(grad)) and grad[0, 1] == 0.0


def test_masked_softmax_with_extreme_logits_equals_selecting_them_out():
    """The mask is added to the logits (finfo.min); for logits up to 1e30 in size, -inf among them,
    the result is that of replacing the masked ones, and masked positions get exactly 0."""
    logits = jnp.array([[1e30, -1e30, 5.0, -jnp.inf], [-1e30, 1e30, 1e30, 0.0], [3.0, 1e30, -2.0, 1.0]])
    mask = jnp.array([[False, True, True, True], [True, False, False, False], [False, True, False, False]])
    want = jax.nn.softmax(jnp.where(mask, jnp.maximum(logits, -3e38), jnp.finfo(jnp.float32).min))
    got = softmax(logits, mask)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert np.all(np.asarray(got)[~np.asarray(mask)] == 0.0)


@given(logits_and_mask())
def test_sparsemax_is_a_sparse_distribution(data):
    logits, mask = data
    p = np.asarray(sparsemax(logits, mask))
    assert np.all(p >= 0.0) and np.all(p[~mask] == 0.0)
    rows_with_any = mask.any(-1)
    np.testing.assert_allclose(p.sum(-1)[rows_with_any], 1.0, rtol=1e-5)
    np.testing.assert_array_equal(p.sum(-1)[~rows_with_any], 0.0)
    # Shifting all logits of a row leaves sparsemax unchanged.
    np.testing.assert_allclose(sparsemax(logits + 3.0, mask), p, atol=1e-5)


def test_sparsemax_by_hand_and_gradient():
    # Sorted z = (1, .5, -1): support {1, .5}, tau = (1.5 - 1) / 2 = .25.
    np.testing.assert_allclose(sparsemax(jnp.array([1.0, 0.5, -1.0])), [0.75, 0.25, 0.0])
    mask = jnp.array([True, True, False])
    g = jax.grad(lambda z: sparsemax(z, mask)[0])(jnp.array([1.0, 0.5, -1.0]))
    # d p0 / d z over the support {0, 1} is (1 - 1/2, -1/2); nothing flows to the masked logit.
    np.testing.assert_allclose(g, [0.5, -0.5, 0.0], atol=1e-6)


@settings(max_examples=8)
@given(st.integers(1, 6), st.integers(0, 10_000))
def test_fully_masked_rows_give_zeros_and_finite_gradients(kv_len, seed):
    x = jax.random.normal(jax.random.key(seed), (2, 3, 2, 4))  # [batch, len, heads, dim]
    k = jax.random.normal(jax.random.key(seed + 1), (2, kv_len, 2, 4))
    mask = jnp.zeros((2, 1, 3, kv_len), bool).at[0].set(True)  # example 1 sees nothing

    def f(q, k):
        return dot_product_attention(q, k, k, mask=mask)

    out = f(x, k)
    np.testing.assert_array_equal(out[1], 0.0)
    for g in jax.grad(lambda q, k: jnp.sum(f(q, k)), argnums=(0, 1))(x, k):
        assert jnp.all(jnp.isfinite(g))
    row_mask = mask[:, 0, 0, :]  # [batch, kv_len]
    for norm in (softmax, sparsemax):
        g = jax.grad(lambda z, norm=norm: jnp.sum(norm(z, row_mask) ** 2))(k[..., 0, 0])
        assert jnp.all(jnp.isfinite(g))


@settings(max_examples=10)
@given(st.integers(2, 7), st.integers(0, 10_000))
def test_self_attention_without_positions_is_permutation_equivariant(length, seed):
    x = jax.random.normal(jax.random.key(seed), (1, length, 8))
    perm = np.random.default_rng(seed).permutation(length)
    m = MultiHeadAttention(num_heads=2)
    params = m.init(jax.random.key(0), x)
    np.testing.assert_allclose(
        m.apply(params, x[:, perm]), m.apply(params, x)[:, perm], atol=1e-5, rtol=1e-5
    )


def test_gumbel_softmax_samples_follow_softmax_and_pass_gradients():
    logits = jnp.array([1.0, 0.0, -1.0, 2.0])
    mask = jnp.array([True, True, True, False])
    keys = jax.random.split(jax.random.key(0), 20_000)
    hard = jax.vmap(lambda k: gumbel_softmax(k, logits, mask, hard=True))(keys)
    assert set(np.unique(hard)) <= {0.0, 1.0}
    np.testing.assert_array_equal(hard.sum(-1), 1.0)
    np.testing.assert_allclose(hard.mean(0), softmax(logits, mask), atol=0.015)
    # Straight-through: the gradient is that of the relaxed sample.
    key = jax.random.key(1)
    g_hard = jax.grad(lambda z: gumbel_softmax(key, z, hard=True) @ jnp.arange(4.0))(logits)
    g_soft = jax.grad(lambda z: gumbel_softmax(key, z) @ jnp.arange(4.0))(logits)
    np.testing.assert_allclose(g_hard, g_soft, atol=1e-6)
    assert jnp.any(g_hard != 0)


def test_normalisers_run_in_float32_under_jit_and_vmap():
    z = jax.random.normal(jax.random.key(0), (3, 5)).astype(jnp.bfloat16)
    for norm in (softmax, sparsemax):
        w = jax.jit(norm)(z)
        assert w.dtype == jnp.float32
        np.testing.assert_allclose(jax.vmap(norm)(z), w, atol=1e-6)
        np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)
