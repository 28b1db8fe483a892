"""Pointer-generator with coverage (See et al., 2017): extended vocabulary, copying OOVs, decoding."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from attn_jax.models.pointer_generator import PointerGeneratorModel
from tests.fast_compile import fast_jit

VOCAB, MAX_OOVS, UNK, BOS, EOS = 10, 4, 1, 2, 3
TINY = dict(embed_dim=16, hidden_dim=16, attention_units=16)


def make_model(**overrides) -> PointerGeneratorModel:
    return PointerGeneratorModel(vocab_size=VOCAB, max_oovs=MAX_OOVS, **{**TINY, **overrides})


def random_params(model, *args) -> dict:
    """Parameters of ``model.init``'s shapes drawn with numpy (normal, std ``1 / sqrt(shape[0])``).

    Flax's own initialisers (orthogonal, truncated normal) take long to compile on CPU; the structure
    and shapes still come from ``model.init`` (traced by ``jax.eval_shape``, not compiled).
    """
    shapes = jax.eval_shape(model.init, jax.random.key(0), *args)["params"]
    rs = np.random.RandomState(0)
    draw = lambda s: rs.normal(0.0, s.shape[0] ** -0.5 if s.shape else 0.0, s.shape).astype(np.float32)
    return jax.tree_util.tree_map(draw, nn.meta.unbox(shapes))


def extend(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Word ids of an open vocabulary (0 = pad, >= VOCAB = unknown word) -> (src, src_ext).

    ``src`` maps unknown words to UNK; ``src_ext`` numbers each example's distinct unknown words
    VOCAB, VOCAB + 1, ... in order of first appearance.
    """
    src, src_ext = words.copy(), words.copy()
    for row, sentence in enumerate(words):
        oovs: dict[int, int] = {}
        for col, word in enumerate(sentence):
            if word >= VOCAB:
                src[row, col] = UNK
                src_ext[row, col] = VOCAB + oovs.setdefault(int(word), len(oovs))
    return src, src_ext


def decode_steps(model, variables, src, src_ext, tokens) -> jax.Array:
    """``decode_step`` fed ``tokens [batch, T]`` one at a time: ``[batch, T, extended vocab]``."""
    memory = model.apply(variables, src, src_ext, method=model.encode)
    cache = model.apply(variables, memory, method=model.init_cache)

    def one(cache, token):
        log_probs, cache = model.apply(variables, token, cache, method=model.decode_step)
        return cache, log_probs

    _, log_probs = jax.lax.scan(one, cache, jnp.swapaxes(tokens, 0, 1))
    return jnp.swapaxes(log_probs, 0, 1)


