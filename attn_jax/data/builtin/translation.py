"""`builtin:translation` — a generated language pair whose sentences need real alignment to translate.

The source language is English-like (lower-case, whitespace-separated tokens, punctuation as separate
tokens); the target language is invented (`translation_lexicon` holds both vocabularies: about 230 source
and 330 target words). Both sides are rendered from one latent plan, so the target is a deterministic
function of the source and a perfect model scores BLEU 100.

Source grammar (SVO, adjectives before the noun, prepositions)::

    sentence := clause [("and" | "but") clause] "."
    clause   := [TIME ","] SUBJECT VERB-GROUP OBJECT [PREP NP] [ADVERB] [TIME]
    SUBJECT  := PRONOUN | NP                      (a person or an animal)
    NP       := DET ADJ{0,2} NOUN [RELATIVE]       DET: the, a/an, some, this, these, two..five
    RELATIVE := "that" VERB NP                     (on person/animal nouns; the inner NP has no relative)
    VERB-GROUP := sees | see | saw | does not see | do not see | did not see

Target grammar (SOV, verb-final, adjectives after the noun in mirror order, postpositions)::

    clause   := SUBJECT [TIME] [NP POSTPOSITION] OBJECT [ADVERB] ["nu"] ["vo"] VERB
    NP       := ARTICLE NOUN ADJ{0,2 reversed} [RELATIVE]
              | NOUN ADJ{0,2 reversed} NUMERAL [RELATIVE]
    RELATIVE := REL-PRONOUN NP ["vo"] VERB          (verb-final inside the relative clause too)

so the verb moves past its object (and past the prepositional phrase, which moves in front of the object),
a time phrase moves behind the subject (one target word for "every day", "in the morning", ...), manner
adverbs move before the verb, and "does not" / "did not" become the particles "nu" / "nu vo"; e.g.::

    yesterday , she did not take three buses with the big red dog .
    ila pasde ke vusk rusk morn sal ostoren trel nu vo volda .

Agreement: every target noun has a gender (m/f, arbitrary); articles ("ke, ka, ki, ku", ...),
adjectives (stem + "", -a, -i, -e) and relative pronouns agree with the noun's gender and number; verbs
take the ending of their subject's person and number (-em, -is, -a, -emo, -an), also when the subject is
a noun with a relative clause in between, and a relative clause's verb agrees with the noun it describes.
English marks little of this ("the", "saw", "did not see" carry no gender, person or number).

Context-dependent words (one source word, two target words, chosen by a neighbour):
"take" is "vold" (ride) with a vehicle as object and "kesh" (grab) otherwise; "hard" is "murv" (difficult)
before an idea noun (question, task, ...) and "tald" (firm) otherwise; "with" is "sal" (together with) before
a person or animal and "pol" (by means of) before a tool.

Sentences are 4 to 40 tokens on each side (mean about 13). `generate_examples` also returns the word
alignment implied by the plan, for comparing attention maps with it.

Splits are disjoint by construction: a stable hash of the source text assigns every possible sentence to
exactly one split (80% train, 10% validation, 10% test), and each split keeps only its own sentences.
Generation is deterministic: the random stream is `numpy.random.Generator(PCG64)` seeded from a BLAKE2
hash of (seed, split).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple, TypeVar

from attn_jax.data.builtin import draws
from attn_jax.data.builtin import translation_lexicon as L
from attn_jax.data.builtin.draws import Uniforms, split_rng

SPLITS = ("train", "validation", "test")
DEFAULT_SIZES = {"train": 40_000, "validation": 1_000, "test": 1_000}
MIN_TOKENS = 4
MAX_TOKENS = 40

Pair = tuple[str, str]
T = TypeVar("T")

NOUN_CATEGORY = {source: category for source, category, _, _ in L.NOUNS}
NOUN_GENDER = {source: gender for source, _, _, gender in L.NOUNS}
NOUN_STEM = {source: stem for source, _, stem, _ in L.NOUNS}
ADJECTIVE_STEM = dict(L.ADJECTIVES)
VERB_FORMS = {base: (third, past) for base, third, past, _, _ in L.VERBS}
VERB_STEM = {base: stem for base, _, _, stem, _ in L.VERBS}
VERB_OBJECTS = {base: objects for base, _, _, _, objects in L.VERBS}


def _nouns_by_category() -> dict[str, tuple[str, ...]]:
    table: dict[str, list[str]] = {}
    for source, category, _, _ in L.NOUNS:
        table.setdefault(category, []).append(source)
    return {category: tuple(nouns) for category, nouns in table.items()}


_NOUNS_BY_CATEGORY = _nouns_by_category()

# ----------------------------------------------------------------------------------------------------------
# The latent plan.


class NounPhrase(NamedTuple):
    """A noun with its determiner, adjectives (in source order) and an optional relative clause.

    ``determiner`` is "definite", "indefinite", "demonstrative" or a numeral ("two".."five", plural only).
    """

    noun: str
    number: str  # "sg" or "pl"
    determiner: str
    adjectives: tuple[str, ...] = ()
    relative: Relative | None = None  # a forward reference: Relative is defined below


class Relative(NamedTuple):
    """``that VERB OBJECT``, describing the noun it follows (which is its subject)."""

    verb: str
    tense: str  # "present" or "past"
    object: NounPhrase


class Clause(NamedTuple):
    """One main clause. ``subject`` is a pronoun (a key of `translation_lexicon.PRONOUNS`) or a noun
    phrase."""

    subject: str | NounPhrase
    verb: str
    tense: str
    object: NounPhrase
    negated: bool = False
    preposition: str = ""
    prepositional_object: NounPhrase | None = None
    adverb: str = ""
    time: str = ""
    time_first: bool = False


class Sentence(NamedTuple):
    """One or two clauses; two are joined by ``conjunction`` ("and" or "but")."""

    clauses: tuple[Clause, ...]
    conjunction: str = ""


@dataclasses.dataclass(frozen=True)
class TranslationExample:
    """A sentence pair, its plan, and the word alignment (source index, target index) the plan implies."""

    source: str
    target: str
    plan: Sentence
    alignment: tuple[tuple[int, int], ...]


# ----------------------------------------------------------------------------------------------------------
# Rendering: every piece of the plan is a unit with source and target words; the two sides put the units
# in different orders.


class _Unit:
    """Source words and the target words that translate them (compared by identity)."""

    __slots__ = ("source", "target")

    def __init__(self, source: tuple[str, ...], target: tuple[str, ...]):
        self.source = source
        self.target = target


_Units = list[_Unit]


def _agreement(np_: NounPhrase) -> tuple[str, str]:
    return NOUN_GENDER[np_.noun], np_.number


def adjective_form(adjective: str, noun: str, number: str) -> str:
    """The target adjective that agrees with ``noun`` (and, for "hard", translates it by the noun)."""
    stem = ADJECTIVE_STEM[adjective]
    if adjective == "hard":
        stem = L.HARD["idea" if NOUN_CATEGORY[noun] == "idea" else "other"]
    return stem + L.ADJECTIVE_ENDINGS[(NOUN_GENDER[noun], number)]


def verb_form(verb: str, person: str, obj: NounPhrase) -> str:
    """The target verb agreeing with ``person`` (and, for "take", translated by the object's category)."""
    stem = VERB_STEM[verb]
    if verb == "take":
        stem = L.TAKE["vehicle" if NOUN_CATEGORY[obj.noun] == "vehicle" else "other"]
    return stem + L.VERB_ENDINGS[person]


def _noun_phrase(np_: NounPhrase) -> tuple[_Units, _Units]:
    """(units in source order, the same units in target order)."""
    agree = _agreement(np_)
    noun_source = np_.noun if np_.number == "sg" else L.noun_plural(np_.noun)
    noun = _Unit((noun_source,), (L.target_noun(NOUN_STEM[np_.noun], np_.number),))
    adjectives = [_Unit((a,), (adjective_form(a, np_.noun, np_.number),)) for a in np_.adjectives]
    if np_.determiner in L.NUMERALS:
        determiner = _Unit((np_.determiner,), (L.NUMERALS[np_.determiner],))
        source, target = [determiner, *adjectives, noun], [noun, *reversed(adjectives), determiner]
    else:
        word = L.SOURCE_DETERMINERS[(np_.determiner, np_.number)]
        if word == "a" and (np_.adjectives[0] if np_.adjectives else np_.noun)[0] in "aeiou":
            word = "an"
        determiner = _Unit((word,), (L.ARTICLES[np_.determiner][agree],))
        source, target = [determiner, *adjectives, noun], [determiner, noun, *reversed(adjectives)]
    if np_.relative is not None:
        rel_source, rel_target = _relative(np_.relative, agree)
        source, target = source + rel_source, target + rel_target
    return source, target


def _relative(rel: Relative, agree: tuple[str, str]) -> tuple[_Units, _Units]:
    person = "3sg" if agree[1] == "sg" else "3pl"
    third, past = VERB_FORMS[rel.verb]
    verb_source = past if rel.tense == "past" else (third if person == "3sg" else rel.verb)
    verb_target = verb_form(rel.verb, person, rel.object)
    verb = _Unit((verb_source,), ((L.PAST, verb_target) if rel.tense == "past" else (verb_target,)))
    that = _Unit(("that",), (L.RELATIVE_PRONOUNS[agree],))
    obj_source, obj_target = _noun_phrase(rel.object)
    return [that, verb, *obj_source], [that, *obj_target, verb]


def _person(subject: str | NounPhrase) -> str:
    if isinstance(subject, str):
        return L.PRONOUNS[subject][1]
    return "3sg" if subject.number == "sg" else "3pl"


def _verb_group(clause: Clause, person: str) -> _Units:
    """[negation unit,] verb unit: "does not" -> "nu", "did not" -> "nu vo", "saw" -> "vo nara"."""
    third, past = VERB_FORMS[clause.verb]
    target = verb_form(clause.verb, person, clause.object)
    if clause.negated:
        aux = "did" if clause.tense == "past" else "does" if person == "3sg" else "do"
        negation = _Unit((aux, "not"), (L.NEGATION, L.PAST) if clause.tense == "past" else (L.NEGATION,))
        return [negation, _Unit((clause.verb,), (target,))]
    if clause.tense == "past":
        return [_Unit((past,), (L.PAST, target))]
    return [_Unit((third if person == "3sg" else clause.verb,), (target,))]


def _clause(clause: Clause) -> tuple[_Units, _Units]:
    person = _person(clause.subject)
    if isinstance(clause.subject, str):
        subj_source = subj_target = [_Unit((clause.subject,), (L.PRONOUNS[clause.subject][0],))]
    else:
        subj_source, subj_target = _noun_phrase(clause.subject)
    verb_group = _verb_group(clause, person)
    obj_source, obj_target = _noun_phrase(clause.object)
    pp_source: _Units = []
    pp_target: _Units = []
    if clause.prepositional_object is not None:
        np_source, np_target = _noun_phrase(clause.prepositional_object)
        post = postposition(clause.preposition, clause.prepositional_object.noun)
        prep = _Unit((clause.preposition,), (post,))
        pp_source, pp_target = [prep, *np_source], [*np_target, prep]
    adverb = [_Unit((clause.adverb,), (L.ADVERBS[clause.adverb],))] if clause.adverb else []
    time: _Units = []
    if clause.time:
        words = tuple(clause.time.split()) + ((",",) if clause.time_first else ())
        time = [_Unit(words, (L.TIMES[clause.time][0],))]
    source = [
        *(time if clause.time_first else []), *subj_source, *verb_group, *obj_source, *pp_source, *adverb,
        *([] if clause.time_first else time),
    ]  # fmt: skip
    target = [*subj_target, *time, *pp_target, *obj_target, *adverb, *verb_group]
    return source, target


def postposition(preposition: str, noun: str) -> str:
    """The target postposition (and, for "with", its translation chosen by the noun)."""
    if preposition == "with":
        return L.WITH["animate" if NOUN_CATEGORY[noun] in L.ANIMATE else "other"]
    return L.PREPOSITIONS[preposition][0]


def _sentence(plan: Sentence) -> tuple[_Units, _Units]:
    source, target = _clause(plan.clauses[0])
    for clause in plan.clauses[1:]:
        conjunction = _Unit((plan.conjunction,), (L.CONJUNCTIONS[plan.conjunction],))
        more_source, more_target = _clause(clause)
        source, target = [*source, conjunction, *more_source], [*target, conjunction, *more_target]
    stop = _Unit((".",), (".",))
    return [*source, stop], [*target, stop]


def render(plan: Sentence) -> Pair:
    """The source and target text of a plan."""
    source_units, target_units = _sentence(plan)
    return (
        " ".join([word for unit in source_units for word in unit.source]),
        " ".join([word for unit in target_units for word in unit.target]),
    )


def alignment_of(plan: Sentence) -> tuple[tuple[int, int], ...]:
    """The word alignment of a plan's rendering: (source index, target index) pairs, in target order.

    A target word is aligned to every source word of the piece of the plan it translates ("did not" ->
    "nu vo" aligns both words to both); punctuation is aligned to punctuation.
    """
    source_units, target_units = _sentence(plan)
    positions: dict[int, range] = {}
    start = 0
    for unit in source_units:
        positions[id(unit)] = range(start, start + len(unit.source))
        start += len(unit.source)
    alignment: list[tuple[int, int]] = []
    index = 0
    for unit in target_units:
        for _ in unit.target:
            alignment.extend((i, index) for i in positions[id(unit)])
            index += 1
    return tuple(alignment)


# ----------------------------------------------------------------------------------------------------------
# Sampling plans.


_ADJECTIVE_COUNTS = (0.5, 0.35, 0.15)
_PLURAL_RATE = 0.35
_SINGULAR_DETERMINERS = ("definite",) * 11 + ("indefinite",) * 6 + ("demonstrative",) * 3
_PLURAL_DETERMINERS = ("definite",) * 10 + ("indefinite",) * 4 + ("demonstrative",) * 2 + tuple(L.NUMERALS)
_ANIMATE_NOUNS = _NOUNS_BY_CATEGORY["person"] + _NOUNS_BY_CATEGORY["animal"]
_ADJECTIVES = tuple(source for source, _ in L.ADJECTIVES)
_VERBS = tuple(VERB_FORMS)
_RELATIVE_RATE = 0.2
_PRONOUN_RATE = 0.3
_PAST_RATE = 0.45
_NEGATION_RATE = 0.2
_PP_RATE = 0.4
_ADVERB_RATE = 0.15
_TIME_RATE = 0.25
_TIME_FIRST_RATE = 0.4
_TWO_CLAUSE_RATE = 0.25


def _nouns(categories: Sequence[str]) -> tuple[str, ...]:
    return tuple(n for c in categories for n in _NOUNS_BY_CATEGORY[c])


_OBJECT_NOUNS = {verb: _nouns(objects) for verb, objects in VERB_OBJECTS.items()}
_PP_NOUNS = {prep: _nouns(objects) for prep, (_, objects) in L.PREPOSITIONS.items()}


def _sample_np(u: Uniforms, nouns: Sequence[str], relative: bool) -> NounPhrase:
    noun = u.choice(nouns)
    number = "pl" if u.bernoulli(_PLURAL_RATE) else "sg"
    determiner = u.choice(_PLURAL_DETERMINERS if number == "pl" else _SINGULAR_DETERMINERS)
    adjectives: list[str] = []
    for _ in range(u.count(_ADJECTIVE_COUNTS)):
        adjective = u.choice(_ADJECTIVES)
        if adjective not in adjectives:
            adjectives.append(adjective)
    rel = None
    if relative and NOUN_CATEGORY[noun] in L.ANIMATE and u.bernoulli(_RELATIVE_RATE):
        verb = u.choice(_VERBS)
        rel = Relative(verb, "past" if u.bernoulli(_PAST_RATE) else "present",
                       _sample_np(u, _OBJECT_NOUNS[verb], relative=False))  # fmt: skip
    return NounPhrase(noun, number, determiner, tuple(adjectives), rel)


def _sample_clause(u: Uniforms, first: bool) -> Clause:
    if u.bernoulli(_PRONOUN_RATE):
        subject: str | NounPhrase = u.choice(tuple(L.PRONOUNS))
    else:
        subject = _sample_np(u, _ANIMATE_NOUNS, relative=True)
    verb = u.choice(_VERBS)
    tense = "past" if u.bernoulli(_PAST_RATE) else "present"
    subject_has_relative = isinstance(subject, NounPhrase) and subject.relative is not None
    obj = _sample_np(u, _OBJECT_NOUNS[verb], relative=not subject_has_relative)
    preposition, pp_object = "", None
    if u.bernoulli(_PP_RATE):
        preposition = u.choice(tuple(L.PREPOSITIONS))
        pp_object = _sample_np(u, _PP_NOUNS[preposition], relative=False)
    adverb = u.choice(tuple(L.ADVERBS)) if u.bernoulli(_ADVERB_RATE) else ""
    time = ""
    if u.bernoulli(_TIME_RATE):
        time = u.choice(tuple(t for t, (_, tenses) in L.TIMES.items() if tense in tenses))
    return Clause(
        subject=subject, verb=verb, tense=tense, object=obj, negated=u.bernoulli(_NEGATION_RATE),
        preposition=preposition, prepositional_object=pp_object, adverb=adverb, time=time,
        time_first=bool(time) and first and u.bernoulli(_TIME_FIRST_RATE),
    )  # fmt: skip


def _sample_sentence(u: Uniforms) -> Sentence:
    first = _sample_clause(u, first=True)
    if not u.bernoulli(_TWO_CLAUSE_RATE):
        return Sentence((first,))
    return Sentence((first, _sample_clause(u, first=False)), u.choice(tuple(L.CONJUNCTIONS)))


def _num_tokens(text: str) -> int:
    return text.count(" ") + 1


# ----------------------------------------------------------------------------------------------------------
# Splits and the public entry point.


def split_of(source: str) -> str:
    """The one split a source sentence may belong to: 80% train, 10% validation, 10% test."""
    return draws.split_of(source, b"attnjax-transl")


def _generate(split: str, limit: int | None, seed: int) -> list[tuple[Sentence, str, str]]:
    """Distinct (plan, source, target) triples whose sources hash to ``split``."""
    if split not in SPLITS:
        raise ValueError(
            f"unknown split {split!r} for builtin:translation; valid splits: {', '.join(SPLITS)}"
        )
    n = DEFAULT_SIZES[split] if limit is None else limit
    if n < 0:
        raise ValueError(f"limit must be >= 0, got {n}")
    u = Uniforms(split_rng("translation", split, seed))
    triples: list[tuple[Sentence, str, str]] = []
    seen: set[str] = set()
    while len(triples) < n:
        plan = _sample_sentence(u)
        source, target = render(plan)
        lengths = (_num_tokens(source), _num_tokens(target))
        if (
            MIN_TOKENS <= min(lengths) and max(lengths) <= MAX_TOKENS
            and source not in seen and split_of(source) == split
        ):  # fmt: skip
            seen.add(source)
            triples.append((plan, source, target))
    return triples


def generate_examples(split: str, limit: int | None = None, seed: int = 0) -> list[TranslationExample]:
    """Like `generate`, with each pair's plan and word alignment."""
    return [
        TranslationExample(source, target, plan, alignment_of(plan))
        for plan, source, target in _generate(split, limit, seed)
    ]


def generate(split: str, limit: int | None = None, seed: int = 0) -> list[Pair]:
    """Generated (source, target) sentence pairs of ``split`` ('train', 'validation' or 'test').

    Args:
      split: which split; the splits never share a source sentence, whatever the seeds.
      limit: how many pairs; defaults to `DEFAULT_SIZES[split]` (40 000 / 1 000 / 1 000).
      seed: selects a different, equally valid sample of the same split.

    Returns:
      Pairs with distinct source sentences, deterministic in (split, limit, seed).

    Raises:
      ValueError: for an unknown split or a negative ``limit``.
    """
    return [(source, target) for _, source, target in _generate(split, limit, seed)]
