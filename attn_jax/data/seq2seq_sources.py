"""(source text, target text) pairs of a translation or summarization split from any source string.

* ``builtin:translation`` / ``builtin:summarization``: generated offline (`attn_jax.data.builtin`);
* ``files:DIR`` with line-aligned ``{split}.{lang}`` files (translation; needs ``source_lang`` and
  ``target_lang``), or ``files:PATH`` to a JSONL file or a directory of ``{split}.jsonl`` files
  (summarization; fields from ``source_field``/``target_field`` or common names);
* ``tfds:NAME[/CONFIG]`` through ``tfds.data_source`` (e.g. ``wmt14_translate/de-en``, ``cnn_dailymail``).

Config fields read from ``data``: ``source``; optional ``source_lang``, ``target_lang``, ``source_field``,
``target_field``, ``train_size``/``eval_size`` (caps, ``None`` = all) and ``tfds_data_dir``.
"""

from __future__ import annotations

import pathlib

import ml_collections

from attn_jax.data.builtin import summarization as builtin_summarization
from attn_jax.data.builtin import translation as builtin_translation
from attn_jax.data.parallel_text import read_jsonl_pairs, read_parallel_text
from attn_jax.data.sources import parse_source
from attn_jax.data.tfds_pairs import load_tfds_pairs
from attn_jax.errors import UserError

Pair = tuple[str, str]  # (source text, target text)
BUILTIN = {"translation": builtin_translation, "summarization": builtin_summarization}
SOURCES = {"builtin": tuple(BUILTIN), "files": (), "tfds": ()}


def load_pairs(data: ml_collections.ConfigDict, split: str, seed: int) -> list[Pair]:
    """Pairs of ``split`` ('train' or ``data.eval_split``), capped at ``data.train_size`` /
    ``data.eval_size`` pairs when those are set. ``seed`` selects the sample of a builtin: set."""
    kind, name = parse_source(data.source, SOURCES)
    limit = data.get("train_size") if split == "train" else data.get("eval_size")
    if kind == "builtin":
        return _builtin(name, split, limit, seed)
    if kind == "files":
        pairs = _files(data, name, split)
    else:
        source_key = data.get("source_field") or data.get("source_lang")
        target_key = data.get("target_field") or data.get("target_lang")
        return load_tfds_pairs(
            name, split, data_dir=data.get("tfds_data_dir"), source_key=source_key, target_key=target_key,
            limit=limit,
        )  # fmt: skip
    return pairs[:limit] if limit is not None else pairs


def _builtin(name: str, split: str, limit: int | None, seed: int) -> list[Pair]:
    module = BUILTIN[name]
    if split not in module.SPLITS:
        raise UserError(
            f"builtin:{name} has no split {split!r}; use one of {', '.join(module.SPLITS)} "
            f"(--config.data.eval_split=validation)."
        )
    return module.generate(split, limit, seed)


def _files(data: ml_collections.ConfigDict, name: str, split: str) -> list[Pair]:
    """JSONL when ``name`` is a file or a directory with ``.jsonl`` files, else parallel text."""
    path = pathlib.Path(name).expanduser()
    if path.is_file() or (path.is_dir() and any(path.glob("*.jsonl"))):
        pairs, _ = read_jsonl_pairs(
            path, split=split, source_field=data.get("source_field"), target_field=data.get("target_field")
        )
        return pairs
    if not path.exists():
        raise UserError(f"No such data file or directory: {path}; fix --config.data.source=files:PATH.")
    source_lang, target_lang = data.get("source_lang"), data.get("target_lang")
    if not source_lang or not target_lang:
        raise UserError(
            f"files:{name} is a directory of parallel text; name its languages with "
            f"--config.data.source_lang=LANG --config.data.target_lang=LANG (the file suffixes, e.g. en, de)."
        )
    pairs, _ = read_parallel_text(path, split, source_lang, target_lang)
    return pairs
