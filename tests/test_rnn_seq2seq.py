"""RNN encoder-decoder with every classic attention: shapes, training, decoding protocol, REINFORCE."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from attn_jax.models.rnn_seq2seq import ATTENTIONS, RNNSeq2Seq, hard_attention_loss
from tests.fast_compile import fast_jit

VOCAB, BATCH, SRC_LEN, TGT_LEN, EXTRA_PAD = 11, 3, 6, 5, 3
TINY = dict(
    embed_dim=8, hidden_dim=8, attention_units=8, window=2, location_filters=2, location_filter_width=3
)
# Every attention is checked with both cells and trained with one of them, alternating (a training step
# is by far the slowest program to compile, and the cell only enters through the RNNs). These short runs
# train the decoder, where the attention is; the tests of hard attention below train the whole model.
TRAINED_CELL = {attention: ("lstm", "gru")[i % 2] for i, attention in enumerate(ATTENTIONS)}


def make_model(attention: str, cell: str = "lstm", **overrides) -> RNNSeq2Seq:
    return RNNSeq2Seq(vocab_size=VOCAB, cell=cell, attention=attention, **{**TINY, **overrides})


def random_batch(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right-padded source / BOS-shifted target / target (id 1 = BOS, 0 = pad)."""
    rs = np.random.RandomState(seed)
    src = rs.randint(2, VOCAB, (BATCH, SRC_LEN))
    src[1, 4:] = 0
    src[2, 2:] = 0
    tgt = rs.randint(2, VOCAB, (BATCH, TGT_LEN))
    tgt[2, 3:] = 0
    tgt_in = np.concatenate([np.ones((BATCH, 1), int), tgt[:, :-1]], axis=1)
    return src, tgt_in, tgt


def random_params(model, *args) -> dict:
    """Parameters of ``model.init``'s shapes drawn with numpy (normal, std ``1 / sqrt(shape[0])``).

    Flax's own initialisers (orthogonal, truncated normal) take long to compile on CPU; the structure
    and shapes still come from ``model.init`` (traced by ``jax.eval_shape``, not compiled).
    """
    shapes = jax.eval_shape(model.init, jax.random.key(0), *args)["params"]
    rs = np.random.RandomState(0)
    draw = lambda s: rs.normal(0.0, s.shape[0] ** -0.5 if s.shape else 0.0, s.shape).astype(np.float32)
    return jax.tree_util.tree_map(draw, nn.meta.unbox(shapes))


