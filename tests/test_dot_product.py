"""dot_product_attention against jax.nn.dot_product_attention and its own contract."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_jax.attention import available_implementations, dot_product_attention, padding_mask

B, T, S, D = 2, 5, 7, 8


def _inputs(heads, kv_heads, seed=0, dtype=jnp.float32):
    k = jax.random.split(jax.random.key(seed), 4)
    q = jax.random.normal(k[0], (B, T, heads, D), dtype)
    kk = jax.random.normal(k[1], (B, S, kv_heads, D), dtype)
    v = jax.random.normal(k[2], (B, S, kv_heads, D), dtype)
    bias = jax.random.normal(k[3], (B, heads, T, S))
    return q, kk, v, bias


# Every row keeps at least one key (length >= 1, key 0 is always allowed by causal and windows),
# because jax.nn averages the values of fully masked rows where attn_jax returns zeros.
CASES = list(
    itertools.product(
        [(4, 4), (4, 2), (4, 1)],  # (heads, kv_heads): MHA, GQA, MQA
        [False, True],  # padding mask
        [False, True],  # bias
        [False, True],  # causal
        [None, (2, 1)],  # window
    )
)


@pytest.mark.parametrize("heads_kv,use_mask,use_bias,causal,window", CASES)
def test_matches_jax_nn(heads_kv, use_mask, use_bias, causal, window):
    heads, kv_heads = heads_kv
    q, k, v, bias = _inputs(heads, kv_heads)
    mask = padding_mask(jnp.array([S, 3]), S) if use_mask else None
    if window is not None:
        window = (2 + T, 1) if causal else window  # keep key 0 visible to the last query
    kwargs = dict(bias=bias if use_bias else None, mask=mask)

    def ours(q, k, v, b):
        kw = dict(kwargs, bias=b if use_bias else None)
        return dot_product_attention(q, k, v, causal=causal, window=window, **kw)

    def ref(q, k, v, b):
        return jax.nn.dot_product_attention(
            q, k, v, bias=b if use_bias else None, mask=mask, is_causal=causal,
            local_window_size=window,
        )

    np.testing.assert_allclose(ours(q, k, v, bias), ref(q, k, v, bias), atol=2e-6, rtol=1e-5)
    loss = lambda f: lambda *a: jnp.sum(jnp.sin(f(*a)))
    g_ours = jax.grad(loss(ours), argnums=(0, 1, 2, 3))(q, k, v, bias)
    g_ref = jax.grad(loss(ref), argnums=(0, 1, 2, 3))(q, k, v, bias)
    for a, b in zip(g_ours, g_ref, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)


def test_fully_masked_rows_are_zero_with_finite_gradients():
    q, k, v, _ = _inputs(2, 2)
    mask = padding_mask(jnp.array([S, 0]), S)  # second example: no key at all

    def f(q, k, v):
        return dot_product_attention(q, k, v, mask=mask)

    out = f(q, k, v)
    np.testing.assert_array_equal(out[1], 0.0)
    assert jnp.all(jnp.isfinite(out))
    grads = jax.grad(lambda *a: jnp.sum(f(*a) ** 2), argnums=(0, 1, 2))(q, k, v)
    for g in grads:
        assert jnp.all(jnp.isfinite(g))
    np.testing.assert_array_equal(grads[0][1], 0.0)


def test_minus_inf_bias_does_not_give_nan():
    q, k, v, _ = _inputs(2, 2)
    bias = jnp.full((1, 1, T, S), -jnp.inf).at[..., 0].set(0.0)
    out = dot_product_attention(q, k, v, bias=bias)
    np.testing.assert_allclose(out, jnp.broadcast_to(v[:, :1], out.shape), atol=1e-6)


def test_return_weights_and_batch_dims():
    q, k, v, _ = _inputs(4, 2)
    mask = padding_mask(jnp.array([S, 3]), S)
    out, w = dot_product_attention(q, k, v, mask=mask, causal=True, return_weights=True)
    assert w.shape == (B, 4, T, S) and w.dtype == jnp.float32
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(w[1, :, :, 3:], 0.0)
    # Extra leading batch dims behave like a flattened batch.
    q2, k2, v2 = (x.reshape(1, *x.shape) for x in (q, k, v))
    out2 = dot_product_attention(q2, k2, v2, mask=mask[None], causal=True)
    np.testing.assert_allclose(out2[0], out, atol=1e-6)


def test_dropout():
    q, k, v, _ = _inputs(2, 2)
    base = dot_product_attention(q, k, v)
    kw = dict(dropout_rate=0.5, deterministic=False)
    a = dot_product_attention(q, k, v, dropout_rng=jax.random.key(1), **kw)
    b = dot_product_attention(q, k, v, dropout_rng=jax.random.key(1), **kw)
    c = dot_product_attention(q, k, v, dropout_rng=jax.random.key(2), **kw)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c) and not np.allclose(a, base)
    # Deterministic mode ignores the rate; dropout needs a key.
    np.testing.assert_array_equal(dot_product_attention(q, k, v, dropout_rate=0.5), base)
    with pytest.raises(ValueError, match="dropout_rng"):
        dot_product_attention(q, k, v, **kw)
    # Inverted dropout keeps the expectation: average over many keys approaches the clean output.
    keys = jax.random.split(jax.random.key(3), 2000)
    mean = jax.vmap(lambda r: dot_product_attention(q, k, v, dropout_rng=r, **kw))(keys).mean(0)
    np.testing.assert_allclose(mean, base, atol=0.1)


def test_bad_shapes_and_names_raise():
    q, k, v, _ = _inputs(3, 2)
    with pytest.raises(ValueError, match="multiple"):
        dot_product_attention(q, k, v)
    q, k, v, _ = _inputs(4, 2)
    with pytest.raises(ValueError, match="same rank"):
        dot_product_attention(q[0], k, v)
    with pytest.raises(ValueError, match="Unknown attention implementation 'nope'; valid: xla"):
        dot_product_attention(q, k, v, implementation="nope")
    assert "xla" in available_implementations()


def test_bfloat16_jit_and_vmap():
    q, k, v, _ = _inputs(4, 2)
    ref = dot_product_attention(q, k, v, causal=True)
    bf = jax.jit(lambda *a: dot_product_attention(*a, causal=True))(
        *(x.astype(jnp.bfloat16) for x in (q, k, v))
    )
    assert bf.dtype == jnp.bfloat16
    np.testing.assert_allclose(bf.astype(jnp.float32), ref, atol=0.05, rtol=0.05)
    per_example = jax.vmap(lambda *a: dot_product_attention(*a, causal=True))(q, k, v)
    np.testing.assert_allclose(per_example, ref, atol=1e-6)


def test_check_grads_small():
    from jax.test_util import check_grads

    q, k, v, bias = _inputs(2, 1)
    mask = padding_mask(jnp.array([4, 2]), S)
    f = lambda q, k, v, b: dot_product_attention(q, k, v, bias=b, mask=mask, causal=True)
    check_grads(f, (q, k, v, bias[:, :2]), order=1, modes=("fwd", "rev"), atol=1e-2, rtol=1e-2)


# --------------------------------------------------------------------------------------------------
# Fused kernels and the automatic choice


def _np_inputs(batch, q_len, kv_len, heads, kv_heads, dim, seed=0):
    """Random q, k, v from NumPy (no random-number program to compile per shape)."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape: jnp.asarray(rng.standard_normal(shape), jnp.float32)
    return (normal(batch, q_len, heads, dim), normal(batch, kv_len, kv_heads, dim),
            normal(batch, kv_len, kv_heads, dim))


