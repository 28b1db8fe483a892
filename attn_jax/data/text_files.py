"""`files:PATH` text classification: ``(text, label)`` records from TSV, CSV or JSONL files.

``PATH`` is one file or a directory of split files (``train.tsv``, ``dev.tsv``, ``test.tsv``, ...).
TSV and CSV files start with a header naming their columns; the text column is found by name
(``sentence``, ``text``, ``review``, ``content``) unless ``text_field`` names it, and the label column is
``label`` unless ``label_field`` names it. Column order does not matter (SST-2 puts the label first).
TSV files follow the GLUE convention: fields are split on tabs and quotes are ordinary characters.
JSONL files hold one object per line with the same default field names.

Labels are non-negative integers (``0``/``1``...) or strings mapped through ``labels`` (``'positive'`` ->
its index). Bad records are skipped and counted by reason, never guessed at: the bytes of each line are
decoded one line at a time, so a single corrupt line costs one record and is reported, not a crash or a
silently mangled text. Problems a person must fix (a missing file, no file for a split, a header without a
text or label column, a file with no usable record) raise `UserError` with a one-line fix.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import pathlib
from collections.abc import Iterator, Sequence
from typing import Any

from attn_jax.errors import UserError

_LOG = logging.getLogger(__name__)

TEXT_FIELDS = ("sentence", "text", "review", "content")
LABEL_FIELDS = ("label",)
EXTENSIONS = (".tsv", ".csv", ".jsonl")
SPLIT_STEMS = {
    "train": ("train",),
    "validation": ("dev", "validation", "valid", "val"),
    "test": ("test",),
}

Record = tuple[str, int]


@dataclasses.dataclass
class SkipCounts:
    """How many records were skipped, by reason; the caller logs them next to the number kept."""

    empty_text: int = 0  # the text field is missing, empty or only whitespace
    undecodable: int = 0  # the line is not valid UTF-8
    missing_label: int = 0  # the label field is missing or empty
    unknown_label: int = 0  # the label is not a known class (negative, not an integer, not in `labels`)
    wrong_columns: int = 0  # a TSV/CSV row whose field count differs from the header's
    bad_json: int = 0  # a JSONL line that is not a JSON object

    @property
    def total(self) -> int:
        return sum(dataclasses.astuple(self))

    def summary(self) -> str:
        """``'none'`` or ``'3 (empty_text=2, unknown_label=1)'``: the non-zero reasons only."""
        reasons = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(self).items() if v)
        return f"{self.total} ({reasons})" if self.total else "none"


def find_split_file(directory: str | pathlib.Path, split: str) -> pathlib.Path:
    """The file for ``split`` in ``directory``: ``train.*``, ``dev.*``/``validation.*``/``valid.*``/``val.*``,
    ``test.*`` (``*`` one of .tsv, .csv, .jsonl).

    Other split names match their own stem (``split='extra'`` finds ``extra.tsv``).
    """
    directory = pathlib.Path(directory)
    stems = SPLIT_STEMS.get(split, (split,))
    found = [directory / f"{s}{e}" for s in stems for e in EXTENSIONS if (directory / f"{s}{e}").is_file()]
    if not found:
        names = ", ".join(f"{s}{{{','.join(EXTENSIONS)}}}" for s in stems)
        raise UserError(
            f"No {split!r} split in {directory}: expected one of {names}; add the file or point "
            f"--config.data.source=files:PATH at a single file."
        )
    if len(found) > 1:
        raise UserError(
            f"Several files for split {split!r} in {directory}: {', '.join(p.name for p in found)}; "
            f"keep one, or point --config.data.source=files:PATH at the file to use."
        )
    return found[0]


def read_labelled_text(
    path: str | pathlib.Path,
    *,
    split: str = "train",
    text_field: str | None = None,
    label_field: str | None = None,
    labels: Sequence[str] | None = None,
) -> tuple[list[Record], SkipCounts]:
    """``(text, label)`` records of one file, or of ``split``'s file when ``path`` is a directory.

    Returns the records in file order and the counts of skipped records (also logged in one line).
    Raises `UserError` for a missing file or split, unrecognisable columns, or no usable record.
    """
    path = pathlib.Path(path)
    if path.is_dir():
        path = find_split_file(path, split)
    elif not path.is_file():
        raise UserError(f"No such data file or directory: {path}; fix --config.data.source=files:PATH.")
    if path.suffix not in EXTENSIONS:
        raise UserError(
            f"Cannot read {path}: text classification files must end in {', '.join(EXTENSIONS)}; "
            f"rename or convert it."
        )
    skips = SkipCounts()
    rows = _jsonl_rows if path.suffix == ".jsonl" else _table_rows
    records = []
    for fields, text_key, label_key in rows(path, skips, text_field, label_field):
        record = _to_record(fields, text_key, label_key, labels, skips)
        if record is not None:
            records.append(record)
    _check_not_empty(path, records, skips, labels)
    _LOG.info("Read %d records from %s; skipped %s.", len(records), path, skips.summary())
    return records, skips


# ----------------------------------------------------------------------------------------------------------
# Lines and rows.


def _decoded_lines(path: pathlib.Path, skips: SkipCounts) -> Iterator[str]:
    """Each line of ``path`` as text without its line ending; undecodable and blank lines are left out.

    Undecodable lines are counted; blank lines are not records, so they are not counted.
    """
    with path.open("rb") as f:
        for number, raw in enumerate(f):
            if number == 0 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # UTF-8 byte-order mark
            try:
                line = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                skips.undecodable += 1
                continue
            if line.strip():
                yield line


def _table_rows(
    path: pathlib.Path, skips: SkipCounts, text_field: str | None, label_field: str | None
) -> Iterator[tuple[dict[str, str], str, str]]:
    """Rows of a TSV/CSV file as ``{column: value}``, with the chosen text and label column names."""
    lines = _decoded_lines(path, skips)
    if path.suffix == ".tsv":
        split_rows: Iterator[list[str]] = (line.split("\t") for line in lines)
    else:
        split_rows = csv.reader(lines)
    header = next(split_rows, None)
    if header is None:
        raise UserError(f"{path} is empty or unreadable; it needs a header line and one record per line.")
    header = [h.strip() for h in header]
    text_key = pick_field(header, text_field, TEXT_FIELDS, "text", str(path))
    label_key = pick_field(header, label_field, LABEL_FIELDS, "label", str(path))
    for row in split_rows:
        if len(row) != len(header):
            skips.wrong_columns += 1
            continue
        yield dict(zip(header, row, strict=True)), text_key, label_key


def _jsonl_rows(
    path: pathlib.Path, skips: SkipCounts, text_field: str | None, label_field: str | None
) -> Iterator[tuple[dict[str, Any], str, str]]:
    """Objects of a JSONL file; the field names are chosen from the first object."""
    keys: tuple[str, str] | None = None
    for line in _decoded_lines(path, skips):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            obj = None
        if not isinstance(obj, dict):
            skips.bad_json += 1
            continue
        if keys is None:
            fields = list(obj)
            keys = (
                pick_field(fields, text_field, TEXT_FIELDS, "text", str(path)),
                pick_field(fields, label_field, LABEL_FIELDS, "label", str(path)),
            )
        yield obj, *keys


def pick_field(
    fields: Sequence[str],
    wanted: str | None,
    defaults: Sequence[str],
    role: str,
    where: str,
    *,
    noun: str = "column",
    flag: str = "field",
) -> str:
    """The field that holds the ``role`` (e.g. 'text', 'label', 'source'): ``wanted``, else the first
    default present.

    Default names match case-insensitively; a name given by the user must match exactly. The error, about
    the ``noun`` ('column' or 'field') missing from ``where``, names the setting
    ``--config.data.{role}_{flag}`` that fixes it.
    """
    if wanted is not None:
        if wanted in fields:
            return wanted
    else:
        by_lower = {f.lower(): f for f in fields}
        for name in defaults:
            if name in by_lower:
                return by_lower[name]
    looked_for = repr(wanted) if wanted is not None else " or ".join(map(repr, defaults))
    value = noun.upper() if flag == "field" else flag.upper()  # COLUMN / FIELD, or e.g. LANG
    raise UserError(
        f"{where} has no {role} {noun} {looked_for} (its {noun}s: {', '.join(map(repr, fields))}); "
        f"name it with --config.data.{role}_{flag}={value}."
    )


# ----------------------------------------------------------------------------------------------------------
# Records.


def _to_record(
    fields: dict[str, Any], text_key: str, label_key: str, labels: Sequence[str] | None, skips: SkipCounts
) -> Record | None:
    """``(text, label)``, or ``None`` after counting why the row cannot be used."""
    text = fields.get(text_key)
    if not isinstance(text, str) or not text.strip():
        skips.empty_text += 1
        return None
    raw_label = fields.get(label_key)
    if raw_label is None or (isinstance(raw_label, str) and not raw_label.strip()):
        skips.missing_label += 1
        return None
    label = parse_label(raw_label, labels)
    if label is None:
        skips.unknown_label += 1
        return None
    return text.strip(), label


def parse_label(value: Any, labels: Sequence[str] | None = None) -> int | None:
    """A class index from an integer (``1``, ``'1'``, ``'1.0'``) or a class name in ``labels``; else ``None``.

    Integers must be non-negative (``-1`` marks unlabelled GLUE test rows) and, when ``labels`` is given,
    smaller than its length.
    """
    if isinstance(value, str):
        name = value.strip()
        if labels is not None and name in labels:
            return list(labels).index(name)
        if labels is not None:
            folded = [label.lower() for label in labels]
            if name.lower() in folded:
                return folded.index(name.lower())
        value = _as_number(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    index = int(value)
    if index < 0 or (labels is not None and index >= len(labels)):
        return None
    return index


def _as_number(text: str) -> int | float | None:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return None


def _check_not_empty(
    path: pathlib.Path, records: list[Record], skips: SkipCounts, labels: Sequence[str] | None
) -> None:
    """A file that yields nothing is a configuration mistake, not a data set: say which one."""
    if records:
        return
    if skips.unknown_label and labels is None:
        fix = "if its labels are names, list them with --config.data.labels=NAME0,NAME1,..."
    elif skips.unknown_label:
        fix = f"its labels match none of {list(labels or ())}; fix --config.data.labels."
    else:
        fix = "check that it is the right file and that it holds text and label columns."
    raise UserError(f"No usable records in {path} (skipped {skips.summary()}); {fix}")
