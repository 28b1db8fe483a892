"""Neutral filler sentences of ``builtin:sentiment``: plot, cast, setting and viewing details, no opinion.

Some contain "not", "never", "nothing" or "but" without expressing any opinion, so that those words alone
do not decide a review's label. Hand-written for this project.
"""

from __future__ import annotations

import string

FILLER_SLOTS = {
    "place": ("a small town", "paris", "a space station", "the desert", "a farm", "new york", "an island",
              "a boarding school", "a hospital", "the mountains", "a submarine", "a castle",
              "a fishing village", "the suburbs", "tokyo", "a lighthouse", "the jungle"),
    "era": ("the winter", "the nineteen twenties", "the war", "the summer of 1985", "a single night",
            "the near future", "the middle ages", "a long weekend", "the gold rush", "the seventies"),
    "role": ("a young detective", "a retired teacher", "a struggling musician", "a farmer",
             "a pilot", "an old sailor", "a chef", "a journalist", "a soldier", "a nurse", "a boxer",
             "a thief", "a widowed father", "a lawyer", "a scientist", "a taxi driver"),
    "goal": ("tries to find a missing brother", "wants to win a chess tournament", "plans a bank robbery",
             "returns home after many years", "searches for a lost map", "opens a small restaurant",
             "has to cross the country", "investigates a series of thefts", "trains for a big fight",
             "inherits an old house", "looks after a stray dog", "learns to fly a plane"),
    "name": ("anna", "david", "maria", "tom", "lena", "omar", "sofia", "james", "kenji", "ruth", "pablo",
             "nina", "ivan", "grace", "samir", "helen", "marco", "yuki"),
    "surname": ("miller", "costa", "novak", "tanaka", "berg", "reyes", "walsh", "khan", "moreau", "silva",
                "fischer", "okafor", "larsen", "ward"),
    "when": ("last night", "on sunday", "last week", "on a plane", "yesterday", "over the holidays",
             "on a rainy evening", "at a festival", "at home", "on friday"),
    "companion": ("my sister", "a friend", "my parents", "my partner", "my kids", "two colleagues",
                  "my brother", "my roommate"),
    "minutes": ("ninety", "one hundred", "two hours", "about two and a half hours", "eighty"),
    "year": ("1994", "2003", "2011", "2016", "2019", "2021", "1987", "2008"),
    "duration": ("three days", "one summer", "ten years", "a single night", "two weeks", "a whole decade"),
}  # fmt: skip
FILLER_SLOTS["other_place"] = FILLER_SLOTS["place"]
FILLER_SLOTS["other_name"] = FILLER_SLOTS["name"]
FILLER_SLOTS["other_role"] = FILLER_SLOTS["role"]
FILLER_SLOTS["other_surname"] = FILLER_SLOTS["surname"]

FILLER_TEMPLATES = (
    "the film is set in {place} during {era} .",
    "it follows {role} who {goal} .",
    "{name} {surname} plays {role} .",
    "{name} {surname} plays {role} and {other_name} {other_surname} plays {other_role} .",
    "i watched it {when} with {companion} .",
    "it runs for {minutes} minutes .",
    "the story takes place over {duration} .",
    "it was directed by {name} {surname} and released in {year} .",
    "most of the action happens in {place} .",
    "i had not seen the first film before this one .",
    "i did not know much about {name} {surname} before watching it .",
    "it was shot in {place} but set in {other_place} .",
    "there is a long scene in {place} near the end .",
    "i went in knowing nothing about the story .",
    "the second half focuses on {role} .",
    "i never read the novel it is based on .",
    "{role} meets {other_role} in {place} .",
    "the movie came out in {year} .",
    "we saw it {when} .",
    "the main character is {role} who {goal} .",
    "it is based on a novel by {name} {surname} .",
    "the story is told by {role} .",
    "nobody in the cast had worked with {name} {surname} before .",
)


def _template_slots(template: str) -> tuple[str, ...]:
    return tuple(name for _, name, _, _ in string.Formatter().parse(template) if name)


PARSED_FILLERS = tuple((t, _template_slots(t)) for t in FILLER_TEMPLATES)