def _compare_with_xla(implementation, args, kw, atol=2e-5, rtol=1e-4):
    """Outputs and gradients (q, k, v and bias when given) of ``implementation`` equal 'xla''s."""
    from tests.fast_compile import fast_jit

    def run(impl):
        def f(q, k, v, bias=None):
            return dot_product_attention(q, k, v, bias=bias, implementation=impl, **kw)

        def out_and_grads(*args):
            out, vjp = jax.vjp(f, *args)
            return out, vjp(jnp.cos(out))

        return fast_jit(out_and_grads)(*args)

    out, grads = run(implementation)
    out_ref, grads_ref = run("xla")
    np.testing.assert_allclose(out, out_ref, atol=atol, rtol=rtol)
    for g, g_ref in zip(grads, grads_ref, strict=True):
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(g, g_ref, atol=atol, rtol=rtol)
    return out


def test_query_has_keys_matches_the_full_mask():
    from attn_jax.attention import causal_mask, combine_masks, query_has_keys, segment_mask, window_mask

    rng = np.random.default_rng(0)
    for causal, window, use_valid, use_segments in itertools.product(
        [False, True], [None, (2, 1), (0, 3)], [False, True], [False, True]
    ):
        q_len, kv_len = 12, 9
        valid = rng.random((B, kv_len)) < 0.6
        q_ids, kv_ids = rng.integers(0, 3, (B, q_len)), rng.integers(0, 3, (B, kv_len))
        full = combine_masks(
            causal_mask(q_len, kv_len) if causal else None,
            window_mask(q_len, kv_len, window) if window is not None else None,
            valid[:, None, None, :] if use_valid else None,
            segment_mask(q_ids, kv_ids) if use_segments else None,
        )
        expected = np.ones((B, q_len), bool) if full is None else np.asarray(full).any(-1)[:, 0]
        got = query_has_keys(
            q_len, kv_len, causal=causal, window=window, kv_valid=valid if use_valid else None,
            q_segment_ids=q_ids if use_segments else None, kv_segment_ids=kv_ids if use_segments else None,
        )
        np.testing.assert_array_equal(np.broadcast_to(got, (B, q_len)), np.broadcast_to(expected, (B, q_len)))


