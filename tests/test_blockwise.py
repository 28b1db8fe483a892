"""The blockwise (memory-efficient) kernel against the 'xla' reference and jax.nn, in outputs and gradients.

Each case combines several features (mask types, bias layouts, GQA/MQA, uneven lengths) because every
distinct call compiles a new kernel, which dominates the running time of this file; programs are compiled
with the fast (low-optimisation) CPU options of ``tests.fast_compile``.
"""

import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_jax.attention import (
    blockwise_attention,
    dot_product_attention,
    dropout_keep_mask,
    padding_mask,
    segment_mask,
)
from attn_jax.attention.blockwise import BANDED_BLOCKS, DENSE_BLOCKS, _Config, default_block_sizes
from tests.fast_compile import fast_jit

B = 2
BLOCKS = dict(block_q=32, block_kv=24)  # small blocks: many of them, lengths not multiples of them


def _normal(shape, seed, dtype=jnp.float32):
    """Random normal inputs from NumPy (jax.random would compile a generator for every new shape)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), dtype)


def _qkv(q_len, kv_len, heads, kv_heads, dim=16, dtype=jnp.float32, seed=0, batch=(B,)):
    return (
        _normal((*batch, q_len, heads, dim), seed, dtype),
        _normal((*batch, kv_len, kv_heads, dim), seed + 1, dtype),
        _normal((*batch, kv_len, kv_heads, dim), seed + 2, dtype),
    )


def _out_and_grads(attend, args, seed=1):
    """Output and the vjp of a fixed random cotangent for every argument (one jitted program)."""

    def run(cot, *args):
        out, vjp = jax.vjp(attend, *args)
        return out, vjp(cot.astype(out.dtype))

    out_shape = jax.eval_shape(attend, *args)
    return fast_jit(run)(_normal(out_shape.shape, seed + 100), *args)


def _assert_close(a, b, atol=2e-6, rtol=1e-5):
    np.testing.assert_allclose(np.asarray(a, np.float32), np.asarray(b, np.float32), atol=atol, rtol=rtol)


def _assert_all_close(outs, refs, atol=2e-5, rtol=1e-4):
    for a, b in zip(outs, refs, strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        _assert_close(a, b, atol, rtol)


def _case(name):
    """``(batch, q_len, kv_len, heads, kv_heads, bias or None, keyword arguments)`` of one case."""
    rng = np.random.default_rng(7)
    if name == "plain_uneven_lengths_extra_batch_dims":
        return (3, B), 70, 90, 4, 4, None, {}
    if name == "padding_with_empty_example_gqa_broadcast_bias":  # example 1 has no key at all
        bias = _normal((B, 1, 1, 100), 10)
        return (B,), 64, 100, 4, 2, bias, dict(mask=padding_mask(jnp.array([95, 0]), 100))
    if name == "causal_window_mqa_full_bias":
        bias = _normal((B, 4, 96, 96), 11)
        return (B,), 96, 96, 4, 1, bias, dict(causal=True, window=(20, 3))
    if name == "segments_with_empty_rows_causal_gqa":  # queries of segment 3 find no key of segment 3
        q_ids = jnp.asarray(rng.integers(0, 4, (B, 90)), jnp.int32)
        kv_ids = jnp.asarray(rng.integers(0, 3, (B, 70)), jnp.int32)
        return (B,), 90, 70, 4, 2, None, dict(q_segment_ids=q_ids, kv_segment_ids=kv_ids, causal=True)
    if name == "per_head_mask_headwise_bias_window_past_the_keys":  # queries >= 26 see no key
        mask = jnp.asarray(rng.random((B, 2, 60, 20)) < 0.7)
        bias = _normal((2, 60, 20), 12)  # no batch dim
        return (B,), 60, 20, 2, 2, bias, dict(mask=mask, window=(5, 5))
    raise ValueError(name)


CASES = [
    "plain_uneven_lengths_extra_batch_dims",
    "padding_with_empty_example_gqa_broadcast_bias",
    "causal_window_mqa_full_bias",
    "segments_with_empty_rows_causal_gqa",
    "per_head_mask_headwise_bias_window_past_the_keys",
]
EMPTY_ROWS = {CASES[1], CASES[3], CASES[4]}


@pytest.mark.parametrize("name", CASES)
def test_matches_xla_outputs_and_gradients(name):
    batch, q_len, kv_len, heads, kv_heads, bias, kw = _case(name)
    args = _qkv(q_len, kv_len, heads, kv_heads, batch=batch)
    if bias is not None:
        args = (*args, bias)

    def xla(q, k, v, bias=None):
        return dot_product_attention(q, k, v, bias=bias, implementation="xla", **kw)

    def blockwise(q, k, v, bias=None):
        return blockwise_attention(q, k, v, bias=bias, **kw, **BLOCKS)

    out, grads = _out_and_grads(xla, args)
    out_b, grads_b = _out_and_grads(blockwise, args)
    _assert_close(out_b, out)
    _assert_all_close(grads_b, grads)  # query, key, value and (broadcast) bias gradients
    if name in EMPTY_ROWS:  # zeros, with finite gradients (zero for the queries of those rows)
        empty = np.all(np.asarray(out_b) == 0.0, axis=(-1, -2))  # [B, q_len]
        assert empty.any(), "the case should have queries with nothing to attend to"
        assert all(np.all(np.isfinite(g)) for g in grads_b)
        np.testing.assert_array_equal(np.asarray(grads_b[0])[empty], 0.0)
    if name == CASES[2]:  # no empty rows here: jax.nn agrees too
        ref = lambda q, k, v, bias: jax.nn.dot_product_attention(
            q, k, v, bias=bias, is_causal=True, local_window_size=(20, 3)
        )
        out_nn, grads_nn = _out_and_grads(ref, args)
        _assert_close(out_b, out_nn)
        _assert_all_close(grads_b, grads_nn)


def test_bfloat16_inputs_accumulate_in_float32():
    q, k, v = _qkv(100, 100, 4, 2)
    kw = dict(causal=True, mask=padding_mask(jnp.array([100, 60]), 100))
    bf = tuple(x.astype(jnp.bfloat16) for x in (q, k, v))
    out, grads = _out_and_grads(lambda *a: blockwise_attention(*a, **kw, **BLOCKS), bf)
    assert out.dtype == jnp.bfloat16 and all(g.dtype == jnp.bfloat16 for g in grads)
    out_ref, grads_ref = _out_and_grads(lambda *a: dot_product_attention(*a, **kw), (q, k, v))
    _assert_close(out, out_ref, atol=3e-2, rtol=3e-2)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        _assert_close(g, g_ref, atol=6e-2, rtol=6e-2)


def test_dropout_matches_reference_with_the_same_keep_mask():
    rate = 0.3
    q, k, v = _qkv(70, 50, 4, 2)
    rng = jax.random.key(5)
    mask = padding_mask(jnp.array([50, 30]), 50)
    keep = dropout_keep_mask(rng, (B,), 4, 2, 70, 50, rate, **BLOCKS)  # [B, heads, q, kv]
    assert keep.shape == (B, 4, 70, 50)
    np.testing.assert_allclose(keep.mean(), 1 - rate, atol=0.02)

    def ours(q, k, v):
        dropout = dict(dropout_rate=rate, dropout_rng=rng)
        return blockwise_attention(q, k, v, mask=mask, causal=True, **dropout, **BLOCKS)

    def ref(q, k, v):  # xla weights, then the kernel's keep-mask
        _, w = dot_product_attention(q, k, v, mask=mask, causal=True, return_weights=True)
        w = jnp.where(keep, w / (1 - rate), 0.0)  # [B, heads, q, kv]
        v_heads = jnp.repeat(v, 2, axis=-2)  # [B, kv, heads, D]: head n reads key/value head n // 2
        return jnp.einsum("bhqk,bkhd->bqhd", w, v_heads)

    out, grads = _out_and_grads(ours, (q, k, v))
    out_ref, grads_ref = _out_and_grads(ref, (q, k, v))
    _assert_close(out, out_ref)  # the forward and the backward pass drew the same keep-mask as `keep`
    _assert_all_close(grads, grads_ref)
    other = dropout_keep_mask(jax.random.key(6), (B,), 4, 2, 70, 50, rate, **BLOCKS)
    assert 0.1 < np.mean(np.asarray(other) != np.asarray(keep)) < 0.9  # another key, another mask
    np.testing.assert_array_equal(dropout_keep_mask(rng, (B,), 4, 2, 70, 50, rate, **BLOCKS), keep)


def test_default_blocks_are_smaller_when_a_band_can_skip_blocks():
    assert default_block_sizes() == DENSE_BLOCKS
    assert default_block_sizes(causal=True) == default_block_sizes(window=8) == BANDED_BLOCKS
    assert BANDED_BLOCKS[0] * BANDED_BLOCKS[1] < DENSE_BLOCKS[0] * DENSE_BLOCKS[1]
    # Without block sizes a call uses the defaults: its dropout draws equal the explicit call's.
    q, k, v = _qkv(70, 50, 4, 2)
    dropout = dict(dropout_rate=0.5, dropout_rng=jax.random.key(3))
    for causal in (False, True):
        bq, bk = default_block_sizes(causal=causal)
        implicit = blockwise_attention(q, k, v, causal=causal, **dropout)
        explicit = blockwise_attention(q, k, v, causal=causal, block_q=bq, block_kv=bk, **dropout)
        np.testing.assert_array_equal(implicit, explicit)


def test_structurally_masked_blocks_are_never_visited():
    # Causal: values of the last key block are NaN. Query blocks before it never read them (xla gives
    # NaN everywhere, as 0 * NaN = NaN); the rows that do see them are NaN.
    q, k, v = _qkv(128, 128, 2, 2)
    v = v.at[:, 96:].set(jnp.nan)
    causal = fast_jit(lambda q, k, v: blockwise_attention(q, k, v, causal=True, block_q=32, block_kv=32))
    out = causal(q, k, v)
    assert np.all(np.isfinite(out[:, :96])) and np.all(np.isnan(out[:, 96:]))
    # Segment ids: a key block holding only other segments is skipped at run time.
    segments = jnp.repeat(jnp.arange(4), 32)[None].repeat(B, 0)  # [B, 128], one segment per block
    by_segment = lambda q, k, v: blockwise_attention(q, k, v, q_segment_ids=segments, block_q=32, block_kv=32)
    out = fast_jit(by_segment)(q, k, v)
    assert np.all(np.isfinite(out[:, :96])) and np.all(np.isnan(out[:, 96:]))
    # The static block ranges: causal visits j <= i only; a (left, right) window only its band.
    common = dict(q_len=128, kv_len=128, block_q=32, block_kv=32, num_q_blocks=4, num_kv_blocks=4,
                  dropout_rate=0.0, skip_dynamic=False)
    triangle = _Config(left=None, right=0, **common)
    np.testing.assert_array_equal(triangle.kv_block_range(), ([0, 0, 0, 0], [1, 2, 3, 4]))
    np.testing.assert_array_equal(triangle.q_block_range(), ([0, 1, 2, 3], [4, 4, 4, 4]))
    band = _Config(left=10, right=40, **common)
    np.testing.assert_array_equal(band.kv_block_range(), ([0, 0, 1, 2], [3, 4, 4, 4]))


def test_public_entry_point_defaults_and_segment_ids():
    ids = jnp.array([[0] * 30 + [1] * 20, [0] * 50])
    q, k, v = _qkv(50, 50, 2, 2)
    def attend(impl, **kw):
        return fast_jit(lambda q, k, v: dot_product_attention(q, k, v, implementation=impl, **kw))

    a = attend("blockwise", q_segment_ids=ids)(q, k, v)  # default blocks; kv ids default to q ids
    b = attend("xla", mask=segment_mask(ids))(q, k, v)
    _assert_close(a, b)
    _assert_close(attend("xla", q_segment_ids=ids)(q, k, v), b)


def test_return_weights_is_refused_and_automatic_choice_avoids_it():
    q, k, v = _qkv(20, 20, 2, 2)
    with pytest.raises(ValueError, match=r"blockwise.*cannot return"):
        dot_product_attention(q, k, v, implementation="blockwise", return_weights=True)
    _, w = dot_product_attention(q, k, v, return_weights=True)  # None falls back to xla
    assert w.shape == (B, 2, 20, 20)


def test_automatic_choice_on_cpu_depends_on_length(caplog):
    from attn_jax.attention.dot_product import CPU_BLOCKWISE_MIN_KV_LEN

    if jax.default_backend() != "cpu":
        pytest.skip("the length threshold is the CPU rule")
    caplog.set_level(logging.DEBUG, logger="attn_jax.attention.dot_product")
    for length, expected in ((CPU_BLOCKWISE_MIN_KV_LEN // 2, "xla"), (CPU_BLOCKWISE_MIN_KV_LEN, "blockwise")):
        caplog.clear()
        shape = jax.ShapeDtypeStruct((1, length, 2, 16), jnp.float32)
        jax.eval_shape(lambda q: dot_product_attention(q, q, q, causal=True), shape)
        assert f"using the '{expected}' implementation" in caplog.text


def test_temporary_memory_is_far_below_xla():
    shape = jax.ShapeDtypeStruct((1, 2048, 2, 32), jnp.float32)

    def temp_bytes(implementation):
        attend = lambda q, k, v: dot_product_attention(q, k, v, causal=True, implementation=implementation)
        loss = lambda q, k, v: attend(q, k, v).sum()
        compiled = jax.jit(jax.grad(loss, argnums=(0, 1, 2))).lower(shape, shape, shape).compile()
        analysis = compiled.memory_analysis()
        return None if analysis is None else analysis.temp_size_in_bytes

    xla, blockwise = temp_bytes("xla"), temp_bytes("blockwise")
    if xla is None or blockwise is None:
        pytest.skip("this backend reports no memory analysis")
    assert blockwise * 10 < xla, (blockwise, xla)


def test_bad_arguments_raise():
    q, k, v = _qkv(20, 30, 2, 2)
    with pytest.raises(ValueError, match="kv_segment_ids are required"):
        blockwise_attention(q, k, v, q_segment_ids=jnp.zeros((B, 20), jnp.int32))
    with pytest.raises(ValueError, match="does not broadcast"):
        blockwise_attention(q, k, v, mask=jnp.ones((B, 1, 7, 30), bool))
    with pytest.raises(ValueError, match="dropout_rng"):
        blockwise_attention(q, k, v, dropout_rate=0.1)
    with pytest.raises(ValueError, match="kv_segment_ids needs q_segment_ids"):
        dot_product_attention(q, k, v, kv_segment_ids=jnp.zeros((B, 30), jnp.int32))
