import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attn_jax.attention import positions as pos_lib
from attn_jax.layers.positional import (
    ALiBiBias,
    LearnedPositionalEmbedding,
    RelativePositionBias,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
)


def test_sinusoidal_values():
    pe = pos_lib.sinusoidal_positions(jnp.arange(3), 4)
    # Frequencies 1 and 1/100 for dim 4 and timescale 1e4.
    pos = np.arange(3)[:, None]
    expected = np.concatenate([np.sin(pos * [1, 0.01]), np.cos(pos * [1, 0.01])], axis=-1)
    np.testing.assert_allclose(pe, expected, atol=1e-6)
    x = jnp.zeros((2, 3, 4))
    np.testing.assert_allclose(SinusoidalPositionalEncoding().apply({}, x), pe[None].repeat(2, 0))


def test_learned_embedding_adds_table_rows():
    m = LearnedPositionalEmbedding(max_len=10)
    x = jnp.zeros((1, 4, 6))
    variables = m.init(jax.random.key(0), x)
    table = variables["params"]["embedding"].unbox()
    out = m.apply(variables, x, positions=jnp.array([[3, 4, 5, 6]]))
    np.testing.assert_allclose(out[0], table[3:7])


@given(
    offset=st.integers(0, 50),
    i=st.integers(0, 20),
    j=st.integers(0, 20),
    seed=st.integers(0, 1000),
)
def test_rotary_scores_depend_only_on_offset(offset, i, j, seed):
    k1, k2 = jax.random.split(jax.random.key(seed))
    q = jax.random.normal(k1, (1, 1, 1, 8))
    k = jax.random.normal(k2, (1, 1, 1, 8))
    rope = RotaryEmbedding()

    def score(pq, pk):
        return jnp.sum(rope.apply({}, q, jnp.array([pq])) * rope.apply({}, k, jnp.array([pk])))

    np.testing.assert_allclose(score(i, j), score(i + offset, j + offset), rtol=1e-4, atol=1e-4)


def test_rotary_preserves_norm_and_identity_at_zero():
    x = jax.random.normal(jax.random.key(0), (2, 5, 3, 8))
    y = RotaryEmbedding().apply({}, x)
    np.testing.assert_allclose(jnp.linalg.norm(y, axis=-1), jnp.linalg.norm(x, axis=-1), rtol=1e-5)
    np.testing.assert_allclose(y[:, 0], x[:, 0])


def test_alibi_slopes_follow_the_paper():
    np.testing.assert_allclose(pos_lib.alibi_slopes(8), [2.0**-i for i in range(1, 9)])
    # 6 heads: the 4 slopes of n=4, then every other slope of n=8 (2^-0.5, 2^-1.5).
    expected = [2**-2, 2**-4, 2**-6, 2**-8, 2**-1, 2**-3]
    np.testing.assert_allclose(pos_lib.alibi_slopes(6), expected)
    bias = ALiBiBias(num_heads=2).apply({}, jnp.arange(3))
    np.testing.assert_allclose(bias[0], -(2**-4) * np.abs(np.arange(3)[None] - np.arange(3)[:, None]))


def test_t5_buckets_known_values():
    rel = jnp.array([0, -1, 1, -7, 7, -8, -200, 200])
    got = pos_lib.t5_relative_buckets(rel, num_buckets=32, max_distance=128)
    # Exact buckets below 8, a shared last bucket beyond max_distance; later keys are offset by 16.
    np.testing.assert_array_equal(got, [0, 1, 17, 7, 23, 8, 15, 31])
    causal = pos_lib.t5_relative_buckets(rel, num_buckets=32, max_distance=128, bidirectional=False)
    np.testing.assert_array_equal(causal[:4], [0, 1, 0, 7])
    assert int(causal[6]) == 31


@pytest.mark.parametrize("bucketing", ["t5", "clip"])
def test_relative_position_bias_is_translation_invariant(bucketing):
    m = RelativePositionBias(num_heads=3, max_distance=4, bucketing=bucketing)
    variables = m.init(jax.random.key(0), jnp.arange(6))
    bias = m.apply(variables, jnp.arange(6))
    assert bias.shape == (3, 6, 6)
    shifted = m.apply(variables, jnp.arange(6) + 11)
    np.testing.assert_allclose(bias, shifted)
    # Entries on one diagonal (same offset) are equal.
    np.testing.assert_allclose(bias[:, 1, 2], bias[:, 3, 4])
