"""The two vocabularies of ``builtin:translation``: English-like source words and invented target words.

Every target word was made up for this project; its inflected forms follow from the tables below
(`noun_plural`, `ADJECTIVE_ENDINGS`, `VERB_ENDINGS`). The grammar that uses them is described in
`attn_jax.data.builtin.translation`.
"""

from __future__ import annotations

# Noun categories. Subjects are animate (person, animal); verbs and prepositions choose objects by category.
ANIMATE = ("person", "animal")
CONCRETE = ("person", "animal", "vehicle", "tool", "place", "thing")

# (source singular, category, target stem, target gender "m"/"f"). Genders are arbitrary, as in German.
NOUNS = (
    ("boy", "person", "tarn", "m"), ("girl", "person", "velsa", "f"), ("friend", "person", "omir", "m"),
    ("teacher", "person", "druna", "f"), ("doctor", "person", "halvet", "m"),
    ("farmer", "person", "pesko", "m"), ("king", "person", "zoran", "m"), ("student", "person", "lirea", "f"),
    ("baker", "person", "mupan", "f"), ("sister", "person", "anwe", "f"), ("brother", "person", "kelto", "m"),
    ("dog", "animal", "vusk", "m"), ("cat", "animal", "mirel", "f"), ("horse", "animal", "garot", "m"),
    ("bird", "animal", "pilu", "f"), ("fox", "animal", "renka", "f"), ("goat", "animal", "borsk", "m"),
    ("duck", "animal", "kwela", "f"),
    ("bus", "vehicle", "ostor", "m"), ("train", "vehicle", "silvan", "m"), ("boat", "vehicle", "nauri", "f"),
    ("car", "vehicle", "drelo", "m"), ("bike", "vehicle", "fenni", "f"), ("wagon", "vehicle", "tumbar", "m"),
    ("hammer", "tool", "grosk", "m"), ("spoon", "tool", "lepi", "f"), ("brush", "tool", "sorva", "f"),
    ("rope", "tool", "tenal", "m"), ("pen", "tool", "skiro", "m"), ("key", "tool", "yuvet", "m"),
    ("park", "place", "wolda", "f"), ("house", "place", "ursan", "m"), ("garden", "place", "belvi", "f"),
    ("river", "place", "esmar", "m"), ("market", "place", "torka", "f"), ("school", "place", "skelun", "m"),
    ("forest", "place", "valtor", "m"), ("village", "place", "kiresa", "f"),
    ("book", "thing", "fendo", "m"), ("apple", "thing", "nilba", "f"), ("letter", "thing", "resmo", "m"),
    ("table", "thing", "parul", "m"), ("box", "thing", "vokka", "f"), ("stone", "thing", "lurok", "m"),
    ("cup", "thing", "tasi", "f"), ("ball", "thing", "gumbi", "f"), ("basket", "thing", "karvel", "m"),
    ("question", "idea", "yarim", "m"), ("song", "idea", "suleni", "f"), ("story", "idea", "naru", "f"),
    ("problem", "idea", "vexal", "m"), ("task", "idea", "orsa", "f"), ("lesson", "idea", "lekmo", "m"),
    ("game", "idea", "jotu", "m"), ("plan", "idea", "prasta", "f"),
)  # fmt: skip

# (source, target stem). "hard" is context-dependent: see `HARD`.
ADJECTIVES = (
    ("big", "morn"), ("small", "tiv"), ("red", "rusk"), ("green", "zel"), ("old", "sar"), ("young", "lim"),
    ("new", "hul"), ("happy", "sav"), ("sad", "dolm"), ("tall", "kest"), ("heavy", "grev"), ("dark", "tum"),
    ("bright", "vir"), ("fast", "yeld"), ("strange", "kub"), ("hard", ""),
)  # fmt: skip
# "hard" before an idea noun means difficult, before any other noun it means firm.
HARD = {"idea": "murv", "other": "tald"}
# Adjectives follow the noun and agree with its gender and number: stem + ending.
ADJECTIVE_ENDINGS = {("m", "sg"): "", ("f", "sg"): "a", ("m", "pl"): "i", ("f", "pl"): "e"}

