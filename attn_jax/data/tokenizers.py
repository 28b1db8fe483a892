"""Word-level tokenizer for the built-in generated data sets (lower-cased, whitespace-separated tokens)."""

from __future__ import annotations

import collections
import os
import pathlib
from collections.abc import Iterable

import numpy as np

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"


class WordTokenizer:
    """Maps whitespace tokens to ids; id 0 is padding and id 1 is the unknown word.

    Fitted on the training split only, and saved as ``vocab.txt`` (one token per line, line number = id)
    so that evaluation and prediction reuse exactly the training vocabulary. A vocabulary fitted with
    ``sequence_marks=True`` also holds ``<s>`` (id 2) and ``</s>`` (id 3) for sequence-to-sequence models.
    """

    def __init__(self, tokens: Iterable[str]):
        self.tokens = list(tokens)
        if self.tokens[:2] != [PAD, UNK]:
            raise ValueError(f"a vocabulary must start with {PAD!r}, {UNK!r}")
        self._ids = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def fit(
        cls, texts: Iterable[str], max_size: int, min_count: int = 1, *, sequence_marks: bool = False
    ) -> WordTokenizer:
        """The ``max_size`` most frequent tokens of ``texts`` (special tokens included in the count)."""
        specials = [PAD, UNK, BOS, EOS] if sequence_marks else [PAD, UNK]
        counts = collections.Counter(tok for text in texts for tok in text.lower().split())
        for special in specials:
            counts.pop(special, None)
        # Most frequent first; ties broken alphabetically so the vocabulary is deterministic.
        ranked = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
        return cls([*specials, *ranked[: max_size - len(specials)]])

    @property
    def vocab_size(self) -> int:
        return len(self.tokens)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    @property
    def bos_id(self) -> int:
        return self._mark(BOS)

    @property
    def eos_id(self) -> int:
        return self._mark(EOS)

    def _mark(self, token: str) -> int:
        if token not in self._ids:
            raise ValueError(f"this vocabulary has no {token!r}; fit it with sequence_marks=True.")
        return self._ids[token]

    def words(self, text: str) -> list[str]:
        """The tokens of ``text`` as this tokenizer splits them (lower-cased, whitespace-separated)."""
        return text.lower().split()

    def ids(self, words: Iterable[str]) -> list[int]:
        """The id of each word; unknown words get ``unk_id``."""
        return [self._ids.get(word, 1) for word in words]

    def encode(self, text: str, max_len: int, *, add_eos: bool = False) -> np.ndarray:
        """``[max_len]`` int32 ids, truncated and right-padded with 0; with ``add_eos`` the text is
        truncated first so that ``</s>`` always fits."""
        ids = self.ids(self.words(text)[: max(max_len - int(add_eos), 0)])
        if add_eos:
            ids.append(self.eos_id)
        out = np.zeros(max_len, np.int32)
        out[: len(ids)] = ids
        return out

    def count(self, text: str) -> int:
        """How many tokens ``text`` has, before any truncation."""
        return len(self.words(text))

    def pieces(self, ids: Iterable[int]) -> list[str]:
        """The token of each non-padding id."""
        return [self.tokens[i] for i in ids if i != 0]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``; padding, ``<s>`` and ``</s>`` are dropped."""
        marks = {self._ids.get(BOS), self._ids.get(EOS)}
        return " ".join(self.tokens[i] for i in ids if i != 0 and i not in marks)

    def save(self, path: str | pathlib.Path) -> None:
        """Write ``vocab.txt`` atomically: a stopped run never leaves half a vocabulary, and hosts that
        write the same file at once do not interleave."""
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.tmp{os.getpid()}")
        partial.write_text("\n".join(self.tokens) + "\n", encoding="utf-8")
        os.replace(partial, path)

    @classmethod
    def load(cls, path: str | pathlib.Path) -> WordTokenizer:
        return cls(pathlib.Path(path).read_text(encoding="utf-8").splitlines())