def token_nll(logits: jax.Array, tgt: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Mean NLL over real target tokens, with the per-token log-likelihood and the mask."""
    mask = tgt != 0
    ll = -optax.softmax_cross_entropy_with_integer_labels(logits, tgt)  # [batch, T]
    return -jnp.sum(ll * mask) / jnp.sum(mask), ll, mask


def step_by_step(model, variables, tokens: jax.Array, cache) -> tuple[jax.Array, dict]:
    """``decode_step`` over ``tokens [batch, T]`` with ``lax.scan``: ``(logits [batch, T, vocab], cache)``."""

    def one(cache, token):
        logits, cache = model.apply(variables, token, cache, method=model.decode_step)
        return cache, logits

    cache, logits = jax.lax.scan(one, cache, jnp.swapaxes(tokens, 0, 1))
    return jnp.swapaxes(logits, 0, 1), cache


def teacher_forced(model, params, src, tgt_in, key, *, deterministic) -> dict:
    """Logits, aux and sown attention weights of one teacher-forced pass."""
    (logits, aux), state = model.apply(
        {"params": params},
        src,
        tgt_in,
        deterministic=deterministic,
        rngs={"attention": key},
        mutable=["intermediates"],
    )
    weights = state.get("intermediates", {}).get("attention_weights", [None])[0]
    return {"logits": logits, "aux": aux, "weights": weights}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_attention_choice(attention, cell):
    """Shapes, aux, sown weights, padding, step-by-step decoding, memory use and training, in one jit."""
    model = make_model(attention, cell, sow_weights=True)
    src, tgt_in, tgt = random_batch()
    padded = np.pad(src, ((0, 0), (0, EXTRA_PAD)))  # teacher forcing sees extra padding: no change
    params = random_params(model, src, tgt_in)
    train = cell == TRAINED_CELL[attention]
    tx = optax.adam(0.05)

    def train_step(frozen, carry, key):
        """One adam step on the decoder's parameters (``frozen``: the others)."""
        decoder, opt_state, baseline = carry

        def loss_fn(decoder):
            params = {**frozen, "decoder": decoder}
            out = teacher_forced(model, params, padded, tgt_in, key, deterministic=False)
            loss, ll, mask = token_nll(out["logits"], tgt)
            total, new_baseline = loss, baseline
            if attention == "hard":
                term, new_baseline, _ = hard_attention_loss(
                    ll, out["aux"]["attention_log_prob"], mask, baseline
                )
                total = loss + term
            return total, (loss, new_baseline, out)

        grads, (loss, baseline, out) = jax.grad(loss_fn, has_aux=True)(decoder)
        updates, opt_state = tx.update(grads, opt_state, decoder)
        return (optax.apply_updates(decoder, updates), opt_state, baseline), (loss, out)

    @fast_jit
    def check(params):
        result = {}
        if train:
            init = (params["decoder"], tx.init(params["decoder"]), jnp.float32(-10.0))
            keys = jax.random.split(jax.random.key(2), 12)
            step = functools.partial(train_step, params)
            _, (result["losses"], outs) = jax.lax.scan(step, init, keys)
            first = jax.tree_util.tree_map(lambda x: x[0], outs)  # the pass at the initial params
        if attention == "hard" or not train:  # (training samples hard attention: not deterministic)
            first = teacher_forced(model, params, padded, tgt_in, jax.random.key(0), deterministic=True)
        result.update(first)
        variables = {"params": params}
        memory = model.apply(variables, src, method=model.encode)
        cache = model.apply(variables, memory, method=model.init_cache)
        # Decode the batch twice at once: as is, and with the memory rows reversed.
        noisy = {**cache, "source": {**cache["source"], "memory": jnp.flip(cache["source"]["memory"], 1)}}
        both = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), cache, noisy)
        stepped, _ = step_by_step(model, variables, jnp.concatenate([tgt_in, tgt_in]), both)
        result["stepped"], result["noisy"] = stepped[:BATCH], stepped[BATCH:]
        if attention == "hard":  # samples drawn with two keys of the 'attention' stream
            result["sampled"] = [
                teacher_forced(model, params, src, tgt_in, jax.random.key(k), deterministic=False)["aux"]
                for k in (1, 2)
            ]
        return result

    out = jax.device_get(check(params))
    logits, aux, weights = out["logits"], out["aux"], out["weights"]
    assert logits.shape == (BATCH, TGT_LEN, VOCAB) and logits.dtype == jnp.float32
    assert np.all(np.isfinite(logits))
    # Teacher forcing (nn.scan, padded source) and decode_step share one step: the same logits.
    np.testing.assert_allclose(out["stepped"], logits, atol=2e-5, rtol=1e-5)
    # Reordering the memory matters exactly when there is attention.
    assert np.allclose(out["noisy"], logits, atol=1e-6) == (attention == "none")

    expected_aux = {"hard": {"attention_log_prob", "attention_entropy"}, "coverage": {"coverage_loss"}}
    assert set(aux) == expected_aux.get(attention, set())
    for value in aux.values():
        assert value.shape == (BATCH, TGT_LEN) and np.all(np.isfinite(value))
    if attention == "coverage":  # sum_i min(a_i, c_i) is in [0, 1]; nothing is covered at the first step
        assert np.all(aux["coverage_loss"] >= 0) and np.all(aux["coverage_loss"] <= 1 + 1e-5)
        np.testing.assert_allclose(aux["coverage_loss"][:, 0], 0.0, atol=1e-7)
        assert np.all(aux["coverage_loss"][:, 1:] > 0)
    if attention == "hard":
        a, c = (sampled["attention_log_prob"] for sampled in out["sampled"])
        assert not np.allclose(a, c)
        assert np.all(a <= 0) and np.all(aux["attention_log_prob"] <= 0)
        # The argmax position (deterministic) is at least as likely as any sample.
        assert np.all(aux["attention_log_prob"][:, 0] >= np.maximum(a, c)[:, 0] - 1e-6)

    if attention == "none":
        assert weights is None
    else:
        assert weights.shape == (BATCH, TGT_LEN, SRC_LEN + EXTRA_PAD)
        assert np.all(np.where((padded == 0)[:, None, :], weights, 0.0) == 0)  # no weight on padding
        sums = weights.sum(-1)
        if attention == "local_p":  # the Gaussian factor is not renormalised (Luong et al., 2015)
            assert np.all(sums > 0) and np.all(sums < 1)
        else:
            np.testing.assert_allclose(sums, 1.0, atol=1e-5)
        if attention == "local_m":  # window [t - 2, t + 2] around t clipped to the source
            assert np.all(weights[:, 0, 3:] == 0)  # step 0: [0, 2]
            assert np.all(weights[0, 4, :2] == 0) and weights[1, 4, 0] == 0  # step 4: [2, 6] / [1, 5]

    if train:
        losses = out["losses"]
        assert np.all(np.isfinite(losses))
        assert losses[-1] < 0.75 * losses[0], losses


