"""`tfds:NAME[/CONFIG]` text classification through ``tfds.data_source`` (array_record, no TensorFlow).

``tfds.data_source`` reads a prepared data set with random access from ArrayRecord files and decodes
examples with NumPy, so reading ``glue/sst2`` or ``imdb_reviews`` needs no TensorFlow. Preparing one
(download + conversion) also works without TensorFlow as long as it is written as ``array_record``,
which is why this module always asks for that format.

Each failure a person can fix becomes a one-line `UserError`: an unknown name, config or split; a data set
that is not prepared and cannot be downloaded (offline, blocked, a module missing for the download step);
a data set prepared as TFRecord, which has no random access. Records whose label is negative
(GLUE test rows carry ``-1``, ``imdb_reviews``' ``unsupervised`` split too) or whose text is empty or not
UTF-8 are skipped and counted in the log.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from attn_jax.data.text_files import Record, SkipCounts
from attn_jax.errors import UserError

_LOG = logging.getLogger(__name__)

# tensorflow_datasets is imported inside the functions: it takes a second and only tfds: sources need it.
TEXT_KEYS = ("sentence", "text", "review", "content")
# Packages whose dataset modules are registered only when imported (TFDS imports them lazily);
# data sets under `tensorflow_datasets/datasets/` (e.g. imdb_reviews) are found without this.
_BUILDER_PACKAGES = ("text", "translate", "summarization", "question_answering")
_TF_FIX = "install TensorFlow with pip install -e '.[tf]'"


def load_tfds_text(
    name: str,
    split: str,
    *,
    data_dir: str | None = None,
    text_key: str | None = None,
    label_key: str = "label",
    download: bool = True,
) -> list[Record]:
    """``(text, label)`` records of ``split`` of the TFDS data set ``name`` (e.g. ``'glue/sst2'``).

    ``text_key`` defaults to the first of ``sentence``, ``text``, ``review``, ``content`` the data set has.
    With ``download`` a data set missing from ``data_dir`` is downloaded and prepared (needs network);
    without it, a missing data set is an error at once.
    """
    source = open_data_source(name, split, data_dir=data_dir, download=download)
    skips = SkipCounts()
    records = list(_records(source, name, text_key, label_key, skips))
    if not records:
        raise UserError(
            f"tfds:{name} split {split!r} has no labelled examples (skipped {skips.summary()}); "
            f"use a labelled split such as 'train' or 'validation' (GLUE test labels are hidden)."
        )
    _LOG.info("Read %d records from tfds:%s[%s]; skipped %s.", len(records), name, split, skips.summary())
    return records


def open_data_source(
    name: str, split: str, *, data_dir: str | None = None, download: bool = True
) -> Sequence[dict[str, Any]]:
    """``tfds.data_source(name, split=split)`` in array_record format, failures turned into `UserError`."""
    tfds = _import_tfds()
    _register_builders(name)
    try:
        return tfds.data_source(
            name,
            split=split,
            data_dir=data_dir,
            download=download,
            builder_kwargs={"file_format": "array_record"},
        )
    except Exception as error:
        user_error = _explain(error, name, split, data_dir, download)
        if user_error is None:
            raise
        raise user_error from error


def _import_tfds() -> Any:
    try:
        return importlib.import_module("tensorflow_datasets")
    except ImportError as error:
        raise UserError(
            f"tfds: sources need tensorflow-datasets ({error}); pip install -e . or use files:/builtin:."
        ) from error


def _register_builders(name: str) -> None:
    """Import the TFDS dataset package that defines ``name`` so that ``tfds.data_source`` can find it.

    Packages that fail to import (some need TensorFlow) are skipped; an unknown name is reported later.
    """
    from tensorflow_datasets.core import registered

    base = name.split("/")[0].split(":")[0]
    for package in _BUILDER_PACKAGES:
        if base in registered.list_imported_builders():
            return
        try:
            importlib.import_module(f"tensorflow_datasets.{package}")
        except ImportError:
            continue


# ----------------------------------------------------------------------------------------------------------
# Errors.


def _explain(
    error: Exception, name: str, split: str, data_dir: str | None, download: bool
) -> UserError | None:
    """The one-line `UserError` for a failure of ``tfds.data_source``, or ``None`` for an unexpected one."""
    from tensorflow_datasets.core import registered

    where = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    prepare = (
        f"on a machine with network run `tfds build {name} --data_dir DIR --file_format array_record`, "
        f"copy DIR here and pass --config.data.tfds_data_dir=DIR, or use a files: or builtin: source instead"
    )
    message = str(error)
    first_line = message.strip().splitlines()[0].rstrip(".: ") if message.strip() else type(error).__name__
    if isinstance(error, registered.DatasetNotFoundError):
        return UserError(
            f"Unknown TFDS data set {name!r} (not registered, and not prepared in {where}); "
            f"check the name, or use a files: or builtin: source."
        )
    if isinstance(error, ModuleNotFoundError):
        if "tensorflow" in (error.name or "") or "'tensorflow'" in message:
            return UserError(f"tfds:{name} needs TensorFlow for this step; {_TF_FIX}, or {prepare}.")
        missing = error.name or message
        return UserError(
            f"tfds:{name} is not prepared in {where} and downloading it needs the module {missing!r}; "
            f"pip install {missing}, or {prepare}."
        )
    if _is_download_failure(error):
        return UserError(
            f"tfds:{name} is not prepared in {where} and could not be downloaded "
            f"({first_line[:200]}); {prepare}."
        )
    if isinstance(error, ValueError) and "Unknown split" in message:
        return UserError(f"tfds:{name} has no split {split!r} ({first_line}); fix the split name.")
    if isinstance(error, ValueError) and "BuilderConfig" in message:
        return UserError(f"Unknown config in tfds:{name} ({first_line}); fix the part after '/' in the name.")
    if isinstance(error, NotImplementedError) and "Random access" in message:
        return UserError(
            f"tfds:{name} in {where} was prepared as TFRecord, which has no random access; rebuild it with "
            f"`tfds build {name} --data_dir DIR --file_format array_record`, "
            f"then pass --config.data.tfds_data_dir=DIR."
        )
    if isinstance(error, KeyError) and not download:
        return UserError(f"tfds:{name} is not prepared in {where} (download disabled); {prepare}.")
    return None


def _is_download_failure(error: Exception) -> bool:
    """Network errors (``requests`` errors are `OSError`\\ s) and TFDS download/extract/checksum errors."""
    from tensorflow_datasets.core.download import download_manager, extractor, util

    kinds = (OSError, util.DownloadError, extractor.ExtractError, download_manager.NonMatchingChecksumError)
    return isinstance(error, kinds)


# ----------------------------------------------------------------------------------------------------------
# Records.


def _records(
    source: Iterable[dict[str, Any]], name: str, text_key: str | None, label_key: str, skips: SkipCounts
) -> Iterable[Record]:
    """``(text, label)`` for every usable example; the feature names are checked on the first example."""
    keys: tuple[str, str] | None = None
    for example in source:
        if keys is None:
            keys = (
                _pick_key(example, name, "text", (text_key,) if text_key else TEXT_KEYS),
                _pick_key(example, name, "label", (label_key,)),
            )
        text = _to_str(example[keys[0]])
        if text is None:
            skips.undecodable += 1
        elif not text.strip():
            skips.empty_text += 1
        elif (label := int(np.asarray(example[keys[1]]))) < 0:
            skips.unknown_label += 1
        else:
            yield text.strip(), label


def _pick_key(example: dict[str, Any], name: str, role: str, candidates: Sequence[str]) -> str:
    for key in candidates:
        if key in example:
            return key
    raise UserError(
        f"tfds:{name} has no {role} feature {' or '.join(map(repr, candidates))} "
        f"(its features: {', '.join(map(repr, example))}); name it with --config.data.{role}_field=FEATURE."
    )


def _to_str(value: Any) -> str | None:
    """A text feature as ``str`` (data sources give ``bytes``, mocks give ``str``); ``None`` if not UTF-8."""
    if isinstance(value, np.ndarray):
        value = value.item()
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return "" if value is None else str(value)
