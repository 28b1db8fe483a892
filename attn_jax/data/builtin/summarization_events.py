"""Sentence templates of ``builtin:summarization``: news events, distracting details and filler.

Slots in braces are filled by `attn_jax.data.builtin.summarization`: ``{agent}`` is the full name of the
person the story is about, ``{last}`` their surname, ``{pron}`` and ``{pos}`` their pronouns (he/his,
she/her), ``{place}`` where the event happened, ``{n}`` its number, ``{day}`` a weekday; ``{other}`` is
another person, ``{place2}`` another town, ``{m}`` another number and ``{year}`` a year, none of which
belongs in the summary. Hand-written for this project.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class EventKind:
    """One kind of news event.

    Attributes:
      numbers: (low, high) range of ``{n}`` and ``{m}`` for this event.
      leads: sentences stating the event: who, where and how many (a second sentence after " . " may carry
        the number, referring to the agent by pronoun).
      summary: the summary template; a deterministic function of the event's slots.
      details: sentences about the agent that add no new summary content.
      distractors: sentences with other people, places and numbers of the same kind; the first one repeats
        a lead's wording about an earlier event ("last year ...", "in {year} ..."), so only that cue tells
        it from the lead.
    """

    numbers: tuple[int, int]
    leads: tuple[str, ...]
    summary: str
    details: tuple[str, ...]
    distractors: tuple[str, ...]


EVENTS = {
    "marathon": EventKind(
        numbers=(95, 400),
        leads=(
            "{agent} won the {place} marathon on {day} in {n} minutes .",
            "on {day} , {agent} won the {place} marathon in a time of {n} minutes .",
            "the {place} marathon was won on {day} by {agent} , who finished in {n} minutes .",
            "{agent} won the {place} marathon on {day} . {pron} crossed the line after {n} minutes .",
        ),
        summary="{agent} wins {place} marathon in {n} minutes",
        details=(
            "{last} said {pron} had trained every morning for a year .",
            "it was the first marathon win for {last} .",
            "{last} thanked {pos} coach and {pos} family after the race .",
        ),
        distractors=(
            "last year {other} won the {place2} marathon in {m} minutes .",
            "{other} from {place2} came second , {m} seconds behind .",
            "{other} , a runner from {place2} , had to stop after the first hour .",
            "{m} runners started the race this year .",
        ),
    ),
    "election": EventKind(
        numbers=(1200, 98000),
        leads=(
            "{agent} was elected mayor of {place} on {day} with {n} votes .",
            "on {day} the voters of {place} chose {agent} as their new mayor , with {n} votes .",
            "{agent} will be the next mayor of {place} after winning {n} votes on {day} .",
            "{agent} was elected mayor of {place} on {day} . {pron} received {n} votes .",
        ),
        summary="{agent} elected mayor of {place} with {n} votes",
        details=(
            "{last} promised to build new roads and a bigger school .",
            "{last} has worked for the town council for many years .",
            "{last} said {pron} would start work next week .",
        ),
        distractors=(
            "four years ago {other} was elected mayor of {place2} with {m} votes .",
            "{other} , the old mayor , got {m} votes .",
            "{other} from the green party won {m} votes .",
            "about {m} people did not vote at all .",
        ),
    ),
    "books": EventKind(
        numbers=(40, 9000),
        leads=(
            "{agent} gave {n} books to the library of {place} on {day} .",
            "on {day} the library of {place} received {n} books from {agent} .",
            "the library in {place} got a gift of {n} books from {agent} on {day} .",
            "{agent} gave a large gift to the library of {place} on {day} . {pron} donated {n} books .",
        ),
        summary="{agent} gives {n} books to {place} library",
        details=(
            "{last} said that reading had changed {pos} life .",
            "{last} collected the books over many years .",
            "the library will put the books from {last} on a new shelf .",
        ),
        distractors=(
            "last year {other} gave {m} books to the library of {place2} .",
            "the library already owns {m} books .",
            "{other} , who runs the library , said it needs more space .",
            "the library in {place2} lost {m} books in a fire .",
        ),
    ),
    "rescue": EventKind(
        numbers=(6, 950),
        leads=(
            "firefighters led by {agent} saved {n} people from a flood in {place} on {day} .",
            "on {day} a team led by {agent} rescued {n} people from the flood in {place} .",
            "{n} people were saved from a flood in {place} on {day} by a team led by {agent} .",
            "{agent} led the rescue team in {place} on {day} . {pron} and the team saved {n} people .",
        ),
        summary="{agent} leads rescue of {n} people from flood in {place} on {day}",
        details=(
            "{last} said the water rose very fast .",
            "{last} has been a firefighter for many years .",
            "the town will give {last} a medal next month .",
        ),
        distractors=(
            "in {year} firefighters led by {other} saved {m} people from a flood in {place2} .",
            "{other} , who leads the team in {place2} , sent {m} boats .",
            "the flood damaged {m} houses .",
            "{other} said the rain would stop by the weekend .",
        ),
    ),
    "coins": EventKind(
        numbers=(12, 4000),
        leads=(
            "a farmer named {agent} found {n} old coins near {place} on {day} .",
            "on {day} {agent} found {n} old coins in a field near {place} .",
            "{n} old coins were found near {place} by {agent} on {day} .",
            "{agent} was working in a field near {place} on {day} . {pron} found {n} old coins .",
        ),
        summary="{agent} finds {n} old coins near {place}",
        details=(
            "{last} said {pron} first thought it was a stone .",
            "{last} called the museum at once .",
            "{last} hopes to keep some of the coins .",
        ),
        distractors=(
            "in {year} a farmer named {other} found {m} old coins near {place2} .",
            "an expert named {other} said the coins are about {m} years old .",
            "the museum in {place2} already has {m} old coins .",
            "{other} , who owns the field , was not at home .",
        ),
    ),
    "concert": EventKind(
        numbers=(150, 85000),
        leads=(
            "{agent} played for {n} fans in {place} on {day} .",
            "on {day} {n} fans came to hear {agent} play in {place} .",
            "the singer {agent} gave a concert for {n} fans in {place} on {day} .",
            "{agent} gave a concert in {place} on {day} . {pron} played for {n} fans .",
        ),
        summary="{agent} plays for {n} fans in {place} on {day}",
        details=(
            "{last} played new songs and old ones .",
            "{last} said the fans in {place} were the best .",
            "the concert by {last} lasted almost three hours .",
        ),
        distractors=(
            "last year {other} played for {m} fans in {place2} .",
            "{other} from {place2} played first for a short time .",
            "tickets cost {m} dollars .",
            "{other} , who planned the concert , was very happy .",
        ),
    ),
    "pumpkin": EventKind(
        numbers=(110, 1300),
        leads=(
            "{agent} grew a pumpkin of {n} kilograms in {place} .",
            "on {day} the biggest pumpkin in {place} was shown by {agent} , at {n} kilograms .",
            "a pumpkin grown by {agent} in {place} weighed {n} kilograms on {day} .",
            "{agent} showed a giant pumpkin in {place} on {day} . it weighed {n} kilograms .",
        ),
        summary="{agent} grows {n} kilogram pumpkin",
        details=(
            "{last} gave the pumpkin water every day .",
            "{last} said {pron} would grow an even bigger one .",
            "{last} has grown pumpkins since {pron} was a child .",
        ),
        distractors=(
            "last year {other} grew a pumpkin of {m} kilograms in {place2} .",
            "{other} from {place2} showed a pumpkin of {m} kilograms .",
            "the old record of {m} kilograms was set by {other} .",
            "{other} , a judge , weighed every pumpkin twice .",
        ),
    ),
    "factory": EventKind(
        numbers=(20, 6000),
        leads=(
            "{agent} will open a factory in {place} with {n} new jobs .",
            "on {day} {agent} said a new factory in {place} will bring {n} jobs .",
            "a new factory with {n} jobs will open in {place} , said {agent} on {day} .",
            "{agent} plans to open a factory in {place} next year . {pron} said it will have {n} jobs .",
        ),
        summary="{agent} to open factory with {n} jobs in {place}",
        details=(
            "{last} said the town was a good place to work .",
            "{last} started the company with {pos} brother .",
            "{last} hopes the factory will be ready in the spring .",
        ),
        distractors=(
            "last year {other} opened a factory in {place2} with {m} jobs .",
            "the town has about {m} people without work .",
            "{other} , the mayor , said the news was good for everyone .",
            "the factory will cost {m} thousand dollars .",
        ),
    ),
}

# Sentences that fit any event; some carry other names and numbers.
FILLERS = (
    "the weather was cold and windy all day .",
    "the sun was out and the streets were full .",
    "many people came with their families .",
    "local shops stayed open late in the evening .",
    "the event was first held in {year} .",
    "a spokesperson said that everything went to plan .",
    "police said there were no problems .",
    "the local newspaper wrote about it on the front page .",
    "{other} , who lives in {place2} , said it was a great day .",
    "the road to {place} was closed for {m} hours .",
    "{other} took photos of the whole day .",
    "buses from {place2} were full all morning .",
    "a small band played music in the square .",
    "some visitors came from as far as {place2} .",
)
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
YEARS = (1954, 2019)  # range of {year}

# Syllables of invented names: onset + vowel (+ optional coda). Place names end in one of the suffixes.
ONSETS = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "br", "dr", "kr", "st",
          "tr", "sh", "ch")  # fmt: skip
VOWELS = ("a", "e", "i", "o", "u", "ai", "ei", "ou")
CODAS = ("n", "r", "l", "s", "m", "k")
PLACE_SUFFIXES = ("ton", "by", "dale", "wick", "ford", "holm", "mere", "stead")
