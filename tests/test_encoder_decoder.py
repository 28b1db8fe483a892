"""The Transformer encoder-decoder: scanned = unrolled, remat = plain, cached decoding = recomputation."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_jax import decoding
from attn_jax.models.encoder_decoder import TransformerEncoderDecoder, decoding_state, unstack_layers

VOCAB, BATCH, SRC_LEN, TGT_LEN = 40, 3, 9, 7


def _model(**kw):
    return TransformerEncoderDecoder(
        vocab_size=VOCAB, embed_dim=32, num_heads=4, mlp_dim=64, dropout_rate=0.0, **kw
    )


def _inputs():
    rng = np.random.default_rng(0)
    src = rng.integers(4, VOCAB, (BATCH, SRC_LEN)).astype(np.int32)
    src[0, 6:] = 0  # padding
    tgt = rng.integers(4, VOCAB, (BATCH, TGT_LEN)).astype(np.int32)
    return jnp.asarray(src), jnp.asarray(tgt)


def _sharpened(params):
    """Scale the output layer so random models make confident, varied next-token choices."""
    params = nn.meta.unbox(params)
    return params | {"logits": jax.tree.map(lambda x: x * 8.0, params["logits"])}


@pytest.mark.parametrize("position", ["sinusoidal", "rotary"])
def test_scanned_layers_equal_unrolled_layers(position):
    src, tgt = _inputs()
    scanned = _model(position=position, scan_layers=True)
    params = scanned.init(jax.random.key(0), src, tgt)["params"]
    assert nn.meta.unbox(params)["encoder"]["attention"]["query"]["kernel"].shape[0] == 2  # [layers, ...]
    unrolled = _model(position=position)
    np.testing.assert_allclose(
        scanned.apply({"params": params}, src, tgt),
        unrolled.apply({"params": unstack_layers(params, scanned)}, src, tgt),
        rtol=1e-5,
        atol=1e-5,
    )


def test_scanned_parameters_carry_a_layers_axis_name():
    src, tgt = _inputs()
    params = _model(scan_layers=True).init(jax.random.key(0), src, tgt)["params"]
    spec = nn.get_partition_spec(params)
    assert tuple(spec["encoder"]["attention"]["query"]["kernel"]) == ("layers", "embed", "heads", "head_dim")


@pytest.mark.parametrize("remat", ["full", "dots"])
def test_remat_keeps_values_and_gradients(remat):
    src, tgt = _inputs()
    plain, rematted = _model(scan_layers=True), _model(scan_layers=True, remat=remat)
    params = plain.init(jax.random.key(0), src, tgt)["params"]
    loss = lambda model, p: jnp.sum(model.apply({"params": p}, src, tgt) ** 2)
    g_plain = jax.grad(functools.partial(loss, plain))(params)
    g_remat = jax.grad(functools.partial(loss, rematted))(params)
    for a, b in zip(jax.tree.leaves(g_plain), jax.tree.leaves(g_remat), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_padding_in_the_source_is_ignored():
    src, tgt = _inputs()
    model = _model()
    params = model.init(jax.random.key(0), src, tgt)["params"]
    changed = src.at[0, 6:].set(0).at[0, 7].set(0)  # padding stays padding
    extended = jnp.concatenate([src, jnp.zeros((BATCH, 4), jnp.int32)], axis=1)  # more padding
    base = model.apply({"params": params}, src, tgt)
    np.testing.assert_allclose(base, model.apply({"params": params}, changed, tgt), atol=1e-5)
    np.testing.assert_allclose(base, model.apply({"params": params}, extended, tgt), atol=1e-5)


@pytest.mark.parametrize("kw", [{}, {"position": "rotary", "scan_layers": True}, {"num_kv_heads": 1}])
def test_cached_step_logits_equal_the_teacher_forced_forward(kw):
    src, tgt = _inputs()
    model = _model(**kw)
    params = model.init(jax.random.key(0), src, tgt)["params"]
    full = model.apply({"params": params}, src, tgt)  # [batch, tgt_len, vocab]
    step, state = decoding_state(model, params, src, TGT_LEN)
    for t in range(TGT_LEN):
        logits, state = step(tgt[:, t], state)
        np.testing.assert_allclose(logits, full[:, t], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kw", [{}, {"position": "rotary", "scan_layers": True}])
def test_cached_decoding_gives_the_tokens_of_recomputing_the_prefix(kw):
    src, tgt = _inputs()
    model = _model(tie_output=False, **kw)  # tied, a random model repeats its input token
    params = _sharpened(model.init(jax.random.key(1), src, tgt)["params"])
    max_len, common = 10, dict(batch_size=BATCH, bos_id=2, eos_id=3)

    @functools.partial(jax.jit, static_argnames="cached")
    def run(params, src, cached):
        step, state = decoding_state(model, params, src, max_len, cached=cached)
        greedy = decoding.greedy_decode(step, state, max_len=max_len, **common)
        beams, scores = decoding.beam_search(step, state, beam_size=3, max_len=max_len, **common)
        return greedy, beams, scores

    greedy, beams, scores = run(params, src, True)
    greedy_ref, beams_ref, scores_ref = run(params, src, False)
    assert len(np.unique(np.asarray(greedy))) > 3  # a non-trivial output to compare
    np.testing.assert_array_equal(greedy, greedy_ref)
    np.testing.assert_array_equal(beams, beams_ref)
    np.testing.assert_allclose(scores, scores_ref, rtol=1e-4)


@pytest.mark.parametrize("kw", [{}, {"num_kv_heads": 1, "scan_layers": True}])
def test_the_cached_state_holds_the_projected_source(kw):
    src, tgt = _inputs()
    model = _model(**kw)
    params = model.init(jax.random.key(0), src, tgt)["params"]
    _, state = decoding_state(model, params, src, TGT_LEN)
    memory = model.apply({"params": params}, src, method=model.encode)  # [batch, src_len, embed]
    assert "memory" not in state  # a step never reads the encoder output
    kv_heads, head_dim = kw.get("num_kv_heads", 4), 32 // 4
    for i in range(2):
        cache = state["cache"][f"decoder_{i}"]["cross_attention"]
        weights = unstack_layers(params, model)[f"decoder_{i}"]["cross_attention"]
        for cached, dense in (("cached_key", "key"), ("cached_value", "value")):
            assert cache[cached].shape == (BATCH, SRC_LEN, kv_heads, head_dim)
            expected = jnp.einsum("bse,ehd->bshd", memory, weights[dense]["kernel"]) + weights[dense]["bias"]
            np.testing.assert_allclose(cache[cached], expected, rtol=1e-5, atol=1e-5)


def _cached_step_flops(model, params, src):
    """XLA's FLOP count of one compiled cached decoding step for ``src [batch, src_len]``."""
    step, state = decoding_state(model, params, src, TGT_LEN)
    tokens = jnp.full((src.shape[0],), 2, jnp.int32)
    cost = jax.jit(step).lower(tokens, state).compile().cost_analysis()
    return (cost[0] if isinstance(cost, list) else cost)["flops"]


def test_a_cached_step_does_not_project_the_source():
    """Each extra source token costs a step its attention (about 4 * embed FLOPs per layer and row), not
    its key/value projection (4 * embed**2), which ``decoding_state`` pays once per source."""
    src, tgt = _inputs()
    extra, embed, layers = 32, 32, 2
    longer = jnp.concatenate([src, jnp.full((BATCH, extra), 5, jnp.int32)], axis=1)
    model = _model()
    params = model.init(jax.random.key(0), src, tgt)["params"]
    growth = _cached_step_flops(model, params, longer) - _cached_step_flops(model, params, src)
    projection = BATCH * extra * layers * 4 * embed**2  # what projecting the extra tokens would add
    assert 0 < growth < projection / 4, (growth, projection)
