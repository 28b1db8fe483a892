"""MultiHeadAttention: equal to Flax's module with the same weights, and cached decoding exact."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_jax.attention import padding_mask
from attn_jax.layers.multi_head import MultiHeadAttention

FEATURES, HEADS = 16, 4


def _x(shape=(2, 6, FEATURES), seed=0):
    return jax.random.normal(jax.random.key(seed), shape)


@pytest.mark.parametrize("qk_norm", [False, True])
def test_equals_flax_multi_head_given_same_weights(qk_norm):
    x, y = _x(), _x((2, 9, FEATURES), seed=1)
    mask = padding_mask(jnp.array([9, 4]), 9)
    ours = MultiHeadAttention(num_heads=HEADS, qk_norm=qk_norm)
    flax_mha = nn.MultiHeadDotProductAttention(num_heads=HEADS, normalize_qk=qk_norm)
    params = nn.meta.unbox(ours.init(jax.random.key(2), x, y)["params"])
    flax_params = flax_mha.init(jax.random.key(3), x, y)["params"]
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, flax_params)
    got = ours.apply({"params": params}, x, y, mask=mask)
    want = flax_mha.apply({"params": params}, x, y, mask=mask)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("qk_norm", [False, True])
def test_self_attention_initialises_and_computes_as_flax(qk_norm):
    """The same key initialises the same parameters as Flax's module (names, shapes and values, so
    checkpoints and initial runs match), and causal self-attention agrees with it."""
    x = _x()
    ours = MultiHeadAttention(num_heads=HEADS, qk_norm=qk_norm, bias_init=nn.initializers.normal(0.1))
    flax_mha = nn.MultiHeadDotProductAttention(
        num_heads=HEADS, normalize_qk=qk_norm, bias_init=nn.initializers.normal(0.1)
    )
    params = nn.meta.unbox(ours.init(jax.random.key(5), x)["params"])
    flax_params = flax_mha.init(jax.random.key(5), x)["params"]
    jax.tree.map(np.testing.assert_array_equal, params, flax_params)
    got = ours.apply({"params": params}, x, mask=nn.make_causal_mask(x[..., 0]))
    want = flax_mha.apply({"params": params}, x, mask=nn.make_causal_mask(x[..., 0]))
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


def test_grouped_kv_heads_parameter_shapes():
    m = MultiHeadAttention(num_heads=8, num_kv_heads=2, head_dim=4)
    params = nn.meta.unbox(m.init(jax.random.key(0), _x())["params"])
    assert params["query"]["kernel"].shape == (FEATURES, 8, 4)
    assert params["key"]["kernel"].shape == (FEATURES, 2, 4)
    assert params["out"]["kernel"].shape == (8, 4, FEATURES)


def test_logical_axis_names_on_parameters():
    boxed = MultiHeadAttention(num_heads=HEADS, num_kv_heads=2).init(jax.random.key(0), _x())
    assert boxed["params"]["query"]["kernel"].names == ("embed", "heads", "head_dim")
    assert boxed["params"]["key"]["kernel"].names == ("embed", "kv_heads", "head_dim")
    assert boxed["params"]["out"]["kernel"].names == ("heads", "head_dim", "embed")


DECODE_CASES = [
    dict(),
    dict(num_kv_heads=2),
    dict(num_kv_heads=1, position="rotary"),
    dict(position="alibi"),
    dict(position="relative"),
    dict(window=(2, 0), position="rotary", qk_norm=True),
]


@pytest.mark.parametrize("options", DECODE_CASES, ids=lambda o: "-".join(map(str, o.values())) or "mha")
def test_cached_decoding_equals_full_causal_forward(options):
    length = 7
    x = _x((2, length, FEATURES))
    full_model = MultiHeadAttention(num_heads=HEADS, causal=True, **options)
    step_model = MultiHeadAttention(num_heads=HEADS, causal=True, decode=True, **options)
    params = full_model.init(jax.random.key(1), x)["params"]
    want = full_model.apply({"params": params}, x)

    cache = step_model.init(jax.random.key(1), x)["cache"]
    assert cache["cached_key"].shape[-3] == length

    @jax.jit
    def step(cache, token):
        out, mutated = step_model.apply(
            {"params": params, "cache": cache}, token, mutable=["cache"]
        )
        return mutated["cache"], out

    # A prefill of three tokens, then one token at a time.
    cache, out = step(cache, x[:, :3])
    outs = [out]
    for t in range(3, length):
        cache, out = step(cache, x[:, t : t + 1])
        outs.append(out)
    got = jnp.concatenate(outs, axis=1)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    assert int(cache["cache_index"]) == length


def test_sow_weights():
    x = _x()
    m = MultiHeadAttention(num_heads=HEADS, causal=True, sow_weights=True)
    variables = m.init(jax.random.key(0), x)
    _, state = m.apply({"params": variables["params"]}, x, mutable=["intermediates"])
    (w,) = state["intermediates"]["attention_weights"]
    assert w.shape == (2, HEADS, 6, 6)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(jnp.triu(w, 1), 0.0)


def test_dropout_needs_rng_and_is_reproducible():
    x = _x()
    m = MultiHeadAttention(num_heads=HEADS, dropout_rate=0.3)
    params = m.init(jax.random.key(0), x)["params"]
    clean = m.apply({"params": params}, x)
    a = m.apply({"params": params}, x, deterministic=False, rngs={"dropout": jax.random.key(5)})
    b = m.apply({"params": params}, x, deterministic=False, rngs={"dropout": jax.random.key(5)})
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, clean)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="multiple of num_kv_heads"):
        MultiHeadAttention(num_heads=4, num_kv_heads=3).init(jax.random.key(0), _x())
    with pytest.raises(ValueError, match="divisible by num_heads"):
        MultiHeadAttention(num_heads=5).init(jax.random.key(0), _x())
    with pytest.raises(ValueError, match="Unknown position scheme"):
        MultiHeadAttention(num_heads=4, position="sinusoid").init(jax.random.key(0), _x())


def test_bfloat16_compute_keeps_float32_params():
    x = _x().astype(jnp.bfloat16)
    m = MultiHeadAttention(num_heads=HEADS, dtype=jnp.bfloat16, position="rotary", causal=True)
    variables = m.init(jax.random.key(0), x)
    assert nn.meta.unbox(variables["params"])["query"]["kernel"].dtype == jnp.float32
    out = jax.jit(m.apply)(variables, x)
    assert out.dtype == jnp.bfloat16 and jnp.all(jnp.isfinite(out.astype(jnp.float32)))
