"""Batched beam search with alive and finished beams, the GNMT length penalty and early stopping.

Beam search for neural machine translation (Sutskever et al., 2014) with the length-normalised score
``log p(y) / ((5 + |y|) / 6) ** alpha`` (Wu et al., 2016). Each example keeps ``beam_size`` *alive*
hypotheses (no EOS yet) and the ``beam_size`` best *finished* ones. At every position each alive beam is
extended by every token; among all ``beam_size * vocab`` candidates:

  - the ``beam_size`` most likely ones (by log-probability) are the new beam; those of them that end in
    EOS leave it and compete, by score, for a place among the finished hypotheses;
  - the ``beam_size`` most likely candidates that do not end in EOS become the new alive beams, and the
    cache rows are gathered from their parents.

At ``max_len`` the beam's hypotheses are finished as they stand (truncated, no EOS). The loop stops early
once, for every example, no alive beam can still beat the worst finished one: log-probabilities only
fall as a hypothesis grows, so ``alive_log_prob / max(length_penalty)`` over the lengths still reachable
bounds every score it can reach. With ``beam_size=1`` and ``alpha=0`` this is exactly greedy decoding;
with a beam wide enough to keep every candidate it returns the ``beam_size`` best sequences of length
``<= max_len`` by score.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array, lax

from attn_jax.decoding.beams import expand_to_beams, gather_beams, length_penalty, select_beams
from attn_jax.decoding.step import Cache, StepFn, check_cache

_NEG = float(jnp.finfo(jnp.float32).min)  # log-probability / score of an empty slot, never -inf


class _BeamState(NamedTuple):
    step: Array  # [] int32: tokens in every hypothesis so far
    alive_seqs: Array  # [batch, beam, max_len] int32
    alive_log_probs: Array  # [batch, beam] float32, best first; _NEG marks an empty beam
    last: Array  # [batch, beam] int32: token fed to the next step
    cache: Cache  # per-row leaves [batch * beam, ...]
    finished_seqs: Array  # [batch, beam, max_len] int32
    finished_scores: Array  # [batch, beam] float32, best first; _NEG marks an empty slot


def _append(seqs: Array, parents: Array, tokens: Array, step: Array) -> Array:
    """Extend ``seqs [batch, beam, max_len]`` of beams ``parents [batch, k]`` with ``tokens [batch, k]``."""
    grown = select_beams(seqs, parents)  # [batch, k, max_len]
    at_step = jnp.arange(seqs.shape[-1]) == step  # [max_len]
    return jnp.where(at_step, tokens[..., None], grown)


def beam_search(
    step_fn: StepFn,
    cache: Cache,
    *,
    batch_size: int,
    beam_size: int,
    max_len: int,
    bos_id: int,
    eos_id: int,
    alpha: float = 0.6,
    pad_id: int = 0,
    return_cache: bool = False,
) -> tuple[Array, Array] | tuple[Array, Array, Cache]:
    """Beam search (Sutskever et al., 2014) ranked by the GNMT length penalty (Wu et al., 2016).

    ``cache`` holds per-row leaves ``[batch_size, ...]`` and shared rank-0 leaves; it is expanded to
    ``batch_size * beam_size`` rows (``expand_to_beams``) before the first step and gathered by parent
    beam (``gather_beams``) after each, rank-0 leaves untouched. ``step_fn(tokens [batch * beam] int32,
    cache) -> (logits [batch * beam, vocab], cache)``; the first call gets ``bos_id``.

    Returns ``sequences [batch, beam, max_len]`` int32, best first, without BOS, with EOS, padded with
    ``pad_id`` (a slot no hypothesis reached is all padding with score ``finfo(float32).min``), and
    ``scores [batch, beam]`` float32 ``log p / ((5 + len) / 6) ** alpha``, sorted descending; with
    ``return_cache`` also the cache of the alive beams after the last step.

    Static under ``jax.jit``: ``batch_size``, ``beam_size``, ``max_len``, ``pad_id``, ``return_cache``
    and ``step_fn`` (``bos_id``, ``eos_id`` and ``alpha`` may be static or traced), e.g.
    ``jax.jit(functools.partial(beam_search, step_fn, batch_size=8, beam_size=4, ...))``.
    """
    if batch_size < 1 or beam_size < 1 or max_len < 1:
        raise ValueError(
            f"batch_size, beam_size and max_len must be >= 1, got {batch_size}, {beam_size}, {max_len}."
        )
    check_cache(cache, batch_size)
    batch, beam = batch_size, beam_size

    def penalty(length: Array) -> Array:
        return length_penalty(length, alpha)

    def can_improve(s: _BeamState) -> Array:
        # Best score any alive beam can still reach, per example: log-probabilities only decrease, so
        # divide today's best by the largest penalty over lengths step+1..max_len (an endpoint).
        best_alive = s.alive_log_probs[:, 0]  # [batch]
        largest_penalty = jnp.maximum(penalty(s.step + 1), penalty(max_len))
        bound = best_alive / largest_penalty
        worst_finished = s.finished_scores[:, -1]  # [batch]; _NEG until beam_size are finished
        return (best_alive > _NEG) & (bound >= worst_finished)

    def not_finished(s: _BeamState) -> Array:
        return (s.step < max_len) & jnp.any(can_improve(s))

    def advance(s: _BeamState) -> _BeamState:
        logits, cache = step_fn(s.last.reshape(batch * beam), s.cache)  # [batch * beam, vocab]
        vocab = logits.shape[-1]
        log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1).reshape(batch, beam, vocab)
        alive = (s.alive_log_probs > _NEG)[..., None]  # [batch, beam, 1]
        candidates = jnp.where(alive, s.alive_log_probs[..., None] + log_probs, _NEG)
        candidates = jnp.maximum(candidates, _NEG).reshape(batch, beam * vocab)  # never -inf
        length = s.step + 1

        # The beam_size most likely candidates; those ending in EOS (all of them at max_len) finish.
        top_log_probs, top_ids = lax.top_k(candidates, beam)  # [batch, beam]
        top_parents, top_tokens = top_ids // vocab, top_ids % vocab
        ends = (top_tokens == eos_id) | (length == max_len)
        new_scores = jnp.where(ends & (top_log_probs > _NEG), top_log_probs / penalty(length), _NEG)
        new_seqs = _append(s.alive_seqs, top_parents, top_tokens, s.step)
        pooled_scores = jnp.concatenate([s.finished_scores, new_scores], axis=1)  # [batch, 2 * beam]
        pooled_seqs = jnp.concatenate([s.finished_seqs, new_seqs], axis=1)  # [batch, 2 * beam, max_len]
        finished_scores, keep = lax.top_k(pooled_scores, beam)  # [batch, beam]
        finished_seqs = select_beams(pooled_seqs, keep)

        # The beam_size most likely candidates that go on (no EOS) are the new alive beams.
        is_eos = (jnp.arange(beam * vocab) % vocab) == eos_id  # [beam * vocab]
        alive_log_probs, alive_ids = lax.top_k(jnp.where(is_eos, _NEG, candidates), beam)  # [batch, beam]
        parents, tokens = alive_ids // vocab, alive_ids % vocab
        return _BeamState(
            step=length,
            alive_seqs=_append(s.alive_seqs, parents, tokens, s.step),
            alive_log_probs=alive_log_probs,
            last=tokens.astype(jnp.int32),
            cache=gather_beams(cache, parents, beam),
            finished_seqs=finished_seqs,
            finished_scores=finished_scores,
        )

    first_only = jnp.where(jnp.arange(beam) == 0, 0.0, _NEG).astype(jnp.float32)  # one live beam to start
    init = _BeamState(
        step=jnp.array(0, jnp.int32),
        alive_seqs=jnp.full((batch, beam, max_len), pad_id, jnp.int32),
        alive_log_probs=jnp.broadcast_to(first_only, (batch, beam)),
        last=jnp.full((batch, beam), bos_id, jnp.int32),
        cache=expand_to_beams(cache, beam),
        finished_seqs=jnp.full((batch, beam, max_len), pad_id, jnp.int32),
        finished_scores=jnp.full((batch, beam), _NEG, jnp.float32),
    )
    final = lax.while_loop(not_finished, advance, init)
    reached = (final.finished_scores > _NEG)[..., None]  # [batch, beam, 1]
    sequences = jnp.where(reached, final.finished_seqs, jnp.int32(pad_id))
    if return_cache:
        return sequences, final.finished_scores, final.cache
    return sequences, final.finished_scores
