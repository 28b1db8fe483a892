"""Decoding over a step function: greedy, sampling and beam search against NumPy / brute-force references.

The toy model scores the next token from a random table indexed by a hash of the whole prefix, which it
rebuilds from a per-row history leaf ``[rows, max_len, 1]`` in the cache; a per-row ``row`` leaf makes
examples differ, and rank-0 ``index`` / ``calls`` leaves count the steps. So a beam whose cache rows were
gathered from the wrong parent, or a shared leaf that got tiled, changes the logits (or fails to trace).
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from attn_jax.decoding import (
    beam_search,
    check_cache,
    expand_to_beams,
    flatten_beams,
    gather_beams,
    greedy_decode,
    length_penalty,
    sample_decode,
    sample_from_logits,
    select_beams,
    unflatten_beams,
)
from attn_jax.layers import MultiHeadAttention

BOS, EOS = 1, 3
PRIME = 101  # hash buckets
MULT = 7


def powers(length):
    return np.array([pow(MULT, j, PRIME) for j in range(length)], np.int64)


def make_table(vocab, seed, scale=1.0, eos_bias=0.0):
    table = np.random.default_rng(seed).normal(size=(PRIME, vocab)) * scale
    table[:, EOS] += eos_bias
    return table


def make_step(table, max_len):
    """Toy step function: logits = table[hash(row, BOS + prefix)], the prefix read back from the cache."""
    table32 = jnp.asarray(table, jnp.float32)
    pows = jnp.asarray(powers(max_len), jnp.int32)

    def step(tokens, cache):
        index, history, row = cache["index"], cache["history"], cache["row"]
        assert index.shape == () and cache["calls"].shape == (), "shared leaves must stay scalars"
        history = history.at[:, index, 0].set(tokens)  # [rows, max_len, 1]
        fed = jnp.arange(max_len) <= index  # [max_len]
        digest = jnp.sum(jnp.where(fed, (history[..., 0] + 1) * pows, 0), axis=-1)  # [rows]
        logits = table32[(row * 17 + digest) % PRIME]  # [rows, vocab]
        new_cache = {"index": index + 1, "calls": cache["calls"] + 1, "history": history, "row": row}
        return logits, new_cache

    return step


def make_cache(batch, max_len, rows=None):
    rows = np.arange(batch) * 5 + 2 if rows is None else rows
    return {
        "index": jnp.array(0, jnp.int32),
        "calls": jnp.array(0, jnp.int32),
        "history": jnp.zeros((batch, max_len, 1), jnp.int32),
        "row": jnp.asarray(rows, jnp.int32),
    }


def ref_log_probs(table, row, prefix):
    """NumPy float64 log-probabilities of the token after ``prefix`` (tokens after BOS) for ``row``."""
    fed = [BOS, *prefix]
    digest = int(np.sum((np.array(fed) + 1) * powers(len(fed))))
    logits = table[(row * 17 + digest) % PRIME]
    return logits - np.logaddexp.reduce(logits)


def pad(seq, length):
    return list(seq) + [0] * (length - len(seq))


def ref_greedy(table, row, max_len):
    seq = []
    while len(seq) < max_len:
        seq.append(int(np.argmax(ref_log_probs(table, row, seq))))
        if seq[-1] == EOS:
            break
    return pad(seq, max_len)


def penalty(length, alpha):
    return ((5.0 + length) / 6.0) ** alpha


def brute_force(table, row, max_len, alpha):
    """Every hypothesis (ends in EOS, or reaches max_len) with its length-penalised score, best first."""
    vocab = table.shape[1]
    found = []

    def grow(prefix, log_prob):
        log_probs = ref_log_probs(table, row, prefix)
        for tok in range(vocab):
            seq, lp = [*prefix, tok], log_prob + log_probs[tok]
            if tok == EOS or len(seq) == max_len:
                found.append((pad(seq, max_len), lp / penalty(len(seq), alpha)))
            else:
                grow(seq, lp)

    grow([], 0.0)
    return sorted(found, key=lambda h: -h[1])


def ref_beam_search(log_probs_fn, vocab, beam, max_len, alpha):
    """Plain-Python beam search with the same rules, run to max_len (early stopping must not change it)."""
    alive, finished = [([], 0.0)], []
    for t in range(max_len):
        candidates = []
        for seq, lp in alive:
            log_probs = log_probs_fn(seq)
            candidates += [([*seq, tok], lp + log_probs[tok]) for tok in range(vocab)]
        candidates.sort(key=lambda c: -c[1])
        for seq, lp in candidates[:beam]:
            if seq[-1] == EOS or t == max_len - 1:
                finished.append((pad(seq, max_len), lp / penalty(len(seq), alpha)))
        alive = [c for c in candidates if c[0][-1] != EOS][:beam]
    return sorted(finished, key=lambda h: -h[1])[:beam]


def assert_padded_after_eos(seqs):
    seqs = np.asarray(seqs).reshape(-1, seqs.shape[-1])
    for seq in seqs:
        eos = np.flatnonzero(seq == EOS)
        if eos.size:
            assert np.all(seq[eos[0] + 1 :] == 0), seq


# ---------------------------------------------------------------- beam helpers


def test_beam_helpers_tile_and_gather_rows_and_leave_scalars_alone():
    batch, beam = 3, 4
    tree = {
        "index": jnp.array(7, jnp.int32),
        "kv": jnp.arange(batch * 2 * 5, dtype=jnp.float32).reshape(batch, 2, 5),
        "carry": jnp.arange(batch, dtype=jnp.int32),
    }
    expanded = expand_to_beams(tree, beam)
    assert expanded["index"].shape == () and int(expanded["index"]) == 7
    np.testing.assert_array_equal(expanded["kv"], np.repeat(np.asarray(tree["kv"]), beam, axis=0))
    split = unflatten_beams(expanded, beam)
    assert split["kv"].shape == (batch, beam, 2, 5) and split["index"].shape == ()
    np.testing.assert_array_equal(flatten_beams(split)["kv"], expanded["kv"])

    # Give every beam a distinct value, then gather two new beams per example from chosen parents.
    distinct = jax.tree.map(lambda x: x, expanded)
    distinct["carry"] = jnp.arange(batch * beam, dtype=jnp.int32) * 10
    parents = jnp.array([[3, 3], [0, 2], [1, 0]])
    gathered = gather_beams(distinct, parents, beam)
    expected = np.asarray(distinct["carry"]).reshape(batch, beam)[np.arange(batch)[:, None], parents]
    np.testing.assert_array_equal(gathered["carry"], expected.reshape(-1))
    assert gathered["index"].shape == ()
    np.testing.assert_array_equal(
        select_beams(jnp.asarray(expected.reshape(batch, 2)), jnp.array([[1, 0], [1, 1], [0, 0]])),
        expected[np.arange(batch)[:, None], [[1, 0], [1, 1], [0, 0]]],
    )


def test_length_penalty_is_gnmt():
    np.testing.assert_allclose(
        length_penalty(jnp.arange(1, 6), 0.6), penalty(np.arange(1, 6), 0.6), rtol=1e-6
    )
    np.testing.assert_allclose(length_penalty(9, 0.0), 1.0)


def test_cache_without_batch_axis_is_rejected():
    with pytest.raises(ValueError, match="leading axis"):
        check_cache({"table": jnp.zeros((5, 3)), "i": jnp.array(0)}, batch_size=2)
    step = make_step(make_table(4, 0), 4)
    with pytest.raises(ValueError, match="batch_size=3"):
        greedy_decode(step, make_cache(2, 4), batch_size=3, max_len=4, bos_id=BOS, eos_id=EOS)


# ---------------------------------------------------------------- greedy


def test_greedy_equals_numpy_argmax_reference():
    vocab, max_len, batch = 5, 7, 6
    table = make_table(vocab, seed=1, scale=2.0, eos_bias=0.3)
    cache = make_cache(batch, max_len)
    out = greedy_decode(
        make_step(table, max_len), cache, batch_size=batch, max_len=max_len, bos_id=BOS, eos_id=EOS
    )
    assert out.shape == (batch, max_len) and out.dtype == jnp.int32
    expected = [ref_greedy(table, int(r), max_len) for r in cache["row"]]
    np.testing.assert_array_equal(out, expected)
    assert any(EOS in row for row in expected) and any(EOS not in row for row in expected)


# ---------------------------------------------------------------- beam search


@pytest.mark.parametrize("alpha", [0.0, 0.6, 2.0])
def test_wide_beam_equals_brute_force_enumeration(alpha):
    # vocab 4 (3 tokens go on), max_len 4: at most 27 * 4 = 108 candidates per step, so a beam of 108
    # prunes nothing and must return the 108 best of all 121 hypotheses.
    vocab, max_len, batch, beam = 4, 4, 2, 108
    table = make_table(vocab, seed=2, scale=1.5)
    cache = make_cache(batch, max_len)
    seqs, scores = beam_search(
        make_step(table, max_len),
        cache,
        batch_size=batch,
        beam_size=beam,
        max_len=max_len,
        bos_id=BOS,
        eos_id=EOS,
        alpha=alpha,
    )
    assert seqs.shape == (batch, beam, max_len) and scores.shape == (batch, beam)
    assert np.all(np.diff(np.asarray(scores), axis=1) <= 0)
    assert_padded_after_eos(seqs)
    for b, row in enumerate(np.asarray(cache["row"])):
        expected = brute_force(table, int(row), max_len, alpha)[:beam]
        np.testing.assert_allclose(scores[b], [s for _, s in expected], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(seqs[b], [s for s, _ in expected])


@pytest.mark.parametrize("alpha", [0.0, 0.6, 1.5, -0.5])
def test_narrow_beam_equals_python_reference(alpha):
    vocab, max_len, batch, beam = 5, 6, 3, 3
    table = make_table(vocab, seed=3, scale=1.5, eos_bias=0.5)
    cache = make_cache(batch, max_len)
    seqs, scores = beam_search(
        make_step(table, max_len),
        cache,
        batch_size=batch,
        beam_size=beam,
        max_len=max_len,
        bos_id=BOS,
        eos_id=EOS,
        alpha=alpha,
    )
    assert np.all(np.diff(np.asarray(scores), axis=1) <= 0)
    assert_padded_after_eos(seqs)
    for b, row in enumerate(np.asarray(cache["row"])):
        expected = ref_beam_search(
            lambda p, r=int(row): ref_log_probs(table, r, p), vocab, beam, max_len, alpha
        )
        np.testing.assert_allclose(scores[b], [s for _, s in expected], rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(seqs[b], [s for s, _ in expected])
        # The best hypothesis is at least as good as greedy's under the same score.
        greedy = ref_greedy(table, int(row), max_len)
        assert scores[b, 0] >= score_of(table, int(row), greedy, alpha) - 1e-5


def score_of(table, row, padded, alpha):
    seq = list(padded)
    if EOS in seq:
        seq = seq[: seq.index(EOS) + 1]
    log_prob = sum(ref_log_probs(table, row, seq[:i])[tok] for i, tok in enumerate(seq))
    return log_prob / penalty(len(seq), alpha)


def test_beam_of_one_without_length_penalty_is_greedy():
    vocab, max_len, batch = 5, 8, 8
    table = make_table(vocab, seed=4, scale=2.0, eos_bias=0.2)
    step, cache = make_step(table, max_len), make_cache(batch, max_len)
    seqs, scores = beam_search(
        step, cache, batch_size=batch, beam_size=1, max_len=max_len, bos_id=BOS, eos_id=EOS, alpha=0.0
    )
    greedy = greedy_decode(step, cache, batch_size=batch, max_len=max_len, bos_id=BOS, eos_id=EOS)
    np.testing.assert_array_equal(seqs[:, 0], greedy)
    for b, row in enumerate(np.asarray(cache["row"])):
        np.testing.assert_allclose(scores[b, 0], score_of(table, int(row), greedy[b], 0.0), rtol=1e-5)


def test_all_rows_ending_at_once_stop_the_loop_early():
    vocab, max_len, batch, beam = 6, 12, 4, 3
    table = make_table(vocab, seed=5, eos_bias=50.0)  # EOS is (almost) certain at every position
    step, cache = make_step(table, max_len), make_cache(batch, max_len)
    kwargs = dict(batch_size=batch, max_len=max_len, bos_id=BOS, eos_id=EOS, return_cache=True)
    expected = np.array([pad([EOS], max_len)] * batch)

    out, final = greedy_decode(step, cache, **kwargs)
    np.testing.assert_array_equal(out, expected)
    assert int(final["calls"]) == 1 and final["calls"].shape == ()

    out, final = sample_decode(step, cache, jax.random.key(0), **kwargs)
    np.testing.assert_array_equal(out, expected)
    assert int(final["calls"]) == 1

    seqs, scores, final = beam_search(step, cache, beam_size=beam, alpha=0.6, **kwargs)
    np.testing.assert_array_equal(seqs[:, 0], expected)
    np.testing.assert_allclose(scores[:, 0], 0.0, atol=1e-6)
    # Step 1 finishes one hypothesis, step 2 fills the finished beam and no alive beam can catch up.
    assert int(final["calls"]) == 2 and final["calls"].shape == ()
    assert final["history"].shape == (batch * beam, max_len, 1)


# ---------------------------------------------------------------- sampling


def test_sampling_is_deterministic_given_the_key_and_top1_is_greedy():
    vocab, max_len, batch = 6, 8, 16
    table = make_table(vocab, seed=6, scale=1.0, eos_bias=0.3)
    step, cache = make_step(table, max_len), make_cache(batch, max_len)
    kwargs = dict(batch_size=batch, max_len=max_len, bos_id=BOS, eos_id=EOS)
    sample = jax.jit(
        functools.partial(sample_decode, step, **kwargs), static_argnames=("top_k", "temperature")
    )
    first = sample(cache, jax.random.key(1))
    np.testing.assert_array_equal(first, sample(cache, jax.random.key(1)))
    assert not np.array_equal(first, sample(cache, jax.random.key(2)))
    assert_padded_after_eos(first)
    greedy = greedy_decode(step, cache, **kwargs)
    np.testing.assert_array_equal(sample(cache, jax.random.key(3), top_k=1), greedy)
    np.testing.assert_array_equal(sample(cache, jax.random.key(3), temperature=0.0), greedy)


@pytest.mark.parametrize(("temperature", "top_k"), [(1.0, 0), (0.5, 0), (2.0, 0), (1.0, 3), (0.7, 2)])
def test_first_token_frequencies_match_tempered_softmax(temperature, top_k):
    vocab, samples = 8, 20_000
    table = make_table(vocab, seed=7, scale=1.0)
    cache = make_cache(samples, 1, rows=np.zeros(samples, np.int64))  # every row has the same distribution
    tokens = sample_decode(
        make_step(table, 1),
        cache,
        jax.random.key(11),
        batch_size=samples,
        max_len=1,
        bos_id=BOS,
        eos_id=EOS,
        temperature=temperature,
        top_k=top_k,
    )[:, 0]
    logits = ref_log_probs(table, 0, []) / temperature
    allowed = np.ones(vocab, bool) if top_k == 0 else np.isin(np.arange(vocab), np.argsort(-logits)[:top_k])
    probs = np.where(allowed, np.exp(logits - logits.max()), 0.0)
    probs /= probs.sum()
    counts = np.bincount(np.asarray(tokens), minlength=vocab)
    assert counts[~allowed].sum() == 0
    expected = probs[allowed] * samples
    chi2 = np.sum((counts[allowed] - expected) ** 2 / expected)
    assert stats.chi2.sf(chi2, df=allowed.sum() - 1) > 1e-4, (counts, expected)


def test_top_k_never_samples_outside_the_k_best_at_any_position():
    vocab, max_len, batch, top_k = 7, 6, 64, 2
    table = make_table(vocab, seed=8, scale=0.5, eos_bias=-1.0)
    cache = make_cache(batch, max_len)
    out = np.asarray(
        sample_decode(
            make_step(table, max_len),
            cache,
            jax.random.key(5),
            batch_size=batch,
            max_len=max_len,
            bos_id=BOS,
            eos_id=EOS,
            temperature=3.0,
            top_k=top_k,
        )
    )
    seen_second = False
    for b, row in enumerate(np.asarray(cache["row"])):
        for i, tok in enumerate(out[b]):
            if i and out[b, i - 1] == EOS:
                break
            ranking = np.argsort(-ref_log_probs(table, int(row), list(out[b, :i])))
            assert tok in ranking[:top_k]
            seen_second |= tok == ranking[1]
    assert seen_second  # a flat tempered distribution does sample below the top token


def test_sample_from_logits_rejects_bad_options_and_handles_masked_logits():
    with pytest.raises(ValueError, match="top_k"):
        sample_from_logits(jax.random.key(0), jnp.zeros((2, 3)), top_k=-1)
    with pytest.raises(ValueError, match="temperature"):
        sample_from_logits(jax.random.key(0), jnp.zeros((2, 3)), temperature=-1.0)
    masked = jnp.array([[0.0, jnp.finfo(jnp.float32).min, 0.0]] * 500)
    draws = sample_from_logits(jax.random.key(0), masked, temperature=0.25)
    assert set(np.unique(np.asarray(draws))) == {0, 2}


# ---------------------------------------------------------------- jit


def test_every_decoder_runs_under_jit():
    vocab, max_len, batch, beam = 5, 6, 3, 3
    table = make_table(vocab, seed=9, scale=1.5, eos_bias=0.4)
    step, cache = make_step(table, max_len), make_cache(batch, max_len)
    ids = dict(batch_size=batch, max_len=max_len, bos_id=BOS, eos_id=EOS)

    greedy = jax.jit(functools.partial(greedy_decode, step, **ids))
    np.testing.assert_array_equal(greedy(cache), greedy_decode(step, cache, **ids))

    sample = jax.jit(functools.partial(sample_decode, step, temperature=0.8, top_k=3, **ids))
    key = jax.random.key(4)
    np.testing.assert_array_equal(
        sample(cache, key), sample_decode(step, cache, key, temperature=0.8, top_k=3, **ids)
    )

    beams = jax.jit(beam_search, static_argnums=0, static_argnames=(*ids, "beam_size"))
    seqs, scores = beams(step, cache, beam_size=beam, alpha=0.6, **ids)
    ref_seqs, ref_scores = beam_search(step, cache, beam_size=beam, alpha=0.6, **ids)
    np.testing.assert_array_equal(seqs, ref_seqs)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-6)
    # alpha may be traced: a second alpha reuses the compiled search and changes the ranking rule.
    seqs0, scores0 = beams(step, cache, beam_size=beam, alpha=0.0, **ids)
    ref0 = beam_search(step, cache, beam_size=beam, alpha=0.0, **ids)
    np.testing.assert_allclose(scores0, ref0[1], rtol=1e-6)
    np.testing.assert_array_equal(seqs0, ref0[0])


# ---------------------------------------------------------------- a Flax key/value cache


class _TinyLM(nn.Module):
    """One causal self-attention layer over token embeddings, with an optional decoding cache."""

    vocab: int
    decode: bool = False

    @nn.compact
    def __call__(self, tokens):  # [batch, len] -> [batch, len, vocab]
        x = nn.Embed(self.vocab, 16)(tokens)
        x = x + MultiHeadAttention(num_heads=2, causal=True, position="rotary", decode=self.decode)(x)
        return 4.0 * nn.Dense(self.vocab)(x)


def test_beam_search_over_a_flax_key_value_cache():
    vocab, max_len, batch, beam, alpha = 6, 5, 2, 2, 0.6
    full, stepper = _TinyLM(vocab), _TinyLM(vocab, decode=True)
    variables = jax.jit(stepper.init)(jax.random.key(0), jnp.zeros((batch, max_len), jnp.int32))
    params, cache = variables["params"], variables["cache"]  # the uncached model shares the parameters
    assert any(leaf.ndim == 0 for leaf in jax.tree.leaves(cache))  # the shared cache_index

    def step(tokens, cache):
        logits, updated = stepper.apply(
            {"params": params, "cache": cache}, tokens[:, None], mutable=["cache"]
        )
        return logits[:, 0], updated["cache"]

    # Reference: the uncached model re-run on every prefix (both examples start from the same BOS).
    apply_full = jax.jit(lambda toks: full.apply({"params": params}, toks))

    @functools.cache
    def log_probs(prefix):  # causal, so padding the input to one shape leaves position len(prefix) alone
        tokens = jnp.array([pad([BOS, *prefix], max_len)], jnp.int32)
        logits = np.asarray(apply_full(tokens), np.float64)[0, len(prefix)]
        return logits - np.logaddexp.reduce(logits)

    seqs, scores = jax.jit(
        functools.partial(
            beam_search,
            step,
            batch_size=batch,
            beam_size=beam,
            max_len=max_len,
            bos_id=BOS,
            eos_id=EOS,
            alpha=alpha,
        )
    )(cache)
    expected = ref_beam_search(lambda p: log_probs(tuple(p)), vocab, beam, max_len, alpha)
    for b in range(batch):
        np.testing.assert_allclose(scores[b], [s for _, s in expected], rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(seqs[b], [s for s, _ in expected])

    greedy = greedy_decode(step, cache, batch_size=batch, max_len=max_len, bos_id=BOS, eos_id=EOS)
    reference = []
    for _ in range(max_len):
        reference.append(int(np.argmax(log_probs(tuple(reference)))))
        if reference[-1] == EOS:
            break
    np.testing.assert_array_equal(greedy, [pad(reference, max_len)] * batch)


def test_brute_force_reference_counts_every_hypothesis():
    # Guard the reference itself: 1 + 3 + 9 + 27 hypotheses end in EOS, 81 run to max_len without it.
    found = brute_force(make_table(4, 0), 0, 4, 0.0)
    assert len(found) == 121
    assert len({tuple(s) for s, _ in found}) == 121
    total = sum(np.exp(score) for _, score in found)  # alpha = 0: the probabilities of a complete event space
    np.testing.assert_allclose(total, 1.0, rtol=1e-9)
