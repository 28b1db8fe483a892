"""`builtin:summarization` — generated news stories whose summaries must copy rare names and numbers.

Each document (40 to 120 lower-case, whitespace-separated tokens, punctuation as separate tokens) is a
short news story about one event of eight kinds (a marathon, an election, a gift of books, a rescue, a
find of coins, a concert, a giant pumpkin, a new factory; templates in `summarization_events`). It has

* one lead sentence stating who did what, where and how many, in one of four surface forms (active,
  passive, fronted, or split over two sentences with the number given after a pronoun); it is the first
  sentence of about half the documents and the second or third of the others;
* 0–2 detail sentences about the same person, naming them by surname only;
* 1–3 distractor sentences of the same kind about other people, other towns and other numbers
  ("{other} from {place2} came second , {m} seconds behind ."); in about half of the documents one of
  them repeats the lead's wording about an earlier event ("last year {other} won the {place2} marathon in
  {m} minutes ."), so that only "last year" tells it from the lead;
* 1–3 filler sentences about the weather, the crowd or the roads, some with more names and numbers.

The summary is a deterministic headline built from the lead alone, e.g.
``"tavo brenkaiwick wins drumiford marathon in 231 minutes"`` (6 to 15 tokens). Every name, town and
number in it occurs in the document, and the document always holds other names or numbers that must not
be copied.

Why copying is needed: person names are 2–3 random syllables (first names) and 2–4 (surnames), towns
1–2 syllables plus a suffix such as "-wick", and numbers range over up to 97 000 values, so most of them
occur only a few times in the training data, most surnames of an evaluation story never occur there, and
a ~2 000-word vocabulary holds the event words but few names. A pointer-generator (See et al., 2017)
copies them from the document; the same model without copying can only produce ``<unk>`` in their place.
Choosing what to copy needs attention: the right name is the one in the lead sentence, not in the
distractors that look like it, and in the split leads the number follows a pronoun in the next sentence.

Splits are disjoint by construction: a stable hash of the document assigns every possible document to
exactly one split (80% train, 10% validation, 10% test), and each split keeps only its own documents.
Generation is deterministic: the random stream is `numpy.random.Generator(PCG64)` seeded from a BLAKE2
hash of (seed, split).
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple, TypeVar

from attn_jax.data.builtin import draws
from attn_jax.data.builtin import summarization_events as E
from attn_jax.data.builtin.draws import Uniforms, split_rng

SPLITS = ("train", "validation", "test")
DEFAULT_SIZES = {"train": 30_000, "validation": 1_000, "test": 1_000}
MIN_TOKENS = 40
MAX_TOKENS = 120
MIN_SUMMARY_TOKENS = 6
MAX_SUMMARY_TOKENS = 15

Pair = tuple[str, str]
T = TypeVar("T")
KINDS = tuple(E.EVENTS)

_SLOT = re.compile(r"\{(\w+)\}")


def _template_words() -> frozenset[str]:
    templates = [*E.FILLERS]
    for event in E.EVENTS.values():
        templates += [*event.leads, event.summary, *event.details, *event.distractors]
    return frozenset(w for t in templates for w in _SLOT.sub(" ", t).split())


# The words of the templates, weekdays and pronouns: everything in a document that is not a name or number.
COMMON_WORDS = _template_words() | frozenset(E.DAYS) | {"he", "she", "his", "her"}


class Story(NamedTuple):
    """The facts behind one document: the event (which the summary states) and what it must leave out."""

    kind: str
    agent: str  # "first last"
    place: str
    number: int
    day: str
    other_names: tuple[str, ...]  # full names of the other people mentioned
    other_places: tuple[str, ...]
    other_numbers: tuple[int, ...]  # numbers and years that are not the event's number


class SummarizationExample(NamedTuple):
    """A document, its summary and the story behind both."""

    document: str
    summary: str
    story: Story


# ----------------------------------------------------------------------------------------------------------
# Invented names, places and numbers.


_OPEN_SYLLABLES = tuple(o + v for o in E.ONSETS for v in E.VOWELS)
_CLOSED_SYLLABLES = tuple(s + c for s in _OPEN_SYLLABLES for c in E.CODAS)
_CLOSED_RATE = 0.25


def _syllable(r: float) -> str:
    """The syllable for a uniform draw ``r``: a closed one (with a coda) for the first quarter of [0, 1)."""
    if r < _CLOSED_RATE:
        return _CLOSED_SYLLABLES[int(r / _CLOSED_RATE * len(_CLOSED_SYLLABLES))]
    return _OPEN_SYLLABLES[int((r - _CLOSED_RATE) / (1 - _CLOSED_RATE) * len(_OPEN_SYLLABLES))]


def _word(u: Uniforms, syllables: int) -> str:
    """An invented word of ``syllables`` onset + vowel (+ coda) syllables, one draw each."""
    random = u.random
    return "".join([_syllable(random()) for _ in range(syllables)])


class _Names:
    """Fresh invented names, towns and numbers for one story; none repeats within the story."""

    def __init__(self, u: Uniforms, numbers: tuple[int, int]):
        self.u = u
        self.numbers = numbers
        self.used: set[str] = set()

    def _new(self, word: str) -> bool:
        """Whether ``word`` is unused in this story and not a template word; if so, it is now used."""
        if word in self.used or word in COMMON_WORDS:
            return False
        self.used.add(word)
        return True

    def person(self) -> tuple[str, str]:
        """(first name of 2-3 syllables, surname of 2-4 syllables)."""
        u = self.u
        while not self._new(first := _word(u, 2 + (u.random() < 0.3))):
            pass
        while not self._new(last := _word(u, 2 + int(u.random() * 3))):
            pass
        return first, last

    def place(self) -> str:
        """A town: 1-2 syllables and a suffix."""
        u = self.u
        while not self._new(town := _word(u, 1 + (u.random() < 0.5)) + u.choice(E.PLACE_SUFFIXES)):
            pass
        return town

    def number(self) -> str:
        while not self._new(number := str(self.u.integer(*self.numbers))):
            pass
        return number

    def year(self) -> str:
        while not self._new(year := str(self.u.integer(*E.YEARS))):
            pass
        return year


# ----------------------------------------------------------------------------------------------------------
# Stories.


_DETAIL_COUNTS = (0, 1, 1, 2)
_DISTRACTOR_COUNTS = (1, 2, 2, 3)
_FILLER_COUNTS = (1, 2, 2, 3)


@functools.cache
def _slots(template: str) -> tuple[str, ...]:
    """The slots of ``template`` that take fresh names, towns or numbers, in order of first use."""
    return tuple(dict.fromkeys(s for s in _SLOT.findall(template) if s in ("other", "place2", "m", "year")))


def _fill(template: str, slots: dict[str, str], names: _Names, story: dict[str, list[str]]) -> str:
    """``template`` with the story's slots filled and fresh other names, towns and numbers drawn."""
    fresh = _slots(template)
    if not fresh:
        return template.format(**slots)
    values = dict(slots)
    for slot in fresh:
        if slot == "other":
            first, last = names.person()
            values["other"] = f"{first} {last}"
            story["names"].append(values["other"])
        elif slot == "place2":
            values[slot] = names.place()
            story["places"].append(values[slot])
        elif slot == "m":
            values[slot] = names.number()
            story["numbers"].append(values[slot])
        elif slot == "year":
            values[slot] = names.year()
            story["numbers"].append(values[slot])
    return template.format(**values)


