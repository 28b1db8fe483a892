"""Hard attention (Xu et al., 2015) and its REINFORCE estimator (Williams, 1992)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_jax.attention.hard import (
    attention_entropy,
    attention_log_prob,
    reinforce_loss,
    sample_attention,
    update_baseline,
)
from attn_jax.layers.hard import HardAttention, HardAttentionOutput

LOGITS = jnp.array([0.5, -0.3, 1.2, 0.0, -1.0, 0.7])
MASK = jnp.array([True, True, True, True, True, False])


def test_sample_attention_frequencies_match_softmax():
    n = 100_000
    index = sample_attention(jax.random.key(0), jnp.broadcast_to(LOGITS, (n, 6)))
    freq = np.bincount(np.asarray(index), minlength=6) / n
    p = np.asarray(jax.nn.softmax(LOGITS))
    # Standard error of each frequency is sqrt(p (1 - p) / n) < 0.0016: allow about 5 of them.
    np.testing.assert_allclose(freq, p, atol=0.008)


def test_sample_attention_never_draws_masked_positions():
    n = 50_000
    logits = jnp.broadcast_to(LOGITS.at[5].set(100.0), (n, 6))  # the masked position would dominate
    index = np.asarray(sample_attention(jax.random.key(1), logits, MASK))
    assert index.dtype == np.int32 and index.shape == (n,)
    assert not np.any(index == 5)
    assert set(np.unique(index)) == {0, 1, 2, 3, 4}


def test_log_prob_and_entropy_match_numpy():
    p = np.exp(np.asarray(LOGITS[:5]) - np.log(np.exp(np.asarray(LOGITS[:5])).sum()))
    index = jnp.array([0, 2, 4])
    log_prob = attention_log_prob(jnp.broadcast_to(LOGITS, (3, 6)), index, MASK)
    np.testing.assert_allclose(log_prob, np.log(p[[0, 2, 4]]), rtol=1e-5)
    np.testing.assert_allclose(attention_entropy(LOGITS, MASK), -(p * np.log(p)).sum(), rtol=1e-5)


# A toy policy: logits theta over K = 5 categories, a fixed reward per category.
THETA = jnp.array([0.3, -0.8, 1.1, 0.0, -0.4])
REWARD = jnp.array([1.0, -0.5, 2.0, 0.3, -1.0])
N_SAMPLES = 20_000


def _exact_gradient() -> jax.Array:
    """grad of -E_{p_theta}[f] = -grad sum_k softmax(theta)_k f_k."""
    return jax.grad(lambda th: -jnp.sum(jax.nn.softmax(th) * REWARD))(THETA)


@jax.jit
def _reinforce_gradients(baseline: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The vectorised REINFORCE estimate over N_SAMPLES draws, and the per-sample gradients."""
    index = sample_attention(jax.random.key(42), jnp.broadcast_to(THETA, (N_SAMPLES, 5)))

    def loss(theta, idx):
        logits = jnp.broadcast_to(theta, (*idx.shape, 5))
        return reinforce_loss(attention_log_prob(logits, idx), REWARD[idx], baseline)

    estimate = jax.grad(loss)(THETA, index)
    per_sample = jax.vmap(jax.grad(loss), in_axes=(None, 0))(THETA, index[:, None])
    return estimate, per_sample


@pytest.mark.parametrize("baseline", [0.0, 0.8])
def test_reinforce_gradient_matches_exact_policy_gradient(baseline):
    exact = np.asarray(_exact_gradient())
    estimate, per_sample = map(np.asarray, _reinforce_gradients(jnp.float32(baseline)))
    np.testing.assert_allclose(per_sample.mean(0), estimate, atol=1e-4)  # the loss is a plain mean
    stderr = per_sample.std(0) / np.sqrt(N_SAMPLES)
    error = np.abs(estimate - exact)
    # Unbiased for any baseline: within 0.02 absolute, and within 5 standard errors per component.
    assert error.max() < 0.02, (estimate, exact)
    assert np.all(error < 5.0 * stderr + 1e-4), (error, stderr)


def test_reinforce_baseline_reduces_variance():
    expected_reward = float(jnp.sum(jax.nn.softmax(THETA) * REWARD))
    no_baseline = np.asarray(_reinforce_gradients(jnp.float32(0.0))[1])
    with_baseline = np.asarray(_reinforce_gradients(jnp.float32(expected_reward))[1])
    assert with_baseline.var(0).sum() < 0.9 * no_baseline.var(0).sum()


def test_reinforce_loss_value_and_entropy_bonus():
    log_prob = jnp.array([-1.0, -2.0])
    reward = jnp.array([3.0, 1.0])
    # -mean((r - b) * log p) = -mean([2 * -1, 0 * -2]) = 1.
    np.testing.assert_allclose(reinforce_loss(log_prob, reward, 1.0), 1.0)
    entropy = jnp.array([0.5, 1.5])
    np.testing.assert_allclose(
        reinforce_loss(log_prob, reward, 1.0, entropy=entropy, entropy_weight=0.1), 1.0 - 0.1 * 1.0
    )
    # The advantage carries no gradient: d loss / d reward = 0.
    np.testing.assert_array_equal(jax.grad(lambda r: reinforce_loss(log_prob, r, 1.0))(reward), [0.0, 0.0])


