"""`builtin:sentiment` — generated English-like movie reviews with a binary sentiment label.

Each review is a few lower-cased sentences (about 8 to 60 whitespace-separated tokens, punctuation as
separate tokens) built from a latent plan. The plan picks an overall polarity and a list of parts:

* neutral filler sentences about the plot, the cast, the setting and when the reviewer watched the film.
  Some of them contain "not", "never", "nothing" or "but" without expressing any opinion;
* opinion clauses built around one word from a small hand-written lexicon of positive and negative
  adjectives, verbs, nouns and verdicts ("gripping", "tedious", "loved", "a mess", "recommend");
* negation that flips the word's polarity ("the plot was not boring at all", "i never found the cast
  convincing", "there was nothing funny about the humor", "the film was far from a masterpiece");
* intensifiers and downtoners that keep it ("really", "incredibly", "slightly", "a bit", "a minor gem");
* contrast, where one clause is conceded and the other one decides: "X but Y", "X , yet Y",
  "although X , Y", "while X , Y", "Y , even though X" and "X . however , Y".

The label is computed exactly from the plan: a clause's polarity is its word's polarity, flipped when the
clause is negated, and the label is the polarity of the asserted (not conceded) clauses, which all agree.
There is no label noise.

Why attention is needed: about half of the opinions are contrasts whose conceded clause carries the
opposite polarity, and about a third of the clauses are negated, so counting positive and negative words
is often misleading. A bag-of-words classifier gets roughly 60-65% right; a model has to find the opinion
clauses among the filler, tie each negator to the word in its scope, and tell the deciding clause of a
contrast from the conceded one — which a small Transformer or BiLSTM with attention learns to do.

Splits are disjoint by construction: a stable hash of the review text assigns every possible text to
exactly one split, and each split keeps only its own texts. Generation is deterministic: the random
stream is `numpy.random.Generator(PCG64)` seeded from a BLAKE2 hash of (seed, split).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from attn_jax.data.builtin.draws import Uniforms, Weighted, split_of, split_rng
from attn_jax.data.builtin.sentiment_fillers import FILLER_SLOTS, PARSED_FILLERS

LABELS = ("negative", "positive")
SPLITS = ("train", "validation", "test")
DEFAULT_SIZES = {"train": 20_000, "validation": 2_000, "test": 2_000}
MIN_TOKENS = 8
MAX_TOKENS = 60

T = TypeVar("T")

# ----------------------------------------------------------------------------------------------------------
# Lexicon (hand-written for this project).

POSITIVE_ADJECTIVES = (
    "great", "good", "wonderful", "brilliant", "superb", "excellent", "charming", "gripping", "delightful",
    "funny", "clever", "beautiful", "stunning", "memorable", "engaging", "fresh", "powerful", "touching",
    "enjoyable", "entertaining", "impressive", "witty", "thrilling", "compelling", "original", "heartfelt",
    "elegant", "fantastic", "convincing", "lovely", "magnificent", "riveting", "inventive", "satisfying",
    "moving", "terrific",
)  # fmt: skip
NEGATIVE_ADJECTIVES = (
    "bad", "awful", "terrible", "boring", "dull", "weak", "clumsy", "tedious", "predictable", "bland",
    "forgettable", "lifeless", "messy", "silly", "poor", "painful", "shallow", "flat", "confusing",
    "dreadful", "horrible", "stiff", "lazy", "pointless", "annoying", "wooden", "cheap", "dreary", "sloppy",
    "tiresome", "unconvincing", "awkward", "mediocre", "disappointing", "incoherent", "hollow",
)  # fmt: skip
# (past tense, base form)
POSITIVE_VERBS = (
    ("loved", "love"), ("enjoyed", "enjoy"), ("liked", "like"), ("admired", "admire"), ("adored", "adore"),
    ("appreciated", "appreciate"), ("relished", "relish"), ("savored", "savor"),
)  # fmt: skip
NEGATIVE_VERBS = (
    ("hated", "hate"), ("disliked", "dislike"), ("despised", "despise"), ("loathed", "loathe"),
    ("detested", "detest"), ("resented", "resent"),
)  # fmt: skip
POSITIVE_NOUNS = (
    "masterpiece", "triumph", "delight", "gem", "treat", "joy", "marvel", "success", "pleasure", "classic",
    "winner",
)  # fmt: skip
NEGATIVE_NOUNS = (
    "disaster", "mess", "failure", "bore", "letdown", "disappointment", "chore", "flop", "embarrassment",
    "catastrophe", "waste of time",
)  # fmt: skip
POSITIVE_VERDICTS = ("recommend", "worth")
NEGATIVE_VERDICTS = ("skip", "regret")


def _polarities() -> dict[str, int]:
    table: dict[str, int] = {}
    for sign, words in (
        (1, POSITIVE_ADJECTIVES + POSITIVE_NOUNS + POSITIVE_VERDICTS + tuple(p for p, _ in POSITIVE_VERBS)),
        (-1, NEGATIVE_ADJECTIVES + NEGATIVE_NOUNS + NEGATIVE_VERDICTS + tuple(p for p, _ in NEGATIVE_VERBS)),
    ):
        table.update(dict.fromkeys(words, sign))
    return table


POLARITY = _polarities()
_VERB_BASE = dict(POSITIVE_VERBS + NEGATIVE_VERBS)
_LINKING_BASE = {"seemed": "seem", "felt": "feel"}

# Modifiers. Intensifiers and downtoners keep a word's polarity; only negators flip it.
INTENSIFIERS = (
    "very", "really", "truly", "extremely", "incredibly", "remarkably", "genuinely", "quite", "so",
    "absolutely", "terribly", "deeply",
)  # fmt: skip
DOWNTONERS = ("slightly", "somewhat", "fairly", "rather", "mildly", "a bit", "a little", "kind of")
NEGATED_INTENSIFIERS = ("very", "really", "particularly", "especially", "that", "all that", "terribly")
VERB_INTENSIFIERS = ("really", "truly", "absolutely", "genuinely", "thoroughly", "completely")
VERB_DOWNTONERS = ("somewhat", "mostly", "kind of", "mildly")
NEGATED_VERB_INTENSIFIERS = ("really", "particularly", "especially")
NOUN_INTENSIFIERS = ("real", "true", "complete", "total", "absolute", "genuine")
NOUN_DOWNTONERS = ("minor", "small")
VERDICT_MODIFIERS = {
    "recommend": ("highly", "definitely", "happily"),
    "worth": ("definitely", "really", "well"),
    "skip": ("definitely", "just", "probably"),
    "regret": ("deeply", "really", "slightly"),
}

# Negators each clause template can take ("" = not negated). "not at all" puts "at all" at the clause end.
NEGATORS = {
    "copula": ("not", "never", "hardly", "far from", "not at all"),
    "seemed": ("not", "never"),
    "felt": ("not", "never"),
    "found": ("not", "never", "not at all"),
    "nothing": ("nothing",),
    "verb": ("not", "never", "not at all"),
    "noun": ("not", "far from", "hardly", "no"),
    "verdict": ("not", "never", "hardly"),
}
_VERDICT_NEGATORS = {"recommend": ("not", "never"), "worth": ("not", "hardly"), "skip": ("not",),
                     "regret": ("not", "never")}  # fmt: skip
# Negators after which an intensifier may follow ("not very good", "never really boring").
_MODIFIABLE_NEGATORS = ("not", "never")

# Subjects of opinion clauses: aspects of the film and the film itself.
SINGULAR_SUBJECTS = (
    "the acting", "the plot", "the story", "the script", "the dialogue", "the soundtrack", "the score",
    "the cinematography", "the direction", "the ending", "the pacing", "the cast", "the lead actor",
    "the lead actress", "the villain", "the humor", "the editing", "the camera work", "the first act",
    "the final scene", "the twist", "the opening scene", "the music", "the set design", "the screenplay",
    "the film", "the movie", "this film", "this movie", "the sequel", "the whole thing", "it",
)  # fmt: skip
PLURAL_SUBJECTS = (
    "the special effects", "the costumes", "the visuals", "the performances", "the characters",
    "the action scenes", "the jokes", "the songs",
)  # fmt: skip
_PLURAL = frozenset(PLURAL_SUBJECTS)
_ALL_SUBJECTS = SINGULAR_SUBJECTS + PLURAL_SUBJECTS

CONNECTIVES = ("but", ", but", ", yet", "although", "even though", "while", ", although", ", even though",
               "however")  # fmt: skip
_CONCESSION_FIRST = {"but": ("", "but"), ", but": ("", ", but"), ", yet": ("", ", yet"),
                     "although": ("although", ","), "even though": ("even though", ","),
                     "while": ("while", ","), "however": ("", ". however ,")}  # fmt: skip
_ASSERTION_FIRST = frozenset((", although", ", even though"))
OPINION_PREFIXES = ("honestly ,", "frankly ,", "i think", "in my opinion ,", "overall ,", "in the end ,",
                    "to me ,")  # fmt: skip

# ----------------------------------------------------------------------------------------------------------
# The latent plan.


@dataclasses.dataclass(frozen=True)
class SentimentExample:
    """One review: lower-cased, whitespace-tokenisable text and its label (0 = negative, 1 = positive)."""

    text: str
    label: int


@dataclasses.dataclass(frozen=True)
class Clause:
    """One opinion clause.

    Attributes:
      template: one of `NEGATORS`' keys — "copula" (the plot was dull), "seemed"/"felt" (the plot felt dull),
        "found" (i found the plot dull), "nothing" (there was something dull about the plot), "verb"
        (i loved the plot), "noun" (the film was a mess) or "verdict" (i would recommend it).
      word: the sentiment word from the lexicon (`POLARITY` gives its sign).
      subject: who or what the opinion is about (ignored by "verdict").
      negator: "" or one of `NEGATORS[template]`; any negator flips the polarity.
      modifier: "" or an intensifier/downtoner (never flips the polarity).
      present: "is"/"are" instead of "was"/"were" (copula and nothing templates).
    """

    template: str
    word: str
    subject: str = "the film"
    negator: str = ""
    modifier: str = ""
    present: bool = False


@dataclasses.dataclass(frozen=True)
class Opinion:
    """An asserted clause, optionally with a conceded clause joined by a contrast connective."""

    assertion: Clause
    concession: Clause | None = None
    connective: str = ""
    prefix: str = ""


@dataclasses.dataclass(frozen=True)
class Filler:
    """A neutral sentence."""

    text: str


Part = Opinion | Filler


@dataclasses.dataclass(frozen=True)
class ReviewPlan:
    """The latent plan of one review: its sentences in order."""

    parts: tuple[Part, ...]


def clause_polarity(clause: Clause) -> int:
    """+1 or -1: the word's polarity, flipped when the clause is negated."""
    sign = POLARITY[clause.word]
    return -sign if clause.negator else sign


