"""Per-example extended vocabularies, so a pointer-generator can copy words outside its vocabulary.

See et al., 2017, "Get To The Point: Summarization with Pointer-Generator Networks", section 2.2: each
example's source words that the fixed vocabulary lacks (its OOVs) get temporary ids after the vocabulary,
in order of first appearance: the first OOV is ``vocab_size``, the next ``vocab_size + 1``, and so on.
A target word that is one of its source's OOVs is written with that id, so the model is trained to copy
it; any other unknown target word stays ``unk_id``. The model's output has a static
``vocab_size + max_oovs`` ids, so OOVs past the first ``max_oovs`` of a source stay ``unk_id``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol


class Vocabulary(Protocol):
    unk_id: int

    def ids(self, words: Iterable[str]) -> list[int]: ...

    def pieces(self, ids: Iterable[int]) -> list[str]: ...


def source_oovs(words: Sequence[str], vocab: Vocabulary, max_oovs: int) -> list[str]:
    """The first ``max_oovs`` distinct words of ``words`` that ``vocab`` lacks, in order of appearance."""
    oovs: list[str] = []
    for word, token_id in zip(words, vocab.ids(words), strict=True):
        if token_id == vocab.unk_id and word not in oovs and len(oovs) < max_oovs:
            oovs.append(word)
    return oovs


def extended_ids(words: Sequence[str], vocab: Vocabulary, oovs: Sequence[str], vocab_size: int) -> list[int]:
    """The id of each word in the extended vocabulary: its vocabulary id, else ``vocab_size + k`` for
    the ``k``-th OOV of ``oovs``, else ``unk_id``. ``vocab_size`` is where the OOV ids start (the
    model's vocabulary size, which may be rounded up past the tokenizer's)."""
    position = {word: vocab_size + k for k, word in enumerate(oovs)}
    return [
        position.get(word, vocab.unk_id) if token_id == vocab.unk_id else token_id
        for word, token_id in zip(words, vocab.ids(words), strict=True)
    ]


def extended_words(ids: Iterable[int], vocab: Vocabulary, oovs: Sequence[str], vocab_size: int) -> list[str]:
    """The words of extended-vocabulary ``ids`` (padding dropped): OOV ids read back as the source words."""
    words = []
    for token_id in (int(i) for i in ids):
        if token_id >= vocab_size:
            k = token_id - vocab_size
            words.append(oovs[k] if k < len(oovs) else vocab.pieces([vocab.unk_id])[0])
        else:
            words += vocab.pieces([token_id])
    return words
