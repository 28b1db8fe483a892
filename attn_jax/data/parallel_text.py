"""`files:PATH` sequence-to-sequence pairs: line-aligned parallel text, or JSONL with two text fields.

Parallel text (translation) is a directory of ``{split}.{lang}`` files, line ``i`` of ``train.en``
translating line ``i`` of ``train.de`` (the Multi30k/WMT convention). The split 'validation' is found as
``val``, ``valid``, ``dev`` or ``validation``; any other split name is used as the stem as it is
(``test_2016_flickr`` reads ``test_2016_flickr.en``).

JSONL (summarization) is one file, or a directory of split files (``train.jsonl``, ``dev.jsonl``, ...),
holding one object per line; the source and target fields are named by the config or found among common
names (``document``, ``article``, ``text``, ``email``, ... and ``summary``, ``highlights``, ``subject``,
``title``, ...). Runs of whitespace inside a JSONL text (e-mails keep their line breaks) become one space.

Bad pairs are skipped and counted by reason, never guessed at: each line is decoded on its own, so one
corrupt line costs one pair. A pair with either side empty is skipped too. Problems a person must fix (a
missing file, files whose line counts differ, a field that does not exist, no usable pair) raise
`UserError` with a one-line fix.
"""

from __future__ import annotations

import json
import logging
import pathlib
from collections.abc import Iterator
from typing import Any

from attn_jax.data.text_files import SkipCounts, find_split_file, pick_field
from attn_jax.errors import UserError

_LOG = logging.getLogger(__name__)

Pair = tuple[str, str]
PARALLEL_SPLIT_STEMS = {
    "train": ("train",),
    "validation": ("val", "valid", "dev", "validation"),
    "test": ("test",),
}
SOURCE_FIELDS = ("document", "article", "text", "email", "email_body", "source", "input")
TARGET_FIELDS = ("summary", "highlights", "subject", "subject_line", "title", "target", "output")


# ----------------------------------------------------------------------------------------------------------
# Parallel text.


def find_parallel_files(
    directory: str | pathlib.Path, split: str, source_lang: str, target_lang: str
) -> tuple[pathlib.Path, pathlib.Path]:
    """``(DIR/{stem}.{source_lang}, DIR/{stem}.{target_lang})`` for the first stem of ``split`` present."""
    directory = pathlib.Path(directory)
    if not directory.is_dir():
        raise UserError(
            f"No such directory: {directory}; parallel text needs --config.data.source=files:DIR with "
            f"DIR/{{split}}.{source_lang} and DIR/{{split}}.{target_lang}."
        )
    stems = PARALLEL_SPLIT_STEMS.get(split, (split,))
    for stem in stems:
        source, target = directory / f"{stem}.{source_lang}", directory / f"{stem}.{target_lang}"
        if source.is_file() or target.is_file():
            missing = target if source.is_file() else source
            if not missing.is_file():
                raise UserError(
                    f"{missing} is missing (its other side {target if missing is source else source} is "
                    f"there); "
                    f"add it, or fix --config.data.source_lang/target_lang."
                )
            return source, target
    names = ", ".join(f"{s}.{{{source_lang},{target_lang}}}" for s in stems)
    raise UserError(
        f"No {split!r} split in {directory}: expected {names}; add the files or set "
        f"--config.data.eval_split to a split that exists."
    )


def _lines(path: pathlib.Path) -> list[bytes]:
    """The lines of ``path`` as bytes, without line endings or a UTF-8 byte-order mark; a final newline
    does not start another line."""
    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line.removesuffix(b"\r") for line in lines]


def _decode(raw: bytes) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def read_parallel_text(
    directory: str | pathlib.Path, split: str, source_lang: str, target_lang: str
) -> tuple[list[Pair], SkipCounts]:
    """Sentence pairs of ``split`` from line-aligned ``{stem}.{source_lang}`` / ``{stem}.{target_lang}``.

    Returns the pairs in file order and the counts of skipped lines (undecodable or empty on either side).
    Raises `UserError` for missing files, differing line counts, or no usable pair.
    """
    source_path, target_path = find_parallel_files(directory, split, source_lang, target_lang)
    source_lines, target_lines = _lines(source_path), _lines(target_path)
    if len(source_lines) != len(target_lines):
        raise UserError(
            f"{source_path} has {len(source_lines)} lines but {target_path} has {len(target_lines)}; "
            f"parallel files must be line-aligned (one sentence per line on both sides)."
        )
    skips = SkipCounts()
    pairs = []
    for raw_source, raw_target in zip(source_lines, target_lines, strict=True):
        source, target = _decode(raw_source), _decode(raw_target)
        if source is None or target is None:
            skips.undecodable += 1
        elif not source.strip() or not target.strip():
            skips.empty_text += 1
        else:
            pairs.append((source.strip(), target.strip()))
    _check_not_empty(source_path, pairs, skips)
    _LOG.info("Read %d pairs from %s/%s; skipped %s.", len(pairs), source_path, target_path.suffix,
              skips.summary())  # fmt: skip
    return pairs, skips


# ----------------------------------------------------------------------------------------------------------
# JSONL.


def read_jsonl_pairs(
    path: str | pathlib.Path,
    *,
    split: str = "train",
    source_field: str | None = None,
    target_field: str | None = None,
) -> tuple[list[Pair], SkipCounts]:
    """(source, target) pairs from a JSONL file, or from ``split``'s file when ``path`` is a directory.

    The fields are ``source_field``/``target_field``, else the first of `SOURCE_FIELDS`/`TARGET_FIELDS`
    the first object has. Returns the pairs in file order and the counts of skipped lines.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        path = find_split_file(path, split)
    elif not path.is_file():
        raise UserError(f"No such data file or directory: {path}; fix --config.data.source=files:PATH.")
    if path.suffix != ".jsonl":
        raise UserError(
            f"Cannot read {path}: source/target pairs must be JSONL (one object per line) or a directory of "
            f"line-aligned {{split}}.{{lang}} files; convert it or fix --config.data.source."
        )
    skips = SkipCounts()
    pairs = []
    keys: tuple[str, str] | None = None
    for obj in _jsonl_objects(path, skips):
        if keys is None:
            keys = (
                pick_field(obj, source_field, SOURCE_FIELDS, "source", f"{path}", noun="field"),
                pick_field(obj, target_field, TARGET_FIELDS, "target", f"{path}", noun="field"),
            )
        source, target = _as_text(obj.get(keys[0])), _as_text(obj.get(keys[1]))
        if not source or not target:
            skips.empty_text += 1
        else:
            pairs.append((source, target))
    _check_not_empty(path, pairs, skips)
    _LOG.info("Read %d pairs from %s; skipped %s.", len(pairs), path, skips.summary())
    return pairs, skips


def _jsonl_objects(path: pathlib.Path, skips: SkipCounts) -> Iterator[dict[str, Any]]:
    for raw in _lines(path):
        line = _decode(raw)
        if line is None:
            skips.undecodable += 1
            continue
        if not line.strip():
            continue  # blank lines are not records
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            yield obj
        else:
            skips.bad_json += 1


def _as_text(value: Any) -> str:
    """A text field with its whitespace runs collapsed; ``''`` for a missing or non-text value."""
    return " ".join(value.split()) if isinstance(value, str) else ""


def _check_not_empty(path: pathlib.Path, pairs: list[Pair], skips: SkipCounts) -> None:
    if not pairs:
        raise UserError(
            f"No usable pairs in {path} (skipped {skips.summary()}); check that it is the right file and "
            f"that both sides hold text."
        )