def test_parameters_and_partitioning():
    src, tgt_in, _ = random_batch()
    shapes = lambda **kw: jax.eval_shape(make_model(**kw).init, jax.random.key(0), src, tgt_in)["params"]
    params = shapes(attention="none")
    assert set(params) == {"src_embed", "tgt_embed", "encoder", "decoder"}
    assert set(params["decoder"]) == {"rnn", "output"}  # no attention, no combination layer
    assert params["src_embed"]["embedding"].names == ("vocab", "embed")
    params = shapes(attention="bahdanau", src_vocab_size=20)
    assert params["src_embed"]["embedding"].value.shape == (20, 8)
    assert params["tgt_embed"]["embedding"].value.shape == (VOCAB, 8)
    assert params["decoder"]["attend"]["memory_proj"]["kernel"].shape == (8, 8)  # memory: hidden_dim
    assert params["decoder"]["combine"]["kernel"].shape == (8 + 8 + 8, 8)  # [h; c; y]
    params = shapes(attention="luong_dot")
    assert params["decoder"]["combine"]["kernel"].shape == (8 + 8, 8)  # [c; h]
    assert "attend" not in params["decoder"]  # the dot score has no parameters


def test_dropout_uses_the_dropout_stream():
    src, tgt_in, _ = random_batch()
    model = make_model("bahdanau", dropout_rate=0.3)
    params = random_params(model, src, tgt_in)

    @fast_jit
    def run(params):
        apply = lambda **kw: model.apply({"params": params}, src, tgt_in, **kw)[0]
        dropped = [apply(deterministic=False, rngs={"dropout": jax.random.key(k)}) for k in (1, 2)]
        return apply(), *dropped

    kept, a, b = run(params)
    assert np.all(np.isfinite(a)) and not np.allclose(a, b) and not np.allclose(a, kept)


def test_invalid_names_raise():
    src, tgt_in, _ = random_batch()
    with pytest.raises(ValueError, match="Unknown attention 'bahdanou'"):
        make_model("bahdanou").init(jax.random.key(0), src, tgt_in)
    with pytest.raises(ValueError, match="Unknown cell 'rnn'"):
        make_model("none", cell="rnn").init(jax.random.key(0), src, tgt_in)
    with pytest.raises(ValueError, match="even hidden_dim"):
        make_model("none", hidden_dim=7).init(jax.random.key(0), src, tgt_in)


