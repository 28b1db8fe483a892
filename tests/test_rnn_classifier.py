"""BiLSTMClassifier: shapes, padding invariance, attention weights, learning a toy task, jit + bfloat16."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from attn_jax.models.rnn_classifier import BiLSTMClassifier, sequence_lengths

VOCAB, MARKER = 16, 3


def _model(**kwargs) -> BiLSTMClassifier:
    """One size for every test, so that the (slow to compile) init runs once, in ``variables``."""
    defaults = dict(vocab_size=VOCAB, num_classes=2, embed_dim=16, hidden_dim=16, attention_units=16)
    return BiLSTMClassifier(**{**defaults, **kwargs})


def _tokens() -> jnp.ndarray:
    return jnp.array([[5, 6, 7, 0, 0, 0], [1, 2, 3, 4, 5, 6], [9, 0, 0, 0, 0, 0]], jnp.int32)


@pytest.fixture(scope="module")
def variables():
    """Parameters shared by all tests (dtype, dropout and sow_weights do not change them)."""
    return jax.jit(_model().init)(jax.random.key(0), _tokens())


def test_shapes_params_and_partitioning(variables):
    model = _model()
    logits = jax.jit(model.apply)(variables, _tokens())
    assert logits.shape == (3, 2) and logits.dtype == jnp.float32
    params = variables["params"]
    assert params["embed"]["embedding"].names == ("vocab", "embed")
    assert set(params["encoder"]) == {"forward_rnn", "backward_rnn"}
    assert params["query"].shape == (32,)  # 2 * hidden_dim, the learned "decoder state"
    assert params["pool"]["memory_proj"]["kernel"].shape == (32, 16)
    assert params["head"]["kernel"].shape == (32, 2)


def test_sequence_lengths():
    valid = np.array([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0], [1, 0, 1, 0]], bool)
    np.testing.assert_array_equal(sequence_lengths(jnp.asarray(valid)), [2, 4, 0, 3])


def test_padding_invariance(variables):
    apply = jax.jit(_model().apply)
    tokens = _tokens()
    logits = apply(variables, tokens)
    padded = jnp.pad(tokens, ((0, 0), (0, 7)))
    np.testing.assert_allclose(apply(variables, padded), logits, atol=1e-5, rtol=0)
    # The rows are independent too: a longer neighbour does not change a short sequence.
    np.testing.assert_allclose(apply(variables, tokens[2:, :1]), logits[2:], atol=1e-5, rtol=0)


def test_attention_weights_zero_on_padding_and_sum_to_one(variables):
    model = _model(sow_weights=True)
    tokens = _tokens()
    _, state = jax.jit(lambda v, t: model.apply(v, t, mutable=["intermediates"]))(variables, tokens)
    (weights,) = state["intermediates"]["pool"]["attention_weights"]
    assert weights.shape == tokens.shape and weights.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(weights)[np.asarray(tokens) == 0], 0.0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)


def test_dropout_changes_outputs_only_in_training(variables):
    model = _model(dropout_rate=0.5)
    train = jax.jit(lambda v, t, k: model.apply(v, t, deterministic=False, rngs={"dropout": k}))
    a = train(variables, _tokens(), jax.random.key(0))
    b = train(variables, _tokens(), jax.random.key(1))
    assert not np.allclose(a, b)


def test_jit_bfloat16(variables):
    model = _model(dtype=jnp.bfloat16, sow_weights=True)
    tokens = _tokens()
    apply = jax.jit(lambda v, t: model.apply(v, t, mutable=["intermediates"]))
    logits, state = apply(variables, tokens)
    assert logits.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(logits)))
    (weights,) = state["intermediates"]["pool"]["attention_weights"]
    assert weights.dtype == jnp.float32
    reference = jax.jit(_model().apply)(variables, tokens)
    np.testing.assert_allclose(logits, reference, atol=0.05)


def _marker_batch(rng: np.random.Generator, batch: int, max_len: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Random right-padded sequences over tokens != MARKER; label 1 (half of them) puts MARKER somewhere."""
    lengths = rng.integers(3, max_len + 1, size=batch)
    ids = rng.integers(1, VOCAB - 1, size=(batch, max_len))
    ids = np.where(ids >= MARKER, ids + 1, ids)  # 1..VOCAB-1 without MARKER
    labels = rng.integers(0, 2, size=batch)
    where = (rng.random(batch) * lengths).astype(int)
    ids[np.arange(batch)[labels == 1], where[labels == 1]] = MARKER
    ids[np.arange(max_len)[None, :] >= lengths[:, None]] = 0
    return ids.astype(np.int32), labels.astype(np.int32)


def test_learns_marker_detection(variables):
    """Label = whether MARKER occurs anywhere: attention has to find it at any position."""
    model = _model(dropout_rate=0.0)
    rng = np.random.default_rng(0)
    params = nn.meta.unbox(variables["params"])
    optimizer = optax.adam(1e-2)
    opt_state = optimizer.init(params)

    @jax.jit
    def step(params, opt_state, tokens, labels):
        def loss_fn(p):
            logits = model.apply({"params": p}, tokens)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    for _ in range(300):
        params, opt_state, _ = step(params, opt_state, *_marker_batch(rng, 32))

    tokens, labels = _marker_batch(np.random.default_rng(123), 1000)
    predictions = jnp.argmax(jax.jit(model.apply)({"params": params}, tokens), -1)
    accuracy = float(jnp.mean(predictions == labels))
    assert accuracy > 0.9, accuracy
