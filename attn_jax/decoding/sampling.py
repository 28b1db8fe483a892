"""Token-by-token decoding: greedy (argmax) and temperature / top-k sampling over a batch.

Both run one ``lax.while_loop`` that calls the model's ``step_fn`` once per position, feeds each row its
previous token, and stops as soon as every row has produced EOS (or after ``max_len`` tokens). Rows that
finished early keep stepping with the pad token while the others go on; their outputs stay padding.

Under ``jax.jit`` the shapes must be static: close over them with ``functools.partial`` or name them in
``static_argnames`` (``batch_size``, ``max_len``, ``top_k``, ``return_cache``), and pass ``step_fn`` as a
static argument. ``bos_id``, ``eos_id``, ``pad_id`` and ``temperature`` may be static or traced; only a
Python ``temperature=0`` switches to argmax::

    decode = jax.jit(functools.partial(greedy_decode, step_fn, batch_size=8, max_len=64, bos_id=1, eos_id=2))
    tokens = decode(cache)  # [8, 64] int32
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array, lax

from attn_jax.decoding.step import Cache, StepFn, check_cache

# (logits [batch, vocab] float32, step scalar int32) -> next tokens [batch] int32
ChooseFn = Callable[[Array, Array], Array]


class _LoopState(NamedTuple):
    step: Array  # [] int32: positions written so far
    tokens: Array  # [batch, max_len] int32 output buffer
    last: Array  # [batch] int32: token fed to the next step
    done: Array  # [batch] bool: row has produced EOS
    cache: Cache


def _validate(batch_size: int, max_len: int) -> None:
    if batch_size < 1 or max_len < 1:
        raise ValueError(f"batch_size and max_len must be >= 1, got {batch_size} and {max_len}.")


def _decode_token_by_token(
    step_fn: StepFn,
    cache: Cache,
    choose: ChooseFn,
    *,
    batch_size: int,
    max_len: int,
    bos_id: int,
    eos_id: int,
    pad_id: int,
) -> tuple[Array, Cache]:
    """Run ``step_fn`` until every row has emitted EOS; ``choose`` turns logits into the next tokens."""
    _validate(batch_size, max_len)
    check_cache(cache, batch_size)

    def not_finished(s: _LoopState) -> Array:
        return (s.step < max_len) & ~jnp.all(s.done)

    def advance(s: _LoopState) -> _LoopState:
        logits, cache = step_fn(s.last, s.cache)  # [batch, vocab]
        token = choose(logits.astype(jnp.float32), s.step).astype(jnp.int32)  # [batch]
        token = jnp.where(s.done, jnp.int32(pad_id), token)
        tokens = s.tokens.at[:, s.step].set(token)
        return _LoopState(s.step + 1, tokens, token, s.done | (token == eos_id), cache)

    init = _LoopState(
        step=jnp.array(0, jnp.int32),
        tokens=jnp.full((batch_size, max_len), pad_id, jnp.int32),
        last=jnp.full((batch_size,), bos_id, jnp.int32),
        done=jnp.zeros((batch_size,), bool),
        cache=cache,
    )
    final = lax.while_loop(not_finished, advance, init)
    return final.tokens, final.cache


def greedy_decode(
    step_fn: StepFn,
    cache: Cache,
    *,
    batch_size: int,
    max_len: int,
    bos_id: int,
    eos_id: int,
    pad_id: int = 0,
    return_cache: bool = False,
) -> Array | tuple[Array, Cache]:
    """Greedy decoding: each row takes the most likely next token (``argmax`` of ``step_fn``'s logits).

    The special case of beam search with one beam (Sutskever et al., 2014) and of sampling at temperature
    0. ``step_fn(tokens [batch] int32, cache) -> (logits [batch, vocab], cache)``; the first call gets
    ``bos_id``. Returns ``[batch, max_len]`` int32 tokens without BOS, with EOS, padded with ``pad_id``
    after EOS; with ``return_cache`` also the cache after the last step (e.g. to read a step counter).
    Stops early once every row has produced EOS.
    """
    tokens, cache = _decode_token_by_token(
        step_fn,
        cache,
        lambda logits, _: jnp.argmax(logits, axis=-1),
        batch_size=batch_size,
        max_len=max_len,
        bos_id=bos_id,
        eos_id=eos_id,
        pad_id=pad_id,
    )
    return (tokens, cache) if return_cache else tokens


def sample_from_logits(rng: Array, logits: Array, *, temperature: float = 1.0, top_k: int = 0) -> Array:
    """Draw one token per row from ``softmax(logits / temperature)`` restricted to the ``top_k`` best.

    Temperature rescales the logits as in Boltzmann machines (Ackley et al., 1985) and distillation
    (Hinton et al., 2015): below 1 sharpens, above 1 flattens, ``0`` (a Python number) is argmax.
    Top-k sampling (Fan et al., 2018) renormalises over the ``top_k`` most likely tokens; ``0`` or a value
    of at least the vocabulary size keeps them all. ``logits [..., vocab]`` -> tokens ``[...]`` int32.
    Ties at the k-th place go to the lower token id, like ``argmax``, so ``top_k=1`` is greedy.
    """
    if top_k < 0:
        raise ValueError(f"top_k must be >= 0 (0 keeps every token), got {top_k}.")
    if isinstance(temperature, int | float):
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}.")
        if temperature == 0:
            return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    neg = jnp.finfo(jnp.float32).min
    scaled = jnp.maximum(logits.astype(jnp.float32) / temperature, neg)  # [..., vocab], never -inf
    vocab = scaled.shape[-1]
    if 0 < top_k < vocab:
        best, best_ids = lax.top_k(scaled, top_k)  # [..., top_k], best first, ties to the lower id
        choice = jax.random.categorical(rng, best, axis=-1)  # [...]
        return jnp.take_along_axis(best_ids, choice[..., None], axis=-1)[..., 0].astype(jnp.int32)
    return jax.random.categorical(rng, scaled, axis=-1).astype(jnp.int32)


def sample_decode(
    step_fn: StepFn,
    cache: Cache,
    rng: Array,
    *,
    batch_size: int,
    max_len: int,
    bos_id: int,
    eos_id: int,
    temperature: float = 1.0,
    top_k: int = 0,
    pad_id: int = 0,
    return_cache: bool = False,
) -> Array | tuple[Array, Cache]:
    """Ancestral sampling with temperature (Ackley et al., 1985) and top-k truncation (Fan et al., 2018).

    At position ``t`` every row draws its next token from ``softmax(logits / temperature)`` over its
    ``top_k`` best tokens (``top_k=0``: all of them) with the key ``fold_in(rng, t)``, so the same ``rng``
    gives the same output. ``top_k=1`` or ``temperature=0`` is greedy decoding. Returns
    ``[batch, max_len]`` int32 tokens without BOS, with EOS, padded with ``pad_id`` after EOS (and the
    final cache with ``return_cache``). Stops early once every row has produced EOS.
    """

    def choose(logits: Array, step: Array) -> Array:
        key = jax.random.fold_in(rng, step)
        return sample_from_logits(key, logits, temperature=temperature, top_k=top_k)

    tokens, cache = _decode_token_by_token(
        step_fn,
        cache,
        choose,
        batch_size=batch_size,
        max_len=max_len,
        bos_id=bos_id,
        eos_id=eos_id,
        pad_id=pad_id,
    )
    return (tokens, cache) if return_cache else tokens