def test_hard_attention_loss_matches_reinforce_formula():
    rs = np.random.RandomState(0)
    ll = -rs.rand(4, 3).astype(np.float32)
    mask = np.array([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1]], bool)
    entropy = rs.rand(4, 3).astype(np.float32)
    log_prob = -rs.rand(4, 3).astype(np.float32)
    baseline = -1.0
    loss = lambda log_prob, **kw: hard_attention_loss(ll, log_prob, mask, baseline, **kw)

    # Default: the sequence log-likelihood rewards every step of its sequence.
    term, new_baseline, metrics = loss(log_prob, attention_entropy=entropy, entropy_weight=0.1)
    reward = (ll * mask).sum(-1)  # [batch]
    expected = -np.sum((reward - baseline) * (log_prob * mask).sum(-1)) / mask.sum()
    expected -= 0.1 * (entropy * mask).sum() / mask.sum()
    np.testing.assert_allclose(term, expected, rtol=1e-5)
    np.testing.assert_allclose(new_baseline, 0.9 * baseline + 0.1 * reward.mean(), rtol=1e-6)
    np.testing.assert_allclose(metrics["reward"], reward.mean(), rtol=1e-6)
    # Only the log-probabilities carry gradient: -(R - b) / num_tokens at real steps, 0 at padding.
    grad = jax.grad(lambda lp: loss(lp)[0])(log_prob)
    np.testing.assert_allclose(grad, -(reward - baseline)[:, None] * mask / mask.sum(), rtol=1e-5)
    reward_grad = jax.grad(lambda x: hard_attention_loss(x, log_prob, mask, baseline)[0])(ll)
    np.testing.assert_array_equal(reward_grad, 0.0)

    # A per-sequence reward (e.g. sentence BLEU) replaces the log-likelihood.
    bleu = np.array([10.0, 0.0, 50.0, 20.0], np.float32)
    term, new_baseline, _ = loss(log_prob, reward=bleu)
    expected = -np.sum((bleu - baseline) * (log_prob * mask).sum(-1)) / mask.sum()
    np.testing.assert_allclose(term, expected, rtol=1e-5)
    np.testing.assert_allclose(new_baseline, 0.9 * baseline + 0.1 * bleu.mean(), rtol=1e-6)

    # A per-step reward credits each step with its own; the baseline tracks the per-token mean.
    term, new_baseline, _ = loss(log_prob, reward=ll)
    np.testing.assert_allclose(term, -np.sum((ll - baseline) * log_prob * mask) / mask.sum(), rtol=1e-5)
    np.testing.assert_allclose(new_baseline, 0.9 * baseline + 0.1 * ll[mask].mean(), rtol=1e-6)


def test_hard_attention_learns_to_align_with_reinforce():
    """Xu et al. (2015) hard attention on a copy task: only REINFORCE can train the attention.

    The context is the memory row at a sampled position, so the attention parameters get no gradient
    from the likelihood; they learn from the REINFORCE term alone (per-token log-likelihood reward).
    """
    length, batch, steps = 8, 32, 200
    model = make_model("hard", hidden_dim=16, embed_dim=16, attention_units=16)

    def copy_batch(key):  # copy ids 3..VOCAB-1, then EOS = 2; BOS = 1
        src = jax.random.randint(key, (batch, length), 3, VOCAB)
        tgt = jnp.concatenate([src, jnp.full((batch, 1), 2)], axis=1)
        tgt_in = jnp.concatenate([jnp.ones((batch, 1), src.dtype), tgt[:, :-1]], axis=1)
        return src, tgt_in, tgt

    params = random_params(model, *copy_batch(jax.random.key(0))[:2])
    tx = optax.adam(0.02)

    def train_step(carry, key):
        params, opt_state, baseline = carry
        data_key, attention_key = jax.random.split(key)
        src, tgt_in, tgt = copy_batch(data_key)

        def loss_fn(params):
            logits, aux = model.apply(
                {"params": params}, src, tgt_in, deterministic=False, rngs={"attention": attention_key}
            )
            nll, ll, mask = token_nll(logits, tgt)
            term, new_baseline, _ = hard_attention_loss(
                ll, aux["attention_log_prob"], mask, baseline, reward=ll
            )
            return nll + term, (nll, new_baseline)

        grads, (nll, baseline) = jax.grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, baseline), nll

    def alignment(params):
        """Fraction of target steps whose argmax attention is on the source word being copied."""
        src, tgt_in, _ = copy_batch(jax.random.key(99))
        _, state = model.clone(sow_weights=True).apply(
            {"params": params}, src, tgt_in, mutable=["intermediates"]
        )
        (weights,) = state["intermediates"]["attention_weights"]  # [batch, T, S]
        return jnp.mean(jnp.argmax(weights[:, :length], -1) == jnp.arange(length))

    @fast_jit
    def run(params):
        init = (params, tx.init(params), jnp.float32(-2.4))  # about log(1 / 8 words)
        (trained, _, _), losses = jax.lax.scan(train_step, init, jax.random.split(jax.random.key(1), steps))
        both = jax.tree_util.tree_map(lambda a, b: jnp.stack([a, b]), params, trained)
        return losses, jax.vmap(alignment)(both)  # before and after training

    losses, (before, after) = jax.device_get(run(params))
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-10:]) < 0.6 * np.mean(losses[:10]), losses
    assert before < 0.25 and after > 0.4, (before, after)  # chance: 1 / 8
