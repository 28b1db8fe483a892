"""Grain pipelines from in-memory examples: shuffled, repeated training batches and padded eval batches."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import grain
import jax
import numpy as np

Example = dict[str, Any]


def train_batches(examples: Sequence[Example], batch_size: int, seed: int) -> grain.DatasetIterator:
    """An endless, checkpointable iterator of this process's rows of each global training batch.

    Every process shuffles the same example indices (reshuffled each epoch from ``seed``) and cuts the same
    global batches of ``batch_size``; each then loads only its own ``batch_size / process_count`` rows. The
    global batch at every step is therefore the same whatever the number of processes.
    """
    processes, index = jax.process_count(), jax.process_index()
    if batch_size % processes:
        raise ValueError(f"batch_size {batch_size} must divide evenly over {processes} processes.")
    if len(examples) < batch_size:
        raise ValueError(f"only {len(examples)} training examples for a batch of {batch_size}.")
    per_process = batch_size // processes
    rows = slice(index * per_process, (index + 1) * per_process)

    def load(indices: np.ndarray) -> Example:
        chosen = [examples[i] for i in indices[rows]]
        return {k: np.stack([ex[k] for ex in chosen]) for k in chosen[0]}

    ds = grain.MapDataset.range(len(examples)).shuffle(seed=seed).repeat(None)
    return iter(ds.batch(batch_size, drop_remainder=True).map(load).to_iter_dataset())


def bucketed_train_batches(
    examples: Sequence[Example],
    batch_size: int,
    seed: int,
    lengths: Sequence[int],
    boundaries: Sequence[int],
) -> grain.DatasetIterator:
    """Like `train_batches`, but each batch holds examples of similar length, cut to that length.

    Example ``i`` (``lengths[i]`` tokens) goes to the first bucket whose edge in ``boundaries`` is at least
    its length; every array of a batch is cut to its bucket's edge, so short sentences do not pay for the
    padding of long ones, at the price of one compiled step per bucket (bucketing as in Sutskever et al.,
    2014). Batches are formed once, per bucket, from a seeded shuffle and served in an order reshuffled
    every epoch; each bucket's last partial batch is left out. Every example array is a token sequence.
    """
    boundaries = sorted(boundaries)
    processes, index = jax.process_count(), jax.process_index()
    if batch_size % processes:
        raise ValueError(f"batch_size {batch_size} must divide evenly over {processes} processes.")
    if max(lengths) > boundaries[-1]:
        raise ValueError(
            f"an example has {max(lengths)} tokens, beyond the last bucket edge {boundaries[-1]}."
        )
    per_process = batch_size // processes
    rows = slice(index * per_process, (index + 1) * per_process)
    bucket_of = np.searchsorted(boundaries, np.asarray(lengths))  # first edge >= length
    order = np.random.default_rng(seed).permutation(len(examples))
    batches: list[tuple[int, np.ndarray]] = []
    for bucket, edge in enumerate(boundaries):
        members = order[bucket_of[order] == bucket]
        batches += [
            (edge, chunk)
            for chunk in np.split(members, np.arange(batch_size, len(members), batch_size))
            if len(chunk) == batch_size
        ]
    if not batches:
        raise ValueError(f"no bucket holds {batch_size} training examples; lower the batch size.")

    def load(batch: tuple[int, np.ndarray]) -> Example:
        edge, indices = batch
        chosen = [examples[i] for i in indices[rows]]
        return {k: np.stack([ex[k][:edge] for ex in chosen]) for k in chosen[0]}

    ds = grain.MapDataset.source(batches).shuffle(seed=seed).repeat(None)
    return iter(ds.map(load).to_iter_dataset())


def eval_batches(examples: Sequence[Example], batch_size: int) -> Iterator[Example]:
    """Every example exactly once, split over processes; each yields this process's rows of a global batch.

    All processes yield the same number of batches (so their collectives line up); rows past the end are
    copies of the first example with ``weight`` 0.
    """
    processes, index = jax.process_count(), jax.process_index()
    if batch_size % processes:
        raise ValueError(f"batch_size {batch_size} must divide evenly over {processes} processes.")
    per_process = batch_size // processes
    local = list(examples[index::processes])
    num_batches = -(-len(examples) // batch_size)
    for b in range(num_batches):
        chunk = local[b * per_process : (b + 1) * per_process]
        weight = np.zeros(per_process, np.float32)
        weight[: len(chunk)] = 1.0
        chunk += [examples[0]] * (per_process - len(chunk))
        batch = {k: np.stack([ex[k] for ex in chunk]) for k in chunk[0]}
        batch["weight"] = weight
        yield batch
