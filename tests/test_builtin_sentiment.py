"""Tests for the generated `builtin:sentiment` reviews."""

import hashlib
import re

import numpy as np
import pytest

from attn_jax.data.builtin import sentiment as S
from attn_jax.data.builtin import sentiment_fillers
from attn_jax.data.builtin.sentiment import Clause, Filler, Opinion, ReviewPlan


@pytest.fixture(scope="module")
def splits() -> dict[str, list[S.SentimentExample]]:
    return {split: S.generate(split) for split in S.SPLITS}


@pytest.fixture(scope="module")
def train_plans() -> list[ReviewPlan]:
    return S.generate_plans("train", 4000)


def _opinions(plan: ReviewPlan) -> list[Opinion]:
    return [p for p in plan.parts if isinstance(p, Opinion)]


def _clauses(plan: ReviewPlan) -> list[Clause]:
    return [c for o in _opinions(plan) for c in (o.assertion, o.concession) if c is not None]


def _fraction(plans: list[ReviewPlan], predicate) -> float:
    return sum(map(predicate, plans)) / len(plans)


# --- sizes, determinism, balance, splits -------------------------------------------------------------------


def test_default_sizes(splits):
    assert {k: len(v) for k, v in splits.items()} == {"train": 20_000, "validation": 2_000, "test": 2_000}
    assert S.LABELS == ("negative", "positive")


def test_num_examples():
    assert len(S.generate("validation", 37)) == 37
    assert S.generate("test", 0) == []
    with pytest.raises(ValueError, match="num_examples"):
        S.generate("train", -1)


def test_deterministic_and_seeded():
    first = S.generate("validation", 300, seed=3)
    assert first == S.generate("validation", 300, seed=3)
    assert first != S.generate("validation", 300, seed=4)
    assert len({e.text for e in first} & {e.text for e in S.generate("validation", 300, seed=4)}) < 30


def test_fingerprint_is_stable_across_runs_and_machines():
    # A change here means every stored result on builtin:sentiment is no longer comparable; if the
    # generator was changed on purpose, update the digest and say so in the change description.
    text = "\n".join(f"{e.label}\t{e.text}" for e in S.generate("train", 200, seed=0))
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == FINGERPRINT


FINGERPRINT = "a14b6b8f361b0fcc"


def test_labels_balanced(splits):
    for examples in splits.values():
        assert set(e.label for e in examples) == {0, 1}
        assert abs(np.mean([e.label for e in examples]) - 0.5) <= 0.02


def test_splits_are_disjoint_and_texts_unique(splits):
    texts = {split: {e.text for e in examples} for split, examples in splits.items()}
    for split, examples in splits.items():
        assert len(texts[split]) == len(examples), f"duplicate texts in {split}"
    assert not texts["train"] & texts["validation"]
    assert not texts["train"] & texts["test"]
    assert not texts["validation"] & texts["test"]
    # Other seeds draw from the same per-split text space, so they stay disjoint from the other splits too.
    other = {e.text for e in S.generate("validation", 500, seed=7)}
    assert not other & texts["train"] and not other & texts["test"]


def test_unknown_split_raises():
    with pytest.raises(ValueError, match="train, validation, test"):
        S.generate("dev")


# --- surface form ------------------------------------------------------------------------------------------


def test_text_is_lowercase_tokenised_and_sized(splits):
    token = re.compile(r"^(?:[a-z0-9]+|[.,])$")
    for example in splits["validation"]:
        tokens = example.text.split(" ")
        assert S.MIN_TOKENS <= len(tokens) <= S.MAX_TOKENS
        assert all(token.match(t) for t in tokens), example.text
        assert tokens[-1] == "."
    lengths = [len(e.text.split()) for e in splits["train"]]
    assert 20 <= np.mean(lengths) <= 40


def test_lexicon_words_only_come_from_opinions():
    lexicon = {w for w in S.POLARITY if " " not in w}
    neutral = set()
    for pool in sentiment_fillers.FILLER_SLOTS.values():
        neutral.update(w for phrase in pool for w in phrase.split())
    neutral.update(w for t in sentiment_fillers.FILLER_TEMPLATES for w in t.split() if "{" not in w)
    for group in (S.SINGULAR_SUBJECTS, S.PLURAL_SUBJECTS, S.INTENSIFIERS, S.DOWNTONERS,
                  S.NEGATED_INTENSIFIERS, S.VERB_INTENSIFIERS, S.VERB_DOWNTONERS, S.NOUN_INTENSIFIERS,
                  S.NOUN_DOWNTONERS, S.CONNECTIVES, S.OPINION_PREFIXES):  # fmt: skip
        neutral.update(w for phrase in group for w in phrase.split())
    assert not lexicon & neutral
    assert len([w for w, s in S.POLARITY.items() if s > 0]) >= 40
    assert len([w for w, s in S.POLARITY.items() if s < 0]) >= 40