def label_of(plan: ReviewPlan) -> int:
    """The label a plan implies: the shared polarity of its asserted clauses (1 = positive)."""
    signs = {clause_polarity(p.assertion) for p in plan.parts if isinstance(p, Opinion)}
    if len(signs) != 1:
        raise ValueError(f"a plan needs asserted clauses of one polarity, got {sorted(signs)}")
    return int(signs.pop() > 0)


# ----------------------------------------------------------------------------------------------------------
# Rendering a plan to text.


def _be(subject: str, present: bool) -> str:
    plural = subject in _PLURAL
    return ("are" if plural else "is") if present else ("were" if plural else "was")


def _with_article(words: str) -> str:
    return ("an " if words[0] in "aeiou" else "a ") + words


def _negated(negator: str, modifier: str, head: str) -> list[str]:
    """`not very good`, `never really boring`, `hardly good`, `far from good`; "at all" is added later."""
    neg = "not" if negator == "not at all" else negator
    return [neg, *([modifier] if modifier else []), head]


def _render_copula(c: Clause) -> list[str]:
    be = _be(c.subject, c.present)
    if not c.negator:
        return [c.subject, be, *([c.modifier] if c.modifier else []), c.word]
    return [c.subject, be, *_negated(c.negator, c.modifier, c.word)]


