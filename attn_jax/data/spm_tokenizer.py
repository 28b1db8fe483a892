"""SentencePiece subword tokenizer (Kudo & Richardson, 2018) trained on the training split of a real data set.

Same duck-typed interface as `attn_jax.data.tokenizers.WordTokenizer`: ``encode(text, max_len)`` gives
``[max_len]`` int32 ids right-padded with 0, plus ``vocab_size``, ``pad_id``, ``save`` and ``load``. The ids
of the special pieces are fixed: 0 ``<pad>``, 1 ``<unk>``, 2 ``<s>``, 3 ``</s>``.

Training is deterministic, so every host of a multi-host run and every rerun gets the same model bytes:
all input sentences are used in their given order (no sampling, no shuffling), the random seed is set, and
the thread count is a fixed number rather than the machine's core count (the unigram trainer's sums
depend on how the corpus is split between threads). The model file lives in the workdir, so evaluation,
prediction and resumed runs reuse exactly the training vocabulary.
"""

from __future__ import annotations

import io
import itertools
import os
import pathlib
import re
from collections.abc import Iterable, Iterator

import numpy as np
import sentencepiece as spm

from attn_jax.errors import UserError

PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
MODEL_TYPES = ("unigram", "bpe", "char", "word")


class SentencePieceTokenizer:
    """Subword ids from a serialized SentencePiece model; id 0 is padding and id 1 the unknown piece."""

    def __init__(self, model_proto: bytes):
        self.model_proto = bytes(model_proto)
        self._sp = spm.SentencePieceProcessor(model_proto=self.model_proto)
        if (self._sp.pad_id(), self._sp.unk_id()) != (PAD_ID, UNK_ID):
            raise ValueError(
                f"a SentencePiece model for attn_jax needs pad_id={PAD_ID} and unk_id={UNK_ID}, "
                f"got {self._sp.pad_id()} and {self._sp.unk_id()}"
            )

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        vocab_size: int,
        model_path: str | pathlib.Path,
        *,
        model_type: str = "unigram",
        seed: int = 0,
        max_sentences: int | None = None,
        character_coverage: float = 1.0,
        num_threads: int = 16,
    ) -> SentencePieceTokenizer:
        """Train on ``texts`` (the training split only) and write the model to ``model_path``.

        ``vocab_size`` is an upper bound: a corpus too small for it gives a smaller vocabulary instead of
        an error. ``max_sentences`` keeps the first N texts (deterministic) to bound time and memory on
        huge corpora. ``num_threads`` is part of the result: keep it fixed to reproduce a model.
        """
        if model_type not in MODEL_TYPES:
            raise UserError(
                f"Unknown SentencePiece model type {model_type!r}; use one of {', '.join(MODEL_TYPES)}."
            )
        sentences = _Counted(itertools.islice(texts, max_sentences))
        model = io.BytesIO()
        spm.set_random_generator_seed(seed)
        try:
            spm.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences),
                model_writer=model,
                vocab_size=vocab_size,
                model_type=model_type,
                pad_id=PAD_ID,
                unk_id=UNK_ID,
                bos_id=BOS_ID,
                eos_id=EOS_ID,
                hard_vocab_limit=False,
                input_sentence_size=0,
                shuffle_input_sentence=False,
                max_sentence_length=1 << 16,
                character_coverage=character_coverage,
                num_threads=num_threads,
                minloglevel=2,
            )
        except RuntimeError as error:
            raise _training_error(error, vocab_size, sentences.count) from error
        tokenizer = cls(model.getvalue())
        tokenizer.save(model_path)
        return tokenizer

    @classmethod
    def load(cls, path: str | pathlib.Path) -> SentencePieceTokenizer:
        """The tokenizer saved at ``path`` by `train` or `save`."""
        path = pathlib.Path(path)
        if not path.is_file():
            raise UserError(f"No SentencePiece model at {path}; fix the path or retrain.")
        try:
            return cls(path.read_bytes())
        except (RuntimeError, ValueError) as error:
            raise UserError(
                f"{path} is not a usable SentencePiece model ({str(error).strip()[:120]}); "
                f"delete it so that it is trained again."
            ) from error

    def save(self, path: str | pathlib.Path) -> None:
        """Write the model file atomically, so a run stopped mid-write never leaves a truncated model."""
        path = pathlib.Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.tmp{os.getpid()}")
        partial.write_bytes(self.model_proto)
        os.replace(partial, path)

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    @property
    def pad_id(self) -> int:
        return PAD_ID

    @property
    def bos_id(self) -> int:
        return BOS_ID

    @property
    def eos_id(self) -> int:
        return EOS_ID

    def encode(self, text: str, max_len: int, *, add_bos: bool = False, add_eos: bool = False) -> np.ndarray:
        """``[max_len]`` int32 ids, truncated and right-padded with 0.

        With ``add_bos``/``add_eos`` the text is truncated first so that ``<s>``/``</s>`` always fit.
        """
        room = max_len - int(add_bos) - int(add_eos)
        ids = self._sp.encode(text)[: max(room, 0)]
        ids = [BOS_ID] * add_bos + ids + [EOS_ID] * add_eos
        out = np.zeros(max_len, np.int32)
        out[: len(ids)] = ids[:max_len]
        return out

    def count(self, text: str) -> int:
        """How many pieces ``text`` has, before any truncation."""
        return len(self._sp.encode(text))

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``; padding, ``<s>`` and ``</s>`` are dropped, unknown pieces read `` ⁇ ``."""
        return self._sp.decode([int(i) for i in ids if int(i) not in (PAD_ID, BOS_ID, EOS_ID)])

    def pieces(self, ids: Iterable[int]) -> list[str]:
        """One string per non-padding id (``'▁good'``, ``'s'``): labels for per-token attention plots."""
        return [self._sp.id_to_piece(int(i)) for i in ids if int(i) != PAD_ID]

    def __getstate__(self) -> dict[str, bytes]:
        # The SWIG processor cannot be pickled; the model bytes rebuild it (e.g. in data-loader workers).
        return {"model_proto": self.model_proto}

    def __setstate__(self, state: dict[str, bytes]) -> None:
        self.__init__(state["model_proto"])


class _Counted:
    """Iterates over the non-blank texts and counts them, so an empty corpus can be told apart afterwards."""

    def __init__(self, texts: Iterable[str]):
        self._texts = texts
        self.count = 0

    def __iter__(self) -> Iterator[str]:
        for text in self._texts:
            if text and not text.isspace():  # SentencePiece learns nothing from blank lines
                self.count += 1
                yield text


def _training_error(error: RuntimeError, vocab_size: int, num_texts: int) -> Exception:
    """A `UserError` for the trainer failures a config change fixes; other failures stay as they are."""
    if num_texts == 0:
        return UserError("No training text to learn a SentencePiece vocabulary from; check the train split.")
    sizes = re.search(r"smaller than required_chars\. (\d+) vs (\d+)", str(error))
    if sizes:
        return UserError(
            f"vocab_size={vocab_size} is smaller than the {sizes.group(2)} pieces SentencePiece needs "
            f"(every character of the training texts + 4 special pieces); raise --config.data.vocab_size."
        )
    return error