def test_extended_distribution_coverage_and_step_by_step():
    rs = np.random.RandomState(0)
    words = rs.randint(4, VOCAB + 6, (3, 6))
    words[1, 4:] = 0
    src, src_ext = extend(words)
    tgt_in = np.concatenate([np.full((3, 1), BOS), rs.randint(4, VOCAB + 3, (3, 4))], axis=1)  # some >= VOCAB
    as_unk = np.where(tgt_in >= VOCAB, UNK, tgt_in)
    model, plain = make_model(), make_model(copy=False)
    params = random_params(model, src, src_ext, tgt_in)
    plain_params = random_params(plain, src, src_ext, tgt_in)
    assert "pointer" in params["decoder"] and "pointer" not in plain_params["decoder"]

    @fast_jit
    def run(params, plain_params):
        variables = {"params": params}
        return dict(
            forward=model.apply(variables, src, src_ext, tgt_in),
            forward_unk=model.apply(variables, src, src_ext, as_unk)[0],
            # The fed-back extended ids are mapped to UNK inside decode_step.
            stepped=decode_steps(model, variables, src, src_ext, tgt_in),
            plain=plain.apply({"params": plain_params}, src, src_ext, tgt_in),
        )

    out = jax.device_get(run(params, plain_params))
    log_probs, aux = out["forward"]
    assert log_probs.shape == (3, 5, VOCAB + MAX_OOVS) and log_probs.dtype == np.float32
    np.testing.assert_allclose(np.exp(log_probs).sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(out["stepped"], log_probs, atol=2e-5, rtol=1e-5)
    np.testing.assert_allclose(out["forward_unk"], log_probs, atol=1e-6)
    assert aux["coverage_loss"].shape == (3, 5) and aux["p_gen"].shape == (3, 5)
    assert np.all(np.isfinite(aux["coverage_loss"])) and np.all(aux["coverage_loss"] >= 0)
    np.testing.assert_allclose(aux["coverage_loss"][:, 0], 0.0, atol=1e-7)  # nothing covered yet
    assert np.all(aux["coverage_loss"][:, 1:] > 0)
    assert np.all((aux["p_gen"] > 0) & (aux["p_gen"] < 1))
    # Source OOVs get probability by copying; extended slots no example uses get (about) none.
    probs = np.exp(log_probs)
    for row in range(3):
        used = set(src_ext[row][src_ext[row] >= VOCAB].tolist())
        assert used
        for slot in range(VOCAB, VOCAB + MAX_OOVS):
            if slot in used:
                assert np.all(probs[row, :, slot] > 1e-3)
            else:
                assert np.all(probs[row, :, slot] < 1e-8)
    # Without the pointer: p_gen = 1 and no mass on the extended slots.
    plain_log_probs, plain_aux = out["plain"]
    np.testing.assert_allclose(plain_aux["p_gen"], 1.0)
    assert np.all(np.exp(plain_log_probs[..., VOCAB:]) < 1e-8)
    np.testing.assert_allclose(np.exp(plain_log_probs).sum(-1), 1.0, atol=1e-5)


def test_coverage_switch_changes_only_the_attention_input():
    rs = np.random.RandomState(1)
    src, src_ext = extend(rs.randint(4, VOCAB + 4, (2, 5)))
    tgt_in = np.concatenate([np.full((2, 1), BOS), rs.randint(4, VOCAB, (2, 3))], axis=1)
    with_cov, without_cov = make_model(), make_model(coverage=False)
    params = random_params(with_cov, src, src_ext, tgt_in)
    run = fast_jit(
        lambda p: [m.apply({"params": p}, src, src_ext, tgt_in)[0] for m in (with_cov, without_cov)]
    )
    a, b = run(params)
    np.testing.assert_allclose(a[:, 0], b[:, 0], atol=1e-6)  # coverage is zero at the first step
    assert not np.allclose(a[:, 1:], b[:, 1:], atol=1e-4)


def copy_first_batches(rs: np.random.RandomState, steps: int, batch: int, length: int = 5):
    """Task: output the first source word, then EOS. Words are drawn from 4..VOCAB+19, mostly OOV.

    Returns ``src, src_ext, tgt_in, tgt`` stacked ``[steps, batch, ...]``.
    """
    words = rs.randint(4, VOCAB + 20, (steps * batch, length))
    src, src_ext = extend(words)
    tgt = np.stack([src_ext[:, 0], np.full(len(words), EOS)], axis=1)  # extended ids
    tgt_in = np.stack([np.full(len(words), BOS), src[:, 0]], axis=1)  # in-vocabulary ids
    return tuple(x.reshape(steps, batch, -1) for x in (src, src_ext, tgt_in, tgt))


@pytest.mark.parametrize("copy", [True, False])
def test_copies_out_of_vocabulary_words(copy):
    """Copying the first source word, mostly an OOV, is learnt only with the pointer."""
    model = make_model(copy=copy)
    batches = copy_first_batches(np.random.RandomState(0), 150, 32)
    params = random_params(model, *(x[0] for x in batches[:3]))
    test_src, test_ext, test_in, test_tgt = (
        x[0] for x in copy_first_batches(np.random.RandomState(7), 1, 300)
    )
    tx = optax.adam(0.02)

    def train_step(carry, batch):
        params, opt_state = carry
        src, src_ext, tgt_in, tgt = batch

        def loss_fn(params):
            log_probs, aux = model.apply({"params": params}, src, src_ext, tgt_in)
            nll = -jnp.mean(jnp.take_along_axis(log_probs, tgt[..., None], axis=-1))
            return nll + 0.1 * jnp.mean(aux["coverage_loss"])

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    @fast_jit
    def run(params):
        (params, _), losses = jax.lax.scan(train_step, (params, tx.init(params)), batches)
        # Greedy decoding, feeding back the extended ids (mapped to UNK inside decode_step).
        variables = {"params": params}
        memory = model.apply(variables, test_src, test_ext, method=model.encode)
        cache = model.apply(variables, memory, method=model.init_cache)
        tokens, predictions = jnp.asarray(test_in[:, 0]), []
        for _ in range(2):
            log_probs, cache = model.apply(variables, tokens, cache, method=model.decode_step)
            tokens = jnp.argmax(log_probs, -1)
            predictions.append(tokens)
        return losses, jnp.stack(predictions, 1)

    losses, predictions = jax.device_get(run(params))
    assert np.all(np.isfinite(losses))
    oov = test_tgt[:, 0] >= VOCAB
    assert oov.mean() > 0.5
    first_oov_accuracy = np.mean(predictions[oov, 0] == test_tgt[oov, 0])
    first_in_vocab_accuracy = np.mean(predictions[~oov, 0] == test_tgt[~oov, 0])
    assert first_in_vocab_accuracy > 0.9, first_in_vocab_accuracy  # both learn the task's in-vocab part
    if copy:
        assert first_oov_accuracy > 0.9, first_oov_accuracy
        assert np.mean(predictions == test_tgt) > 0.9
    else:  # the plain model can at best say UNK
        assert np.all(predictions < VOCAB) and first_oov_accuracy == 0.0