def _render_linking(c: Clause) -> list[str]:
    verb = c.template  # "seemed" or "felt"
    mod = [c.modifier] if c.modifier else []
    if not c.negator:
        return [c.subject, verb, *mod, c.word]
    if c.negator == "never":
        return [c.subject, "never", verb, *mod, c.word]
    return [c.subject, "did not", _LINKING_BASE[verb], *mod, c.word]


def _render_found(c: Clause) -> list[str]:
    mod = [c.modifier] if c.modifier else []
    if not c.negator:
        return ["i found", c.subject, *mod, c.word]
    if c.negator == "never":
        return ["i never found", c.subject, *mod, c.word]
    return ["i did not find", c.subject, *mod, c.word]


def _render_nothing(c: Clause) -> list[str]:
    head = "nothing" if c.negator else "something"
    mod = [c.modifier] if c.modifier else []
    return ["there", _be("it", c.present), head, *mod, c.word, "about", c.subject]


def _render_verb(c: Clause) -> list[str]:
    mod = [c.modifier] if c.modifier else []
    if not c.negator:
        return ["i", *mod, c.word, c.subject]
    if c.negator == "never":
        return ["i never", *mod, c.word, c.subject]
    return ["i did not", *mod, _VERB_BASE[c.word], c.subject]


def _render_noun(c: Clause) -> list[str]:
    be = _be(c.subject, c.present)
    if c.negator == "no":
        return [c.subject, be, "no", c.word]
    noun = _with_article(f"{c.modifier} {c.word}" if c.modifier else c.word)
    return [c.subject, be, *([c.negator] if c.negator else []), noun]