def test_available_implementations_by_backend():
    assert available_implementations()[:2] == ("xla", "blockwise")
    assert set(available_implementations()) == {"xla", "blockwise", "cudnn", "tpu_splash", "tpu_flash"}
    assert available_implementations("cpu") == ("xla", "blockwise")
    assert "cudnn" in available_implementations("gpu") and "cudnn" not in available_implementations("tpu")
    assert "tpu_splash" in available_implementations("tpu")


def test_tpu_splash_in_interpret_mode():
    # Off TPU the splash kernel runs in Pallas' interpreter. One call covers GQA, a causal window (a
    # static splash mask), segment ids and a padding mask (one example has no key: zeros).
    q, k, v = _np_inputs(B, 128, 128, 4, 2, 32)
    ids = jnp.asarray(np.repeat(np.arange(4), 32)[None].repeat(B, 0), jnp.int32)
    mask = padding_mask(jnp.array([100, 0]), 128)
    kw = dict(causal=True, window=(40, 0), mask=mask, q_segment_ids=ids)
    out = _compare_with_xla("tpu_splash", (q, k, v), kw)
    np.testing.assert_array_equal(out[1], 0.0)
    with pytest.raises(ValueError, match=r"tpu_splash.*bias"):
        dot_product_attention(q, k, v, bias=jnp.zeros((128, 128)), implementation="tpu_splash")
    with pytest.raises(ValueError, match=r"tpu_splash.*multiples of 128"):
        dot_product_attention(q[:, :100], k, v, implementation="tpu_splash")


def test_tpu_flash_in_interpret_mode():
    # The TPU flash kernel has no interpret switch of its own: off TPU, Pallas' TPU interpret mode runs it.
    import contextlib

    from jax.experimental.pallas import tpu as pltpu

    q, k, v = _np_inputs(B, 128, 128, 4, 2, 32)
    bias = jnp.asarray(np.random.default_rng(2).standard_normal((B, 1, 128, 128)), jnp.float32)
    mask = padding_mask(jnp.array([100, 0]), 128)
    on_tpu = jax.default_backend() == "tpu"
    with contextlib.nullcontext() if on_tpu else pltpu.force_tpu_interpret_mode():
        out = _compare_with_xla("tpu_flash", (q, k, v, bias), dict(causal=True, mask=mask))
    np.testing.assert_array_equal(out[1], 0.0)
    with pytest.raises(ValueError, match=r"tpu_flash.*window"):
        dot_product_attention(q, k, v, window=3, implementation="tpu_flash")


@pytest.mark.skipif(
    jax.default_backend() != "gpu" or "nvidia" not in jax.devices()[0].device_kind.lower(),
    reason="cuDNN attention needs an NVIDIA GPU",
)
def test_cudnn_matches_xla_on_gpu(caplog):
    import logging

    q, k, v = (x.astype(jnp.bfloat16) for x in _np_inputs(B, 128, 128, 4, 2, 64))
    bias = jnp.asarray(np.random.default_rng(2).standard_normal((B, 1, 128, 128)), jnp.bfloat16)
    mask = padding_mask(jnp.array([100, 0]), 128)
    for kw, args in (
        (dict(causal=True, mask=mask), (q, k, v)),
        (dict(causal=True, window=(16, 0)), (q, k, v)),
        (dict(mask=mask), (q, k, v, bias)),
    ):
        _compare_with_xla("cudnn", args, kw, atol=5e-2, rtol=5e-2)
    caplog.set_level(logging.DEBUG, logger="attn_jax.attention.dot_product")
    dot_product_attention(q, k, v, causal=True)
    assert "using the 'cudnn' implementation" in caplog.text  # None picks it for bf16 on an NVIDIA GPU
