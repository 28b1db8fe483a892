"""Tests of visual attention (Xu et al., 2015) and its doubly stochastic penalty."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_jax.attention.visual import doubly_stochastic_penalty
from attn_jax.layers.visual import VisualAttention, VisualAttentionOutput

BATCH, H, W, D, N, UNITS = 3, 2, 3, 5, 4, 6
FEATURES = jax.random.normal(jax.random.key(0), (BATCH, H, W, D))
HIDDEN = jax.random.normal(jax.random.key(1), (BATCH, N))


def test_doubly_stochastic_penalty_by_hand():
    # batch 0: region totals (0.5 + 0.25, 0.5 + 0.75) = (0.75, 1.25) -> 0.0625 + 0.0625.
    # batch 1: the second step is padding, totals (1, 0) -> 0 + 1.
    weights = np.array(
        [[[0.5, 0.5], [0.25, 0.75]], [[1.0, 0.0], [0.0, 1.0]]], np.float32
    )  # [batch, steps, regions]
    mask = np.array([[True, True], [True, False]])
    np.testing.assert_allclose(np.asarray(doubly_stochastic_penalty(weights, mask)), [0.125, 1.0], atol=1e-6)
    np.testing.assert_allclose(np.asarray(doubly_stochastic_penalty(weights)), [0.125, 0.0], atol=1e-6)


def _init(model: VisualAttention, *args, **kwargs):
    return jax.jit(lambda k: model.init(k, *args, **kwargs))(jax.random.key(2))


@pytest.fixture(scope="module")
def soft_gated():
    model = VisualAttention(units=UNITS, mode="soft", gate=True, sow_weights=True)
    return model, _init(model, FEATURES, HIDDEN)


def _numpy_attention(params, features, hidden, mask=None):
    """Xu et al. (2015) by hand: alpha = softmax(v^T tanh(W a + b + U h)), z = sum alpha a."""
    p = jax.tree.map(np.asarray, params["params"])
    a = np.asarray(features, np.float64).reshape(features.shape[0], -1, features.shape[-1])
    h = np.asarray(hidden, np.float64)
    key = a @ p["feature_proj"]["kernel"] + p["feature_proj"]["bias"]  # [b, r, u]
    query = h @ p["hidden_proj"]["kernel"]  # [b, u]
    e = np.tanh(key + query[:, None, :]) @ p["v"]  # [b, r]
    if mask is not None:
        e = np.where(mask, e, -1e30)
    alpha = np.exp(e - e.max(-1, keepdims=True))
    alpha /= alpha.sum(-1, keepdims=True)
    return alpha, np.einsum("br,brd->bd", alpha, a)


def test_soft_attention_matches_formula_and_gate(soft_gated):
    model, params = soft_gated
    out, state = jax.jit(lambda p: model.apply(p, FEATURES, HIDDEN, mutable=["intermediates"]))(params)
    assert isinstance(out, VisualAttentionOutput)
    assert out.weights.dtype == jnp.float32 and out.weights.shape == (BATCH, H * W)
    np.testing.assert_allclose(np.asarray(out.weights).sum(-1), 1.0, atol=1e-5)
    alpha, z = _numpy_attention(params, FEATURES, HIDDEN)
    np.testing.assert_allclose(np.asarray(out.weights), alpha, atol=1e-5)
    gate = params["params"]["gate_proj"]
    beta = 1 / (1 + np.exp(-(np.asarray(HIDDEN) @ np.asarray(gate["kernel"]) + np.asarray(gate["bias"]))))
    np.testing.assert_allclose(np.asarray(out.beta), beta, atol=1e-5)
    np.testing.assert_allclose(np.asarray(out.context), beta * z, atol=1e-5)
    assert out.index is None and out.log_prob is None
    entropy = -(alpha * np.log(alpha)).sum(-1)
    np.testing.assert_allclose(np.asarray(out.entropy), entropy, atol=1e-5)
    (sown,) = state["intermediates"]["attention_weights"]
    np.testing.assert_allclose(np.asarray(sown), np.asarray(out.weights))

    # Without the gate, the context is the plain weighted sum of the same parameters.
    ungated = model.clone(gate=False)
    params_no_gate = {"params": {k: v for k, v in params["params"].items() if k != "gate_proj"}}
    plain = jax.jit(ungated.apply)(params_no_gate, FEATURES, HIDDEN)
    np.testing.assert_allclose(np.asarray(plain.context), z, atol=1e-5)
    assert plain.beta is None


def test_regions_input_and_projected_features_agree(soft_gated):
    model, params = soft_gated
    regions = FEATURES.reshape(BATCH, H * W, D)

    @jax.jit
    def run(p):
        projected = model.apply(p, FEATURES, method=VisualAttention.project_features)
        reused = model.apply(p, regions, HIDDEN, projected_features=projected)
        return model.apply(p, FEATURES, HIDDEN), reused, projected

    direct, reused, projected = run(params)
    assert projected.shape == (BATCH, H * W, UNITS)
    np.testing.assert_allclose(np.asarray(reused.context), np.asarray(direct.context), atol=1e-6)
    np.testing.assert_allclose(np.asarray(reused.weights), np.asarray(direct.weights), atol=1e-6)


def test_masked_regions_get_zero_weight(soft_gated):
    model, params = soft_gated
    mask = np.ones((BATCH, H * W), bool)
    mask[0, :4] = False
    mask[1, 1] = False
    mask[2, :] = False  # nothing to attend to: zero weights and context, no NaN
    out = jax.jit(model.apply)(params, FEATURES, HIDDEN, mask)
    w = np.asarray(out.weights)
    np.testing.assert_array_equal(w[~mask], 0.0)
    np.testing.assert_allclose(w[:2].sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(w[2], 0.0)
    np.testing.assert_array_equal(np.asarray(out.context[2]), 0.0)
    assert np.all(np.isfinite(np.asarray(out.entropy)))
    alpha, _ = _numpy_attention(params, FEATURES, HIDDEN, mask)
    np.testing.assert_allclose(w[:2], alpha[:2], atol=1e-5)
    # A [batch, h, w] mask means the same thing.
    grid_mask = jax.jit(model.apply)(params, FEATURES, HIDDEN, mask.reshape(BATCH, H, W))
    np.testing.assert_allclose(np.asarray(grid_mask.weights), w)


@pytest.fixture(scope="module")
def hard(soft_gated):
    # The same parameters without the gate: the mode changes only how the weights are used.
    _, params = soft_gated
    model = VisualAttention(units=UNITS, mode="hard", gate=False)
    return model, {"params": {k: v for k, v in params["params"].items() if k != "gate_proj"}}


def test_hard_attention_deterministic_reads_argmax_region(hard):
    model, params = hard
    out = jax.jit(model.apply)(params, FEATURES, HIDDEN)
    regions = np.asarray(FEATURES).reshape(BATCH, H * W, D)
    expected_index = np.argmax(np.asarray(out.weights), axis=-1)
    np.testing.assert_array_equal(np.asarray(out.index), expected_index)
    np.testing.assert_allclose(np.asarray(out.context), regions[np.arange(BATCH), expected_index])
    log_w = np.log(np.asarray(out.weights)[np.arange(BATCH), expected_index])
    np.testing.assert_allclose(np.asarray(out.log_prob), log_w, atol=1e-5)
    assert out.index.dtype == jnp.int32 and out.log_prob.dtype == jnp.float32


@pytest.fixture(scope="module")
def draw(hard):
    """Hard-attention samples, one per key: (index, log_prob, weights, context) stacked over keys."""
    model, params = hard

    @jax.jit
    def run(keys, mask):
        def one(key):
            out = model.apply(params, FEATURES, HIDDEN, mask, deterministic=False, rngs={"sample": key})
            return out.index, out.log_prob, out.weights, out.context

        return jax.vmap(one)(keys)

    return run


def test_hard_attention_samples_follow_weights(draw):
    samples = 4000
    keys = jax.random.split(jax.random.key(3), samples)
    index, log_prob, weights, context = draw(keys, np.ones((BATCH, H * W), bool))
    index, weights = np.asarray(index), np.asarray(weights[0])  # [samples, batch], [batch, regions]
    for b in range(BATCH):
        freq = np.bincount(index[:, b], minlength=H * W) / samples
        np.testing.assert_allclose(freq, weights[b], atol=0.04)
    picked = np.take_along_axis(np.log(weights)[None], index[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(np.asarray(log_prob), picked, atol=1e-5)
    regions = np.asarray(FEATURES).reshape(BATCH, H * W, D)
    np.testing.assert_allclose(np.asarray(context[:, 1]), regions[1][index[:, 1]])


def test_hard_attention_masked_never_sampled(draw):
    mask = np.ones((BATCH, H * W), bool)
    mask[:, ::2] = False
    mask[2] = False
    keys = jax.random.split(jax.random.key(4), 4000)
    index, log_prob, _, context = draw(keys, mask)
    assert np.all(mask[np.arange(2), np.asarray(index)[:, :2]])
    np.testing.assert_array_equal(np.asarray(log_prob[:, 2]), 0.0)  # all-masked row: no signal
    np.testing.assert_array_equal(np.asarray(context[:, 2]), 0.0)
    assert np.all(np.isfinite(np.asarray(log_prob)))


def test_bfloat16_features(soft_gated):
    model, params = soft_gated
    model = model.clone(dtype=jnp.bfloat16)
    features = FEATURES.astype(jnp.bfloat16)
    out = jax.jit(model.apply)(params, features, HIDDEN)
    assert out.weights.dtype == jnp.float32
    assert out.context.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(out.weights).sum(-1), 1.0, atol=1e-5)
    assert np.all(np.isfinite(np.asarray(out.context, np.float32)))


def test_bad_mode_rejected():
    with pytest.raises(ValueError, match="mode"):
        VisualAttention(units=4, mode="medium").init(jax.random.key(0), FEATURES, HIDDEN)
