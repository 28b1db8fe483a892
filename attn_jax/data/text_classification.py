"""(text, label) records of a text-classification split from any source string.

``builtin:sentiment`` (generated offline), ``files:PATH`` (a TSV/CSV/JSONL file or a folder of split files)
and ``tfds:NAME`` (through ``tfds.data_source``, array_record, no TensorFlow needed for text).
"""

from __future__ import annotations

import ml_collections

from attn_jax.data.builtin import sentiment as builtin_sentiment
from attn_jax.data.sources import parse_source
from attn_jax.data.text_files import read_labelled_text
from attn_jax.data.tfds_text import load_tfds_text

SOURCES = {"builtin": ("sentiment",), "files": (), "tfds": ()}
Record = tuple[str, int]


def load_split(data: ml_collections.ConfigDict, split: str, seed: int) -> list[Record]:
    """Records of ``split`` ('train' or ``data.eval_split``), capped at ``data.train_size`` /
    ``data.eval_size`` examples when those are set."""
    kind, name = parse_source(data.source, SOURCES)
    limit = data.train_size if split == "train" else data.eval_size
    if kind == "builtin":
        return [(ex.text, ex.label) for ex in builtin_sentiment.generate(split, limit, seed=seed)]
    if kind == "files":
        records, _ = read_labelled_text(
            name,
            split=split,
            text_field=data.get("text_field"),
            label_field=data.get("label_field"),
            labels=data.get("labels"),
        )
    else:
        records = load_tfds_text(name, split, data_dir=data.get("tfds_data_dir"))
    return records[:limit] if limit else records
