"""Each score function against a small example worked out by hand from its paper's formula."""

import jax.numpy as jnp
import numpy as np

from attn_jax.attention import (
    additive_scores,
    cosine_scores,
    dot_scores,
    general_scores,
    scaled_dot_scores,
)

# One batch, one head: queries q0=(1,2), q1=(0,1); keys k0=(3,0), k1=(1,-1), k2=(2,2).
Q = jnp.array([[1.0, 2.0], [0.0, 1.0]])[None, :, None, :]  # [1, 2, 1, 2]
K = jnp.array([[3.0, 0.0], [1.0, -1.0], [2.0, 2.0]])[None, :, None, :]  # [1, 3, 1, 2]


def test_dot_scores_by_hand():
    # q0.k = (3, -1, 6); q1.k = (0, -1, 2)
    np.testing.assert_allclose(dot_scores(Q, K)[0, 0], [[3, -1, 6], [0, -1, 2]])


def test_scaled_dot_scores_by_hand():
    expected = np.array([[3, -1, 6], [0, -1, 2]]) / np.sqrt(2.0)
    np.testing.assert_allclose(scaled_dot_scores(Q, K)[0, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(scaled_dot_scores(Q, K, scale=2.0)[0, 0], 2 * expected * np.sqrt(2))


def test_general_scores_by_hand():
    w = jnp.array([[1.0, 0.0], [1.0, 2.0]])
    # q0^T W = (1 + 2, 4) = (3, 4) -> . k = (9, -1, 14); q1^T W = (1, 2) -> (3, -1, 6)
    np.testing.assert_allclose(general_scores(Q, K, w)[0, 0], [[9, -1, 14], [3, -1, 6]])
    per_head = general_scores(Q, K, w[None])
    np.testing.assert_allclose(per_head, general_scores(Q, K, w))


def test_additive_scores_by_hand():
    v = jnp.array([1.0, -2.0])
    # score = v . tanh(q + k)
    expected = np.array(
        [[v @ np.tanh(np.array(q) + np.array(k)) for k in K[0, :, 0]] for q in Q[0, :, 0]]
    )
    np.testing.assert_allclose(additive_scores(Q, K, v)[0, 0], expected, rtol=1e-6)
    # q0 + k1 = (2, 1): 1 * tanh(2) - 2 * tanh(1)
    np.testing.assert_allclose(
        additive_scores(Q, K, v)[0, 0, 0, 1], np.tanh(2.0) - 2 * np.tanh(1.0), rtol=1e-6
    )


def test_cosine_scores_by_hand():
    # cos(q0, k2) = 6 / (sqrt5 * sqrt8); cos(q1, k0) = 0
    s = cosine_scores(Q, K, scale=10.0)[0, 0]
    np.testing.assert_allclose(s[0, 2], 10 * 6 / np.sqrt(40.0), rtol=1e-5)
    np.testing.assert_allclose(s[1, 0], 0.0, atol=1e-6)
    assert jnp.all(jnp.abs(s) <= 10.0 + 1e-5)


def test_scores_broadcast_batch_and_heads():
    q = jnp.ones((2, 3, 5, 4, 8))  # [batch, batch2, q, heads, dim]
    k = jnp.ones((2, 3, 7, 4, 8))
    assert dot_scores(q, k).shape == (2, 3, 4, 5, 7)
    assert additive_scores(q, k, jnp.ones((4, 8))).shape == (2, 3, 4, 5, 7)