def _render_verdict(c: Clause) -> list[str]:
    mod = [c.modifier] if c.modifier else []
    neg = [c.negator] if c.negator else []
    if c.word == "recommend":
        return ["i would", *neg, *mod, "recommend it"]
    if c.word == "worth":
        return ["it is", *neg, *mod, "worth watching"]
    if c.word == "skip":
        return ["you should", *neg, *mod, "skip it"]
    if c.negator == "never":
        return ["i never regretted watching it"]
    return ["i", *(["do not"] if c.negator else []), *mod, "regret watching it"]


_RENDERERS = {
    "copula": _render_copula,
    "seemed": _render_linking,
    "felt": _render_linking,
    "found": _render_found,
    "nothing": _render_nothing,
    "verb": _render_verb,
    "noun": _render_noun,
    "verdict": _render_verdict,
}


def render_clause(clause: Clause) -> str:
    """The clause as text, without final punctuation."""
    pieces = _RENDERERS[clause.template](clause)
    if clause.negator == "not at all":
        pieces.append("at all")
    return " ".join(pieces)


def render_opinion(opinion: Opinion) -> str:
    """The opinion as one sentence (two for "however"), ending with " ."."""
    main = render_clause(opinion.assertion)
    if opinion.concession is None:
        body = f"{opinion.prefix} {main}" if opinion.prefix else main
        return f"{body} ."
    conceded = render_clause(opinion.concession)
    if opinion.connective in _ASSERTION_FIRST:
        return f"{main} {opinion.connective} {conceded} ."
    lead, middle = _CONCESSION_FIRST[opinion.connective]
    first = f"{lead} {conceded}" if lead else conceded
    return f"{first} {middle} {main} ."


def render(plan: ReviewPlan) -> str:
    """The review text of a plan."""
    return " ".join(render_opinion(p) if isinstance(p, Opinion) else p.text for p in plan.parts)


# ----------------------------------------------------------------------------------------------------------
# Sampling plans.


_TEMPLATES = {"copula": 0.34, "seemed": 0.05, "felt": 0.04, "found": 0.12, "nothing": 0.07, "verb": 0.16,
              "noun": 0.11, "verdict": 0.11}  # fmt: skip
_ASSERTED_TEMPLATES = Weighted(_TEMPLATES)
_CONCEDED_TEMPLATES = Weighted({t: w for t, w in _TEMPLATES.items() if t != "verdict"})
_CONNECTIVES = Weighted(dict(zip(CONNECTIVES, (0.28, 0.1, 0.05, 0.13, 0.08, 0.08, 0.1, 0.06, 0.12),
                                  strict=True)))  # fmt: skip