def test_update_baseline_moving_average():
    b = update_baseline(1.0, jnp.array([2.0, 4.0]), decay=0.9)  # 0.9 * 1 + 0.1 * mean([2, 4])
    np.testing.assert_allclose(b, 1.2, rtol=1e-6)
    b = update_baseline(b, jnp.array([0.0]), decay=0.5)
    np.testing.assert_allclose(b, 0.6, rtol=1e-6)
    # Converges to a constant reward.
    b = jnp.float32(0.0)
    for _ in range(200):
        b = update_baseline(b, jnp.array([5.0]), decay=0.9)
    np.testing.assert_allclose(b, 5.0, rtol=1e-4)
    assert jax.grad(lambda r: update_baseline(0.0, r))(jnp.array([1.0, 2.0])).tolist() == [0.0, 0.0]


# --- The module -------------------------------------------------------------------------------------


def _module_inputs(batch: int = 3, kv_len: int = 6):
    rng = np.random.default_rng(3)
    query = jnp.asarray(rng.normal(size=(batch, 5)), jnp.float32)
    memory = jnp.asarray(rng.normal(size=(batch, kv_len, 4)), jnp.float32)
    mask = jnp.arange(kv_len) < jnp.array([[6], [3], [1]])[:batch]
    return query, memory, mask


MODULE = HardAttention(units=8)
PARAMS = jax.jit(functools.partial(MODULE.init, deterministic=True))(jax.random.key(0), *_module_inputs())


@functools.partial(jax.jit, static_argnames="deterministic")
def hard_attend(params, query, memory, mask, rng, deterministic):
    return MODULE.apply(params, query, memory, mask, deterministic=deterministic, rngs={"sample": rng})


def test_hard_attention_deterministic_picks_argmax():
    query, memory, mask = _module_inputs()
    out = hard_attend(PARAMS, query, memory, mask, jax.random.key(0), deterministic=True)
    assert isinstance(out, HardAttentionOutput)
    np.testing.assert_array_equal(out.index, np.argmax(np.asarray(out.weights), axis=-1))
    np.testing.assert_allclose(out.context, np.asarray(memory)[np.arange(3), np.asarray(out.index)])
    np.testing.assert_allclose(out.weights.sum(-1), 1.0, rtol=1e-6)
    assert out.index[2] == 0  # only position 0 is allowed in the last example
    np.testing.assert_allclose(out.log_prob, np.log(np.asarray(out.weights).max(-1)), rtol=1e-5)


def test_hard_attention_sampled_log_prob_context_and_frequencies():
    query, memory, mask = _module_inputs()
    n = 20_000
    # Many decoder states at once: the same 3 queries repeated, each with its own sample.
    q = jnp.broadcast_to(query, (n, 3, 5))
    out = hard_attend(PARAMS, q, memory, mask, jax.random.key(7), deterministic=False)
    index, weights = np.asarray(out.index), np.asarray(out.weights)
    assert index.shape == (n, 3)
    chosen = np.take_along_axis(weights, index[..., None], -1)[..., 0]
    np.testing.assert_allclose(out.log_prob, np.log(chosen), rtol=1e-5, atol=1e-6)
    assert np.all(np.asarray(mask)[np.arange(3), index])  # never a masked position
    np.testing.assert_allclose(out.context, np.asarray(memory)[np.arange(3), index], atol=1e-6)
    for b in range(3):
        freq = np.bincount(index[:, b], minlength=6) / n
        np.testing.assert_allclose(freq, weights[0, b], atol=0.015)
    p = weights[0]
    entropy = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), -1)
    np.testing.assert_allclose(out.entropy[0], entropy, rtol=1e-5, atol=1e-6)
    # Different keys give different samples.
    other = hard_attend(PARAMS, q, memory, mask, jax.random.key(8), deterministic=False)
    assert np.any(np.asarray(other.index) != index)


def test_hard_attention_fully_masked_row_and_rng_requirements():
    query, memory, _ = _module_inputs()
    mask = jnp.array([[True] * 6, [False] * 6, [True, False, True, False, True, False]])
    out = hard_attend(PARAMS, query, memory, mask, jax.random.key(1), deterministic=False)
    np.testing.assert_array_equal(out.weights[1], np.zeros(6))
    np.testing.assert_array_equal(out.context[1], np.zeros(4))
    assert float(out.log_prob[1]) == 0.0 and float(out.entropy[1]) == 0.0
    assert all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(out))

    # The REINFORCE loss has finite gradients, even through the empty row.
    def loss(params):
        o = hard_attend(params, query, memory, mask, jax.random.key(1), deterministic=False)
        return reinforce_loss(o.log_prob, jnp.array([1.0, 1.0, -1.0]), entropy=o.entropy, entropy_weight=0.01)

    grads = jax.grad(loss)(PARAMS)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(grads))
    assert any(np.any(np.asarray(g) != 0) for g in jax.tree.leaves(grads))
    with pytest.raises(Exception, match="sample"):
        jax.eval_shape(functools.partial(MODULE.apply, deterministic=False), PARAMS, query, memory, mask)
    with pytest.raises(ValueError, match="deterministic"):
        jax.eval_shape(MODULE.apply, PARAMS, query, memory, mask)
