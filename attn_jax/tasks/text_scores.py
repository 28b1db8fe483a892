"""Corpus scores of generated text: BLEU (sacrebleu) and ROUGE-1/2/L F-measures (rouge-score), 0-100."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import sacrebleu
from rouge_score import rouge_scorer

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """``bleu`` (Papineni et al., 2002; sacrebleu's standard 13a tokenisation, Post, 2018) and the mean
    ``rouge1``/``rouge2``/``rougeL`` F1 (Lin, 2004) of detokenized ``hypotheses`` against ``references``."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references.")
    if not hypotheses:
        raise ValueError("no hypotheses to score.")
    # force: generated data is already split into words and punctuation, which sacrebleu would warn about.
    bleu = sacrebleu.corpus_bleu(list(hypotheses), [list(references)], force=True)
    scores = {"bleu": float(bleu.score)}
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    per_pair = [scorer.score(ref, hyp) for hyp, ref in zip(hypotheses, references, strict=True)]
    for kind in ROUGE_TYPES:
        scores[kind] = 100.0 * float(np.mean([s[kind].fmeasure for s in per_pair]))
    return scores