_OPINION_COUNTS = Weighted({1: 0.55, 2: 0.33, 3: 0.12})
_FILLER_COUNTS = Weighted({0: 0.2, 1: 0.35, 2: 0.3, 3: 0.15})
_NEGATION_RATE = 0.35
_CONTRAST_RATE = 0.5


_ADJECTIVES = (POSITIVE_ADJECTIVES, NEGATIVE_ADJECTIVES)
# template -> (positive words, negative words)
_WORDS_BY_TEMPLATE = {
    "copula": _ADJECTIVES,
    "seemed": _ADJECTIVES,
    "felt": _ADJECTIVES,
    "found": _ADJECTIVES,
    "nothing": _ADJECTIVES,
    "verb": (tuple(p for p, _ in POSITIVE_VERBS), tuple(p for p, _ in NEGATIVE_VERBS)),
    "noun": (POSITIVE_NOUNS, NEGATIVE_NOUNS),
    "verdict": (POSITIVE_VERDICTS, NEGATIVE_VERDICTS),
}


def _lexicon(template: str, sign: int) -> Sequence[str]:
    positive, negative = _WORDS_BY_TEMPLATE[template]
    return positive if sign > 0 else negative


def _sample_modifier(u: Uniforms, template: str, word: str, negator: str) -> str:
    """An intensifier or downtoner that fits the clause, or "" (no modifier)."""
    if negator:  # 30% of "not"/"never" clauses: "not very good", "did not really enjoy", "never really dull"
        if negator not in _MODIFIABLE_NEGATORS or template in ("noun", "nothing") or u.bernoulli(0.7):
            return ""
        if template == "verdict":
            return "really" if word in ("recommend", "worth") else ""
        return u.choice(NEGATED_VERB_INTENSIFIERS if template == "verb" else NEGATED_INTENSIFIERS)
    if u.bernoulli(0.55):  # 45% of plain clauses have a modifier, 70% of those an intensifier
        return ""
    if template == "verdict":
        return u.choice(VERDICT_MODIFIERS[word])
    strong = u.bernoulli(0.7)
    if template == "verb":
        return u.choice(VERB_INTENSIFIERS if strong else VERB_DOWNTONERS)
    if template == "noun":
        return u.choice(NOUN_INTENSIFIERS if strong else NOUN_DOWNTONERS)
    return u.choice(INTENSIFIERS if strong or template == "nothing" else DOWNTONERS)


def _sample_clause(u: Uniforms, polarity: int, *, conceded: bool = False, avoid: str = "") -> Clause:
    """A clause whose polarity (after negation) is `polarity`."""
    template = u.weighted(_CONCEDED_TEMPLATES if conceded else _ASSERTED_TEMPLATES)
    negated = u.bernoulli(_NEGATION_RATE)
    word = u.choice(_lexicon(template, -polarity if negated else polarity))
    negators = _VERDICT_NEGATORS[word] if template == "verdict" else NEGATORS[template]
    negator = u.choice(negators) if negated else ""
    subjects = SINGULAR_SUBJECTS if template == "noun" else _ALL_SUBJECTS
    subject = u.choice(subjects)
    while subject == avoid:
        subject = u.choice(subjects)
    return Clause(
        template=template,
        word=word,
        subject=subject,
        negator=negator,
        modifier=_sample_modifier(u, template, word, negator),
        present=u.bernoulli(0.2),
    )


def _sample_opinion(u: Uniforms, polarity: int) -> Opinion:
    """A plain opinion, or (half the time) a contrast whose conceded clause has the opposite polarity."""
    assertion = _sample_clause(u, polarity)
    if not u.bernoulli(_CONTRAST_RATE):
        prefix = u.choice(OPINION_PREFIXES) if u.bernoulli(0.2) else ""
        return Opinion(assertion=assertion, prefix=prefix)
    concession = _sample_clause(u, -polarity, conceded=True, avoid=assertion.subject)
    connective = u.weighted(_CONNECTIVES)
    return Opinion(assertion=assertion, concession=concession, connective=connective)


