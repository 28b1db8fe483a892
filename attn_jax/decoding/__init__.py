"""Model-agnostic decoding over a step function: greedy, temperature / top-k sampling and beam search.

Every decoder takes ``step_fn(tokens [batch] int32, cache) -> (logits [batch, vocab], cache)`` and runs a
``lax.while_loop`` that stops once every row has finished, so it jit-compiles over a batch and reuses
whatever state the model carries (key/value cache, RNN carry, encoder memory, coverage). No model is
imported here; models and tasks build the step function.
"""

from attn_jax.decoding.beams import (
    expand_to_beams,
    flatten_beams,
    gather_beams,
    length_penalty,
    select_beams,
    unflatten_beams,
)
from attn_jax.decoding.sampling import greedy_decode, sample_decode, sample_from_logits
from attn_jax.decoding.search import beam_search
from attn_jax.decoding.step import Cache, StepFn, check_cache, is_per_row
