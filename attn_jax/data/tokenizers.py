"""Word-level tokenizer for the built-in generated data sets (lower-cased, whitespace-separated tokens)."""

from __future__ import annotations

import collections
import pathlib
from collections.abc import Iterable

import numpy as np

PAD, UNK = "<pad>", "<unk>"


class WordTokenizer:
    """Maps whitespace tokens to ids; id 0 is padding and id 1 is the unknown word.

    Fitted on the training split only, and saved as ``vocab.txt`` (one token per line, line number = id)
    so that evaluation and prediction reuse exactly the training vocabulary.
    """

    def __init__(self, tokens: Iterable[str]):
        self.tokens = list(tokens)
        if self.tokens[:2] != [PAD, UNK]:
            raise ValueError(f"a vocabulary must start with {PAD!r}, {UNK!r}")
        self._ids = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def fit(cls, texts: Iterable[str], max_size: int, min_count: int = 1) -> WordTokenizer:
        counts = collections.Counter(tok for text in texts for tok in text.lower().split())
        # Most frequent first; ties broken alphabetically so the vocabulary is deterministic.
        ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        return cls([PAD, UNK, *ranked[: max_size - 2]])

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    @property
    def pad_id(self) -> int:
        return 0

    def encode(self, text: str, max_len: int) -> np.ndarray:
        """``[max_len]`` int32 ids, truncated and right-padded with 0."""
        ids = [self._ids.get(tok, 1) for tok in text.lower().split()[:max_len]]
        out = np.zeros(max_len, np.int32)
        out[: len(ids)] = ids
        return out

    def pieces(self, ids: Iterable[int]) -> list[str]:
        """The token of each non-padding id."""
        return [self.tokens[i] for i in ids if i != 0]

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.pieces(ids))

    def save(self, path: str | pathlib.Path) -> None:
        pathlib.Path(path).write_text("\n".join(self.tokens) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | pathlib.Path) -> WordTokenizer:
        return cls(pathlib.Path(path).read_text(encoding="utf-8").splitlines())
