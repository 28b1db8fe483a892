import jax.numpy as jnp
import numpy as np
import pytest

from attn_jax.attention import causal_mask, combine_masks, padding_mask, segment_mask, window_mask


def test_padding_mask_from_lengths_and_tokens_agree():
    by_len = padding_mask(jnp.array([3, 1]), 4)
    tokens = jnp.array([[5, 6, 7, 0], [9, 0, 0, 0]])
    by_tok = padding_mask(tokens, pad_id=0)
    assert by_len.shape == (2, 1, 1, 4)
    np.testing.assert_array_equal(by_len, by_tok)
    np.testing.assert_array_equal(by_len[:, 0, 0], [[1, 1, 1, 0], [1, 0, 0, 0]])


def test_padding_mask_with_query_padding():
    m = padding_mask(jnp.array([2]), 3, q_lengths_or_tokens=jnp.array([1]), q_len=2)
    assert m.shape == (1, 1, 2, 3)
    np.testing.assert_array_equal(m[0, 0], [[1, 1, 0], [0, 0, 0]])


def test_padding_mask_needs_length_or_pad_id():
    with pytest.raises(ValueError, match="pad_id"):
        padding_mask(jnp.array([1, 2]))


def test_causal_mask_with_offset():
    np.testing.assert_array_equal(causal_mask(3)[0, 0], np.tril(np.ones((3, 3), bool)))
    # Two new queries after three cached keys: query 0 sits at position 3.
    np.testing.assert_array_equal(
        causal_mask(2, 5, offset=3)[0, 0], [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    )


def test_window_mask_left_right():
    m = window_mask(5, 5, (2, 1))[0, 0]
    expected = np.array([[(-2 <= j - i <= 1) for j in range(5)] for i in range(5)])
    np.testing.assert_array_equal(m, expected)
    with pytest.raises(ValueError):
        window_mask(3, 3, -1)


def test_segment_mask_block_diagonal():
    m = segment_mask(jnp.array([[1, 1, 2]]))
    np.testing.assert_array_equal(m[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 1]])


def test_combine_masks():
    assert combine_masks(None, None) is None
    m = combine_masks(causal_mask(3), None, padding_mask(jnp.array([2]), 3))
    np.testing.assert_array_equal(m[0, 0], [[1, 0, 0], [1, 1, 0], [1, 1, 0]])
