"""Pointer-generator (See et al., 2017) against a plain-numpy reference, plus the extended vocabulary."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attn_jax.attention.normalizers import softmax
from attn_jax.attention.pointer import (
    DEFAULT_FLOOR,
    copy_distribution,
    mix_copy_and_generate,
    pad_vocab,
)
from attn_jax.layers.pointer import PointerGenerator

VOCAB, SRC, D_C, D_S, D_X = 7, 5, 4, 3, 2


def _inputs(seed: int, batch: tuple[int, ...] = (3,), ext: int = VOCAB + 3):
    rng = np.random.default_rng(seed)
    f32 = np.float32
    logits = rng.normal(size=(*batch, SRC)).astype(f32)
    return dict(
        vocab_logits=(2 * rng.normal(size=(*batch, VOCAB))).astype(f32),
        attention_weights=np.asarray(jax.nn.softmax(logits)),
        context=rng.normal(size=(*batch, D_C)).astype(f32),
        decoder_state=rng.normal(size=(*batch, D_S)).astype(f32),
        decoder_input=rng.normal(size=(*batch, D_X)).astype(f32),
        source_ids=rng.integers(0, ext, size=(*batch, SRC)),
        extended_vocab_size=ext,
    )


def _init(inputs: dict, **kwargs) -> tuple[PointerGenerator, dict]:
    module = PointerGenerator(**kwargs)
    return module, module.init(jax.random.key(0), **inputs)


def _reference(params: dict, x: dict, source_mask: np.ndarray | None = None):
    """See et al. (2017), eqs. 8-9, written literally for a [batch] of decoder steps."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), params["params"])
    logit = (
        x["context"] @ p["w_h"]["kernel"][:, 0]
        + x["decoder_state"] @ p["w_s"]["kernel"][:, 0]
        + x["decoder_input"] @ p["w_x"]["kernel"][:, 0]
        + p["b_ptr"]
    )
    p_gen = 1.0 / (1.0 + np.exp(-logit))  # [batch]
    z = np.asarray(x["vocab_logits"], np.float64)
    p_vocab = np.exp(z - z.max(-1, keepdims=True))
    p_vocab /= p_vocab.sum(-1, keepdims=True)
    batch = z.shape[0]
    final = np.zeros((batch, x["extended_vocab_size"]))
    final[:, :VOCAB] = p_gen[:, None] * p_vocab
    for b in range(batch):
        for i, w in enumerate(x["source_ids"][b]):
            if source_mask is None or source_mask[b, i]:
                final[b, w] += (1.0 - p_gen[b]) * x["attention_weights"][b, i]
    return final, p_gen


def test_module_matches_numpy_reference():
    x = _inputs(0)
    mask = np.arange(SRC)[None, :] < np.array([[5], [3], [1]])
    x["attention_weights"] = np.asarray(softmax(np.log(x["attention_weights"]), mask))
    module, params = _init(x, sow_weights=True)
    (log_probs, p_gen), state = module.apply(
        params, **x, source_mask=mask, mutable=["intermediates"]
    )
    ref, ref_p_gen = _reference(params, x, mask)
    assert log_probs.shape == (3, VOCAB + 3) and log_probs.dtype == jnp.float32
    assert p_gen.shape == (3,) and p_gen.dtype == jnp.float32
    np.testing.assert_allclose(p_gen, ref_p_gen, rtol=1e-5)
    np.testing.assert_allclose(state["intermediates"]["p_gen"][0], p_gen)
    np.testing.assert_allclose(np.exp(log_probs), ref + DEFAULT_FLOOR, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, rtol=1e-5)


def test_oov_word_gets_copy_probability_and_repeats_accumulate():
    x = _inputs(1, batch=(1,), ext=VOCAB + 3)
    oov, unused_oov = VOCAB + 1, VOCAB + 2
    x["source_ids"] = np.array([[2, oov, 4, oov, 2]])
    x["attention_weights"] = np.array([[0.1, 0.2, 0.15, 0.25, 0.3]], np.float32)
    module, params = _init(x)
    log_probs, p_gen = module.apply(params, **x)
    probs, g = np.exp(np.asarray(log_probs[0], np.float64)) - DEFAULT_FLOOR, float(p_gen[0])
    p_vocab = np.asarray(jax.nn.softmax(x["vocab_logits"][0]))
    np.testing.assert_allclose(probs[oov], (1 - g) * (0.2 + 0.25), rtol=1e-5)
    np.testing.assert_allclose(probs[2], g * p_vocab[2] + (1 - g) * (0.1 + 0.3), rtol=1e-5)
    np.testing.assert_allclose(probs[4], g * p_vocab[4] + (1 - g) * 0.15, rtol=1e-5)
    np.testing.assert_allclose(probs[0], g * p_vocab[0], rtol=1e-5)
    assert abs(probs[unused_oov]) < 1e-9 and np.isfinite(log_probs[0, unused_oov])