def _sample_filler(u: Uniforms) -> Filler:
    template, slots = u.choice(PARSED_FILLERS)
    values: dict[str, str] = {}
    for slot in slots:  # an "other_X" slot differs from its "X" slot, which comes first in the template
        value = u.choice(FILLER_SLOTS[slot])
        while slot.startswith("other_") and value == values[slot.removeprefix("other_")]:
            value = u.choice(FILLER_SLOTS[slot])
        values[slot] = value
    return Filler(template.format(**values))


def _num_tokens(text: str) -> int:
    return text.count(" ") + 1


def _sample_opinions(u: Uniforms, polarity: int) -> tuple[list[Opinion], list[str]]:
    """Opinions that all assert `polarity`, and their texts, together at most `MAX_TOKENS` long."""
    while True:
        opinions = [_sample_opinion(u, polarity) for _ in range(u.weighted(_OPINION_COUNTS))]
        texts = [render_opinion(o) for o in opinions]
        if sum(_num_tokens(t) for t in texts) <= MAX_TOKENS:
            return opinions, texts


def _sample_plan(u: Uniforms, polarity: int) -> tuple[ReviewPlan, str]:
    """A plan of `MIN_TOKENS`..`MAX_TOKENS` tokens asserting `polarity`, and its text."""
    while True:
        opinions, texts = _sample_opinions(u, polarity)
        parts: list[Part] = list(opinions)
        length = sum(_num_tokens(t) for t in texts)
        wanted = u.weighted(_FILLER_COUNTS)
        for _ in range(2 * len(_FILLER_COUNTS.options)):
            if length >= MIN_TOKENS and wanted <= 0:
                break
            filler = _sample_filler(u)
            if filler.text not in texts and length + _num_tokens(filler.text) <= MAX_TOKENS:
                position = int(u.random() * (len(parts) + 1))
                parts.insert(position, filler)
                texts.insert(position, filler.text)
                length += _num_tokens(filler.text)
                wanted -= 1
        if length >= MIN_TOKENS:
            return ReviewPlan(tuple(parts)), " ".join(texts)


# ----------------------------------------------------------------------------------------------------------
# Splits and the public entry point.


def _split_of(text: str) -> str:
    return split_of(text, b"attnjax-senti")


def _check_args(split: str, num_examples: int | None) -> int:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r} for builtin:sentiment; valid splits: {', '.join(SPLITS)}")
    n = DEFAULT_SIZES[split] if num_examples is None else num_examples
    if n < 0:
        raise ValueError(f"num_examples must be >= 0, got {n}")
    return n


def _generate(split: str, num_examples: int | None, seed: int) -> list[tuple[ReviewPlan, str]]:
    """Distinct (plan, text) pairs whose texts hash to `split`, with exactly balanced polarities."""
    n = _check_args(split, num_examples)
    rng = split_rng("sentiment", split, seed)
    polarities = rng.permutation(np.arange(n) % 2).tolist()  # exactly balanced, in random order
    u = Uniforms(rng)
    planned: list[tuple[ReviewPlan, str]] = []
    seen: set[str] = set()
    for positive in polarities:
        while True:
            plan, text = _sample_plan(u, 1 if positive else -1)
            if text not in seen and _split_of(text) == split:
                break
        seen.add(text)
        planned.append((plan, text))
    return planned


def generate_plans(split: str, num_examples: int | None = None, *, seed: int = 0) -> list[ReviewPlan]:
    """The latent plans behind `generate(split, num_examples, seed=seed)`, in the same order."""
    return [plan for plan, _ in _generate(split, num_examples, seed)]


def generate(split: str, num_examples: int | None = None, *, seed: int = 0) -> list[SentimentExample]:
    """Generated reviews for `split` ('train', 'validation' or 'test').

    Args:
      split: which split; the splits never share a review text, whatever the seeds.
      num_examples: how many; defaults to `DEFAULT_SIZES[split]` (20 000 / 2 000 / 2 000).
      seed: selects a different, equally valid sample of the same split.

    Returns:
      Distinct examples, half of each label (within one), deterministic in (split, num_examples, seed).

    Raises:
      ValueError: for an unknown split or a negative `num_examples`.
    """
    return [SentimentExample(text, label_of(plan)) for plan, text in _generate(split, num_examples, seed)]
