"""Random draws and split assignment shared by the generated (``builtin:``) data sets.

Every generator draws its plans from one `Uniforms` stream seeded by `split_rng` (a BLAKE2 hash of the set's
name, the split and the seed, so generation is deterministic across machines), and keeps a generated text
only if `split_of` assigns it to the split being built (so splits are disjoint by construction).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")


def split_rng(name: str, split: str, seed: int) -> np.random.Generator:
    """The PCG64 generator of ``builtin:<name>``'s ``split`` for ``seed``."""
    digest = hashlib.blake2b(f"builtin:{name}/{split}/{seed}".encode(), digest_size=16).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest, "little")))


def split_of(text: str, person: bytes) -> str:
    """The one split ``text`` may belong to: 80% train, 10% validation, 10% test, by a stable hash
    (``person`` keeps each data set's assignment independent of the others')."""
    digest = hashlib.blake2b(text.encode(), digest_size=8, person=person).digest()
    bucket = int.from_bytes(digest, "little") % 10
    return "validation" if bucket == 0 else "test" if bucket == 1 else "train"


class Weighted(Generic[T]):
    """Options with relative weights, sampled by bisecting their cumulative weights."""

    def __init__(self, weights: dict[T, float]):
        self.options = tuple(weights)
        self.cumulative = tuple(itertools.accumulate(weights.values()))


def _blocks(rng: np.random.Generator, block: int = 8192) -> Iterator[float]:
    while True:
        yield from rng.random(block).tolist()


class Uniforms:
    """Uniform [0, 1) numbers drawn from a numpy Generator in blocks (much faster than one call each),
    and the discrete draws the generators make from them."""

    def __init__(self, rng: np.random.Generator):
        self.random = _blocks(rng).__next__

    def choice(self, options: Sequence[T]) -> T:
        return options[int(self.random() * len(options))]

    def bernoulli(self, p: float) -> bool:
        return self.random() < p

    def integer(self, low: int, high: int) -> int:
        """Uniform in ``[low, high]``."""
        return low + int(self.random() * (high - low + 1))

    def weighted(self, weighted: Weighted[T]) -> T:
        index = bisect.bisect_right(weighted.cumulative, self.random() * weighted.cumulative[-1])
        return weighted.options[min(index, len(weighted.options) - 1)]  # min() guards float rounding

    def count(self, probabilities: Sequence[float]) -> int:
        """``k`` with probability ``probabilities[k]``."""
        r = self.random()
        for k, p in enumerate(probabilities):
            r -= p
            if r < 0:
                return k
        return len(probabilities) - 1

    def sample(self, items: Sequence[T], k: int) -> list[T]:
        """``k`` distinct items in random order (a partial Fisher-Yates shuffle)."""
        out = list(items)
        for i in range(min(k, len(out))):
            j = i + int(self.random() * (len(out) - i))
            out[i], out[j] = out[j], out[i]
        return out[:k]

    def shuffled(self, items: Sequence[T]) -> list[T]:
        return self.sample(items, len(items))