# --- the plan decides the label ----------------------------------------------------------------------------


def test_generated_labels_follow_the_plans(train_plans):
    for plan, example in zip(train_plans, S.generate("train", len(train_plans)), strict=True):
        assert S.render(plan) == example.text
        assert S.label_of(plan) == example.label
        for opinion in _opinions(plan):
            if opinion.concession is not None:
                assert S.clause_polarity(opinion.concession) == -S.clause_polarity(opinion.assertion)


def test_phenomena_are_frequent(train_plans):
    intensifiers = set(S.INTENSIFIERS + S.VERB_INTENSIFIERS + S.NOUN_INTENSIFIERS + S.NEGATED_INTENSIFIERS)
    downtoners = set(S.DOWNTONERS + S.VERB_DOWNTONERS + S.NOUN_DOWNTONERS)
    plans = train_plans
    assert _fraction(plans, lambda p: any(c.negator for c in _clauses(p))) > 0.4
    assert _fraction(plans, lambda p: any(o.concession for o in _opinions(p))) > 0.4
    assert _fraction(plans, lambda p: any(o.connective in ("but", ", but") for o in _opinions(p))) > 0.15
    assert _fraction(plans, lambda p: any("though" in o.connective for o in _opinions(p))) > 0.15
    assert _fraction(plans, lambda p: any(c.modifier in intensifiers for c in _clauses(p))) > 0.25
    assert _fraction(plans, lambda p: any(c.modifier in downtoners for c in _clauses(p))) > 0.08
    assert _fraction(plans, lambda p: any(isinstance(x, Filler) for x in p.parts)) > 0.6
    # A fair share of reviews whose sentiment words alone point the wrong way.
    misleading = lambda p: sum(S.POLARITY[c.word] for c in _clauses(p)) * (2 * S.label_of(p) - 1) < 0
    assert _fraction(plans, misleading) > 0.2


def _review(*parts: Opinion | Filler) -> tuple[str, int]:
    plan = ReviewPlan(parts)
    return S.render(plan), S.label_of(plan)


@pytest.mark.parametrize(
    ("opinion", "text", "label"),
    [
        # contrast: the clause after "but" / the main clause of "although" decides
        (Opinion(Clause("copula", "awful", "the story"), Clause("copula", "great", "the acting"), "but"),
         "the acting was great but the story was awful .", 0),
        (Opinion(Clause("verb", "loved", "the ending"), Clause("copula", "tedious", "the first act"),
                 "although"),
         "although the first act was tedious , i loved the ending .", 1),
        (Opinion(Clause("verdict", "recommend", negator="not"), Clause("copula", "lovely", "the music"),
                 ", although"),
         "i would not recommend it , although the music was lovely .", 0),
        (Opinion(Clause("noun", "mess", "the film"), Clause("copula", "superb", "the acting"), "however"),
         "the acting was superb . however , the film was a mess .", 0),
        (Opinion(Clause("copula", "bad", "the plot", negator="not"), Clause("copula", "dull", "the cast"),
                 ", yet"),
         "the cast was dull , yet the plot was not bad .", 1),
        # negation flips
        (Opinion(Clause("copula", "bad", "the film", negator="not at all")),
         "the film was not bad at all .", 1),
        (Opinion(Clause("copula", "boring", "the plot", negator="never")), "the plot was never boring .", 1),
        (Opinion(Clause("copula", "good", "it", negator="not", modifier="very")),
         "it was not very good .", 0),
        (Opinion(Clause("nothing", "funny", "the jokes", negator="nothing")),
         "there was nothing funny about the jokes .", 0),
        (Opinion(Clause("noun", "masterpiece", "the film", negator="far from")),
         "the film was far from a masterpiece .", 0),
        (Opinion(Clause("verb", "hated", "the ending", negator="not")), "i did not hate the ending .", 1),
        (Opinion(Clause("found", "convincing", "the cast", negator="never")),
         "i never found the cast convincing .", 0),
        (Opinion(Clause("seemed", "dull", "the special effects", negator="not")),
         "the special effects did not seem dull .", 1),
        (Opinion(Clause("verdict", "skip", negator="not")), "you should not skip it .", 1),
        # intensifiers and downtoners keep the polarity
        (Opinion(Clause("copula", "dull", "the pacing", modifier="slightly")),
         "the pacing was slightly dull .", 0),
        (Opinion(Clause("found", "charming", "the cast", modifier="really")),
         "i found the cast really charming .", 1),
        (Opinion(Clause("noun", "gem", "this film", modifier="minor", present=True)),
         "this film is a minor gem .", 1),
        (Opinion(Clause("copula", "funny", "the jokes", modifier="terribly")),
         "the jokes were terribly funny .", 1),
        (Opinion(Clause("verb", "despised", "the twist", modifier="kind of"), prefix="honestly ,"),
         "honestly , i kind of despised the twist .", 0),
    ],
)  # fmt: skip
def test_hand_checked_templates(opinion, text, label):
    assert _review(opinion) == (text, label)


