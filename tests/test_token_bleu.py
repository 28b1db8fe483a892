"""In-jit sentence BLEU on token ids equals sacrebleu's smoothed sentence BLEU on the same tokens."""

import jax
import numpy as np
import pytest
import sacrebleu

from attn_jax.tasks.token_bleu import sentence_bleu


def _padded(rows, length):
    ids = np.zeros((len(rows), length), np.int32)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
    return ids, ids != 0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sacrebleu_add_one_smoothing(seed):
    rng = np.random.default_rng(seed)
    refs = [list(rng.integers(1, 6, rng.integers(3, 12))) for _ in range(16)]
    hyps = [
        ref[: rng.integers(1, len(ref) + 1)] if i % 3 == 0 else list(rng.integers(1, 6, rng.integers(1, 14)))
        for i, ref in enumerate(refs)
    ]
    hyps[1] = list(refs[1])  # a perfect hypothesis
    hyp_ids, hyp_mask = _padded(hyps, 16)
    ref_ids, ref_mask = _padded(refs, 16)
    ours = np.asarray(jax.jit(sentence_bleu)(hyp_ids, hyp_mask, ref_ids, ref_mask))
    words = lambda row: " ".join(f"w{t}" for t in row)
    expected = [
        sacrebleu.sentence_bleu(
            words(h), [words(r)], smooth_method="add-k", smooth_value=1.0, tokenize="none"
        ).score
        / 100.0
        for h, r in zip(hyps, refs, strict=True)
    ]
    np.testing.assert_allclose(ours, expected, atol=1e-4)
    assert ours[1] == pytest.approx(1.0, abs=1e-5)