def test_copy_distribution_scatter_add_mask_and_batch_dims():
    weights = np.array([[[0.5, 0.25, 0.25], [0.2, 0.3, 0.5]]] * 2, np.float32)  # [2, 2, 3]
    ids = np.array([[[1, 1, 4], [0, -1, 9]]] * 2)  # -1 and 9 lie outside the extended vocab
    mask = np.array([[[True, True, True], [True, True, True]], [[True, False, True]] * 2])
    out = copy_distribution(weights, ids, 6, mask)
    assert out.shape == (2, 2, 6) and out.dtype == jnp.float32
    np.testing.assert_allclose(out[0, 0], [0, 0.75, 0, 0, 0.25, 0])
    np.testing.assert_allclose(out[0, 1], [0.2, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(out[1, 0], [0, 0.5, 0, 0, 0.25, 0])  # masked position adds nothing
    with pytest.raises(ValueError, match="same shape"):
        copy_distribution(weights, ids[..., :2], 6)


def test_mix_and_pad_vocab():
    vocab_probs = np.array([[0.5, 0.5], [1.0, 0.0]], np.float32)
    copy = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]], np.float32)
    log_probs = mix_copy_and_generate(vocab_probs, copy, np.array([0.25, 1.0]))
    assert np.all(np.isfinite(log_probs))
    np.testing.assert_allclose(np.exp(log_probs) - DEFAULT_FLOOR, [[0.125, 0.125, 0.75], [1, 0, 0]],
                               atol=1e-7)
    np.testing.assert_array_equal(pad_vocab(np.ones((2, 2)), 4, -1.0), [[1, 1, -1, -1]] * 2)
    with pytest.raises(ValueError, match="extended_vocab_size"):
        pad_vocab(np.ones((2, 2)), 1, 0.0)


def test_copy_off_is_plain_vocabulary_softmax():
    x = _inputs(2)
    module, params = _init(x, copy=False, sow_weights=True)
    assert jax.tree.leaves(params.get("params", {})) == []
    (log_probs, p_gen), state = module.apply(params, **x, mutable=["intermediates"])
    np.testing.assert_allclose(
        log_probs[:, :VOCAB], jax.nn.log_softmax(x["vocab_logits"]), rtol=1e-6, atol=1e-6
    )
    assert np.all(np.exp(log_probs[:, VOCAB:]) < 1e-9)
    assert np.all(np.isfinite(log_probs))
    np.testing.assert_array_equal(p_gen, 1.0)
    np.testing.assert_array_equal(state["intermediates"]["p_gen"][0], 1.0)


@pytest.mark.parametrize("copy", [True, False])
def test_gradients_are_finite(copy: bool):
    x = _inputs(3)
    module, params = _init(x, copy=copy)
    ext = x.pop("extended_vocab_size")
    targets = np.array([0, VOCAB + 2, VOCAB + 1])  # includes source OOVs, possibly never copied
    mask = np.array([[True] * SRC, [True, True, False, False, False], [False] * SRC])

    def loss(p, inputs):
        log_probs, _ = module.apply(p, **inputs, extended_vocab_size=ext, source_mask=mask)
        return -jnp.take_along_axis(log_probs, targets[:, None], axis=-1).sum()

    floats = {k: v for k, v in x.items() if k != "source_ids"}
    grad_fn = jax.jit(jax.grad(lambda p, f: loss(p, {**f, "source_ids": x["source_ids"]}), (0, 1)))
    grads = grad_fn(params, floats)
    leaves = jax.tree.leaves(grads)
    assert leaves and all(np.all(np.isfinite(g)) for g in leaves)


_EXT = VOCAB + 4
_MODULE, _PARAMS = _init(_inputs(0, batch=(2,), ext=_EXT))
_APPLY = jax.jit(_MODULE.apply, static_argnames="extended_vocab_size")


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), n_valid=st.integers(1, SRC), scale=st.floats(0.0, 20.0))
def test_final_distribution_sums_to_one(seed: int, n_valid: int, scale: float):
    x = _inputs(seed, batch=(2,), ext=_EXT)
    x["vocab_logits"] = x["vocab_logits"] * np.float32(scale)
    mask = np.arange(SRC)[None, :] < np.array([[SRC], [n_valid]])
    logits = np.random.default_rng(seed + 1).normal(size=(2, SRC)) * scale
    x["attention_weights"] = np.asarray(softmax(logits, mask))
    log_probs, p_gen = _APPLY(_PARAMS, **x, source_mask=mask)
    assert np.all(np.isfinite(log_probs)) and np.all((p_gen >= 0) & (p_gen <= 1))
    np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, rtol=1e-5, atol=_EXT * DEFAULT_FLOOR)
    ref, _ = _reference(_PARAMS, x, mask)
    np.testing.assert_allclose(np.exp(log_probs), ref + DEFAULT_FLOOR, rtol=1e-4, atol=1e-6)


def test_jit_bfloat16_and_extra_batch_dims():
    x = _inputs(4, batch=(2, 3))
    module, params = _init(x, sow_weights=True)
    ext = x.pop("extended_vocab_size")
    apply = jax.jit(
        functools.partial(module.apply, extended_vocab_size=ext, mutable=["intermediates"])
    )
    (lp32, pg32), _ = apply(params, **x)
    # Attention weights stay float32, as every normaliser returns them; the activations are bfloat16.
    keep = ("source_ids", "attention_weights")
    x16 = {k: (v if k in keep else jnp.asarray(v, jnp.bfloat16)) for k, v in x.items()}
    (lp16, pg16), state = apply(params, **x16)
    assert lp16.shape == (2, 3, ext) and lp16.dtype == jnp.float32 and pg16.shape == (2, 3)
    assert state["intermediates"]["p_gen"][0].shape == (2, 3)
    assert np.all(np.isfinite(lp16))
    np.testing.assert_allclose(np.exp(lp16).sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(pg16, pg32, atol=3e-2)
    np.testing.assert_allclose(np.exp(lp16), np.exp(lp32), atol=3e-2)


def test_extended_vocab_smaller_than_vocab_is_an_error():
    x = _inputs(5, ext=VOCAB - 1)
    x["source_ids"] = np.zeros_like(x["source_ids"])
    with pytest.raises(ValueError, match="extended_vocab_size"):
        _init(x)