def test_neutral_negation_and_but_in_filler_do_not_count():
    text, label = _review(
        Filler("i had not seen the first film before this one ."),
        Opinion(Clause("copula", "gripping", "the story")),
        Filler("it was shot in paris but set in a castle ."),
    )
    assert text == ("i had not seen the first film before this one . the story was gripping . "
                    "it was shot in paris but set in a castle .")  # fmt: skip
    assert label == 1


def test_conflicting_assertions_are_rejected():
    plan = ReviewPlan((Opinion(Clause("copula", "great")), Opinion(Clause("copula", "awful"))))
    with pytest.raises(ValueError, match="one polarity"):
        S.label_of(plan)


# --- hard for bag-of-words ---------------------------------------------------------------------------------


class _WordCounts:
    """Sparse bag-of-words counts: one (document, word) entry per token occurrence."""

    def __init__(self, examples: list[S.SentimentExample], vocab: dict[str, int]):
        tokens = [t.split() for t in (e.text for e in examples)]
        docs = np.repeat(np.arange(len(examples)), [len(t) for t in tokens])
        words = np.array([vocab.get(w, -1) for t in tokens for w in t])
        self.docs, self.words = docs[words >= 0], words[words >= 0]
        self.num_docs, self.num_words = len(examples), len(vocab)
        self.labels = np.array([e.label for e in examples])

    def totals(self, mask: np.ndarray) -> np.ndarray:
        """Summed word counts over the documents where `mask` is true."""
        return np.bincount(self.words[mask[self.docs]], minlength=self.num_words).astype(float)

    def matvec(self, w: np.ndarray) -> np.ndarray:
        """counts @ w, one score per document."""
        return np.bincount(self.docs, weights=w[self.words], minlength=self.num_docs)

    def rmatvec(self, g: np.ndarray) -> np.ndarray:
        """counts.T @ g, one value per word."""
        return np.bincount(self.words, weights=g[self.docs], minlength=self.num_words)


def _fit_logistic_regression(x: _WordCounts, steps: int = 100, lr: float = 0.1) -> tuple[np.ndarray, float]:
    """Adam on the mean log loss with a little L2; converges on these counts in about 100 steps."""
    w, b = np.zeros(x.num_words), 0.0
    m, v = np.zeros_like(w), np.zeros_like(w)
    for k in range(1, steps + 1):
        error = 1 / (1 + np.exp(-(x.matvec(w) + b))) - x.labels
        grad = x.rmatvec(error) / x.num_docs + 1e-4 * w
        m, v = 0.9 * m + 0.1 * grad, 0.999 * v + 0.001 * grad**2
        w -= lr * (m / (1 - 0.9**k)) / (np.sqrt(v / (1 - 0.999**k)) + 1e-8)
        b -= lr * float(error.mean())
    return w, b


def bag_of_words_accuracy(train: list[S.SentimentExample], evaluate: list[S.SentimentExample]) -> dict:
    """Multinomial naive Bayes and logistic regression on word counts (no order, no interactions)."""
    vocab = {w: i for i, w in enumerate(sorted({w for e in train for w in e.text.split()}))}
    x_train, x_eval = _WordCounts(train, vocab), _WordCounts(evaluate, vocab)

    positive = x_train.totals(x_train.labels == 1) + 1.0
    negative = x_train.totals(x_train.labels == 0) + 1.0
    log_ratio = np.log(positive / positive.sum()) - np.log(negative / negative.sum())
    naive_bayes = (x_eval.matvec(log_ratio) > 0) == x_eval.labels

    w, b = _fit_logistic_regression(x_train)
    logistic = (x_eval.matvec(w) + b > 0) == x_eval.labels
    return {"naive_bayes": float(naive_bayes.mean()), "logistic_regression": float(logistic.mean())}


def test_bag_of_words_is_clearly_below_attention_models(splits):
    accuracy = bag_of_words_accuracy(splits["train"], splits["validation"])
    print(f"bag-of-words validation accuracy: {accuracy}")
    for value in accuracy.values():
        assert 0.55 <= value <= 0.75, accuracy