def _sample_story(u: Uniforms) -> tuple[Story, str, str]:
    kind = u.choice(KINDS)
    event = E.EVENTS[kind]
    names = _Names(u, event.numbers)
    first, last = names.person()
    female = u.bernoulli(0.5)
    slots = {
        "agent": f"{first} {last}", "last": last, "pron": "she" if female else "he",
        "pos": "her" if female else "his", "place": names.place(), "n": names.number(),
        "day": u.choice(E.DAYS),
    }  # fmt: skip
    others: dict[str, list[str]] = {"names": [], "places": [], "numbers": []}
    lead = _fill(u.choice(event.leads), slots, names, others)
    details = [_fill(t, slots, names, others)
               for t in u.sample(event.details, u.choice(_DETAIL_COUNTS))]  # fmt: skip
    background = [_fill(t, slots, names, others)
                  for t in u.sample(event.distractors, u.choice(_DISTRACTOR_COUNTS))]  # fmt: skip
    background += [_fill(t, slots, names, others)
                   for t in u.sample(E.FILLERS, u.choice(_FILLER_COUNTS))]  # fmt: skip
    background = u.shuffled(background)
    before = 0 if u.bernoulli(0.5) else min(len(background), 1 + u.bernoulli(0.5))
    after = u.shuffled(details + background[before:])
    document = " ".join([*background[:before], lead, *after])
    story = Story(
        kind=kind, agent=slots["agent"], place=slots["place"], number=int(slots["n"]), day=slots["day"],
        other_names=tuple(others["names"]), other_places=tuple(others["places"]),
        other_numbers=tuple(int(n) for n in others["numbers"]),
    )  # fmt: skip
    return story, document, event.summary.format(**slots)


# ----------------------------------------------------------------------------------------------------------
# Splits and the public entry point.


def split_of(document: str) -> str:
    """The one split a document may belong to: 80% train, 10% validation, 10% test."""
    return draws.split_of(document, b"attnjax-summ")


def generate_examples(split: str, limit: int | None = None, seed: int = 0) -> list[SummarizationExample]:
    """Like `generate`, with the story behind each pair."""
    if split not in SPLITS:
        raise ValueError(
            f"unknown split {split!r} for builtin:summarization; valid splits: {', '.join(SPLITS)}"
        )
    n = DEFAULT_SIZES[split] if limit is None else limit
    if n < 0:
        raise ValueError(f"limit must be >= 0, got {n}")
    u = Uniforms(split_rng("summarization", split, seed))
    examples: list[SummarizationExample] = []
    seen: set[str] = set()
    while len(examples) < n:
        story, document, summary = _sample_story(u)
        if (
            MIN_TOKENS <= document.count(" ") + 1 <= MAX_TOKENS
            and document not in seen and split_of(document) == split
        ):  # fmt: skip
            seen.add(document)
            examples.append(SummarizationExample(document, summary, story))
    return examples


def generate(split: str, limit: int | None = None, seed: int = 0) -> list[Pair]:
    """Generated (document, summary) pairs of ``split`` ('train', 'validation' or 'test').

    Args:
      split: which split; the splits never share a document, whatever the seeds.
      limit: how many pairs; defaults to `DEFAULT_SIZES[split]` (30 000 / 1 000 / 1 000).
      seed: selects a different, equally valid sample of the same split.

    Returns:
      Pairs with distinct documents, deterministic in (split, limit, seed).

    Raises:
      ValueError: for an unknown split or a negative ``limit``.
    """
    return [(e.document, e.summary) for e in generate_examples(split, limit, seed)]