# (base, third person singular, past, target stem, object categories). "take" depends on context: see `TAKE`.
VERBS = (
    ("see", "sees", "saw", "nar", CONCRETE),
    ("watch", "watches", "watched", "olk", ("person", "animal", "vehicle")),
    ("find", "finds", "found", "huld", ("person", "animal", "tool", "thing", "place")),
    ("like", "likes", "liked", "feln", (*CONCRETE, "idea")),
    ("want", "wants", "wanted", "kov", ("vehicle", "tool", "thing", "animal")),
    ("follow", "follows", "followed", "pird", ("person", "animal", "vehicle")),
    ("call", "calls", "called", "varg", ANIMATE),
    ("visit", "visits", "visited", "toum", ("person", "place")),
    ("carry", "carries", "carried", "dorb", ("tool", "thing", "animal")),
    ("push", "pushes", "pushed", "gash", ("vehicle", "thing", "person")),
    ("pull", "pulls", "pulled", "hilm", ("vehicle", "thing", "tool")),
    ("help", "helps", "helped", "sorn", ANIMATE),
    ("clean", "cleans", "cleaned", "pesk", ("vehicle", "tool", "thing", "place")),
    ("paint", "paints", "painted", "murl", ("vehicle", "thing", "place")),
    ("write", "writes", "wrote", "velk", ("idea",)),
    ("tell", "tells", "told", "ezm", ("idea",)),
    ("solve", "solves", "solved", "rikt", ("idea",)),
    ("open", "opens", "opened", "zarv", ("thing", "vehicle")),
    ("build", "builds", "built", "tarp", ("place", "vehicle", "thing")),
    ("take", "takes", "took", "", ("vehicle", "tool", "thing")),
)  # fmt: skip
# "take" with a vehicle as its object means ride, with anything else grab.
TAKE = {"vehicle": "vold", "other": "kesh"}
# Verbs agree with their subject's person and number: stem + ending (there is no second person plural).
VERB_ENDINGS = {"1sg": "em", "2sg": "is", "3sg": "a", "1pl": "emo", "3pl": "an"}

# Subject pronouns: source -> (target, person).
PRONOUNS = {"i": ("avo", "1sg"), "you": ("teru", "2sg"), "he": ("ilo", "3sg"), "she": ("ila", "3sg"),
            "we": ("nosu", "1pl"), "they": ("sira", "3pl")}  # fmt: skip

# Determiners: kind -> {(gender, number): target}. Numerals take no article and follow the adjectives.
ARTICLES = {
    "definite": {("m", "sg"): "ke", ("f", "sg"): "ka", ("m", "pl"): "ki", ("f", "pl"): "ku"},
    "indefinite": {("m", "sg"): "om", ("f", "sg"): "oma", ("m", "pl"): "omi", ("f", "pl"): "ome"},
    "demonstrative": {("m", "sg"): "dis", ("f", "sg"): "disa", ("m", "pl"): "disi", ("f", "pl"): "dise"},
}
SOURCE_DETERMINERS = {
    ("definite", "sg"): "the", ("definite", "pl"): "the", ("indefinite", "sg"): "a",
    ("indefinite", "pl"): "some", ("demonstrative", "sg"): "this", ("demonstrative", "pl"): "these",
}  # fmt: skip
NUMERALS = {"two": "duvo", "three": "trel", "four": "fenu", "five": "pask"}
# The relative pronoun ("that") agrees with the noun the clause describes.
RELATIVE_PRONOUNS = {("m", "sg"): "ver", ("f", "sg"): "vera", ("m", "pl"): "veri", ("f", "pl"): "vere"}

# Prepositions become postpositions: source -> (target, object categories). "with" is context-dependent.
PREPOSITIONS = {
    "in": ("mo", ("place", "vehicle", "thing")),
    "on": ("pel", ("place", "vehicle", "thing")),
    "near": ("vek", CONCRETE),
    "under": ("nub", ("vehicle", "thing")),
    "behind": ("gor", CONCRETE),
    "for": ("dal", ANIMATE),
    "with": ("", ("person", "animal", "tool")),
    "without": ("nis", ("person", "animal", "tool")),
}
# "with" a person or animal means together with, with a tool it means by means of.
WITH = {"animate": "sal", "other": "pol"}

# Time phrases: source -> (target, tenses they go with).
TIMES = {
    "today": ("oyal", ("present", "past")), "yesterday": ("pasde", ("past",)),
    "every day": ("kaldi", ("present",)), "at night": ("sumbo", ("present", "past")),
    "in the morning": ("rosi", ("present", "past")), "now": ("tesh", ("present",)),
    "last week": ("vorik", ("past",)),
}  # fmt: skip
ADVERBS = {"quickly": "vitu", "slowly": "morso", "carefully": "pristo", "often": "olmi"}
CONJUNCTIONS = {"and": "ima", "but": "bara"}
NEGATION = "nu"
PAST = "vo"


def noun_plural(singular: str) -> str:
    """English-like source plural: bus -> buses, story -> stories, key -> keys, dog -> dogs."""
    if singular.endswith(("s", "sh", "ch", "x")):
        return singular + "es"
    if singular.endswith("y") and singular[-2] not in "aeiou":
        return singular[:-1] + "ies"
    return singular + "s"


def target_noun(stem: str, number: str) -> str:
    """Target noun form: plural adds -n after a vowel, -en after a consonant."""
    if number == "sg":
        return stem
    return stem + ("n" if stem[-1] in "aeiou" else "en")
