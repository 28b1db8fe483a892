"""`tfds:NAME[/CONFIG]` sequence-to-sequence pairs through ``tfds.data_source`` (array_record, no TensorFlow).

Translation sets (``wmt14_translate/de-en``, ``wmt17_translate/de-en``, ``ted_hrlr_translate/pt_to_en``)
key their features by language code; the direction comes from ``source_lang``/``target_lang`` and defaults
to the order in the config name (``de-en``: de -> en, ``pt_to_en``: pt -> en). Summarization sets name
their features: ``cnn_dailymail`` article -> highlights, ``xsum`` document -> summary, ``aeslc``
email_body -> subject_line. Other data sets work when their features have common names, or when the config
names them (``source_field``/``target_field``).

Text features arrive as UTF-8 bytes and are decoded; runs of whitespace become one space. Examples whose
text is not UTF-8, or empty on either side, are skipped and counted in the log. Opening the data set
(download, preparation, unknown names and splits) goes through `attn_jax.data.tfds_text.open_data_source`,
which turns what a person can fix into a one-line `UserError`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np

from attn_jax.data.parallel_text import SOURCE_FIELDS, TARGET_FIELDS
from attn_jax.data.text_files import SkipCounts, pick_field
from attn_jax.data.tfds_text import open_data_source
from attn_jax.errors import UserError

_LOG = logging.getLogger(__name__)

Pair = tuple[str, str]
# Base name -> (source feature, target feature) for data sets whose features are not keyed by language.
FEATURES = {
    "cnn_dailymail": ("article", "highlights"),
    "xsum": ("document", "summary"),
    "aeslc": ("email_body", "subject_line"),
}
_LANGUAGE_PAIR = re.compile(r"^([a-z]{2,3})(?:-|_to_)([a-z]{2,3})$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")  # translation features are keyed by language code


def default_features(name: str) -> tuple[str, str] | None:
    """The (source, target) features of ``name``: from `FEATURES`, or the languages of a ``xx-yy`` /
    ``xx_to_yy`` config; ``None`` when the name says nothing."""
    base, _, config = name.partition("/")
    if base in FEATURES:
        return FEATURES[base]
    match = _LANGUAGE_PAIR.match(config)
    return (match.group(1), match.group(2)) if match else None


def load_tfds_pairs(
    name: str,
    split: str,
    *,
    data_dir: str | None = None,
    source_key: str | None = None,
    target_key: str | None = None,
    limit: int | None = None,
    download: bool = True,
) -> list[Pair]:
    """(source, target) pairs of ``split`` of the TFDS data set ``name``, the first ``limit`` usable ones.

    ``source_key``/``target_key`` name the features (a language code for translation sets); either one
    left out comes from `default_features`, then from the common names of `SOURCE_FIELDS`/`TARGET_FIELDS`.
    """
    source = open_data_source(name, split, data_dir=data_dir, download=download)
    defaults = default_features(name) or (None, None)
    skips = SkipCounts()
    pairs: list[Pair] = []
    keys: tuple[str, str] | None = None
    for example in source:
        if limit is not None and len(pairs) >= limit:
            break
        if keys is None:
            keys = _keys(example, name, source_key or defaults[0], target_key or defaults[1])
        texts = (_to_text(example[keys[0]]), _to_text(example[keys[1]]))
        if texts[0] is None or texts[1] is None:
            skips.undecodable += 1
        elif not texts[0] or not texts[1]:
            skips.empty_text += 1
        else:
            pairs.append((texts[0], texts[1]))
    if not pairs and limit != 0:
        raise UserError(
            f"tfds:{name} split {split!r} has no usable pairs (skipped {skips.summary()}); "
            f"check the split and --config.data.source_field/target_field."
        )
    _LOG.info("Read %d pairs from tfds:%s[%s]; skipped %s.", len(pairs), name, split, skips.summary())
    return pairs


def _keys(
    example: dict[str, Any], name: str, source_key: str | None, target_key: str | None
) -> tuple[str, str]:
    """The source and target feature names, checked against the first example."""
    fields = list(example)
    flag = "lang" if all(_LANGUAGE.match(f) for f in fields) else "field"
    return (
        pick_field(fields, source_key, SOURCE_FIELDS, "source", f"tfds:{name}", noun="field", flag=flag),
        pick_field(fields, target_key, TARGET_FIELDS, "target", f"tfds:{name}", noun="field", flag=flag),
    )


def _to_text(value: Any) -> str | None:
    """A text feature as ``str`` with whitespace runs collapsed (data sources give ``bytes``, mocks give
    ``str``); ``None`` if it is not UTF-8."""
    if isinstance(value, np.ndarray):
        value = value.item()
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return "" if value is None else " ".join(str(value).split())
