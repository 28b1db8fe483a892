"""Hard (stochastic) attention of Xu et al. (2015), "Show, Attend and Tell", for one decoder step."""

from __future__ import annotations

import flax.linen as nn
import flax.struct
import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from attn_jax.attention.hard import attention_entropy, attention_log_prob, sample_attention
from attn_jax.attention.normalizers import mask_logits, softmax
from attn_jax.layers.additive import AdditiveAttention, step_context


@flax.struct.dataclass
class HardAttentionOutput:
    """What :class:`HardAttention` returns for one decoder step (Xu et al., 2015).

    Attributes:
      context: ``[batch..., features]``, the memory row at ``index`` (zeros for a fully masked row).
      weights: ``[batch..., kv_len]`` float32, the distribution ``index`` was drawn from.
      index: ``[batch...]`` int32, the attended position.
      log_prob: ``[batch...]`` float32 ``log weights[index]`` (0 for a fully masked row); feed it to
        :func:`attn_jax.attention.reinforce_loss`.
      entropy: ``[batch...]`` float32 entropy of ``weights``, for the entropy bonus.
    """

    context: Array
    weights: Array
    index: Array
    log_prob: Array
    entropy: Array


class HardAttention(AdditiveAttention):
    """Stochastic hard attention (Xu et al., 2015): read one memory position drawn from the attention.

    The logits are additive, ``e_j = v^T tanh(W s + U h_j [+ b])`` (the parameters and attributes of
    :class:`AdditiveAttention`), ``alpha = softmax(e)``. When not ``deterministic`` an index is sampled
    from ``alpha`` with the ``'sample'`` RNG stream (``rngs={'sample': key}``); when ``deterministic``
    it is ``argmax alpha``. The context is the memory row at that index, so the attention parameters get
    no gradient through it: train them with :func:`attn_jax.attention.reinforce_loss` on ``log_prob``
    (REINFORCE, Williams, 1992), a baseline and the entropy bonus, as in the paper.

    Attributes (besides those of :class:`AdditiveAttention`):
      deterministic: argmax instead of sampling; may also be given to ``__call__``.
    """

    deterministic: bool | None = None

    def __call__(
        self,
        query: ArrayLike,
        memory: ArrayLike,
        mask: ArrayLike | None = None,
        *,
        deterministic: bool | None = None,
        projected_memory: ArrayLike | None = None,
    ) -> HardAttentionOutput:
        """Attend to one sampled (or the most likely) position.

        Args:
          query: ``[batch..., q_features]`` decoder state.
          memory: ``[batch..., kv_len, features]``.
          mask: optional boolean ``[batch..., kv_len]``, True = may attend; masked positions are never
            chosen.
          deterministic: overrides the attribute of the same name.
          projected_memory: ``project_memory(memory)``, if already computed.

        Returns:
          a :class:`HardAttentionOutput`.
        """
        deterministic = nn.merge_param("deterministic", self.deterministic, deterministic)
        keys = self.project_memory(memory) if projected_memory is None else projected_memory
        logits = self.alignment_logits(query, keys)  # [batch..., kv_len]
        weights = softmax(logits, mask)
        if deterministic:
            index = jnp.argmax(mask_logits(logits, mask), axis=-1).astype(jnp.int32)
        else:
            index = sample_attention(self.make_rng("sample"), logits, mask)  # [batch...]
        allowed = jnp.any(weights > 0, axis=-1)  # [batch...]: False for a fully masked row
        one_hot = jax.nn.one_hot(index, logits.shape[-1], dtype=jnp.float32) * allowed[..., None]
        log_prob = jnp.where(allowed, attention_log_prob(logits, index, mask), 0.0)
        if self.sow_weights:
            self.sow("intermediates", "attention_weights", weights)
        (values,) = nn.dtypes.promote_dtype(memory, dtype=self.dtype)
        return HardAttentionOutput(
            context=step_context(one_hot, values),
            weights=weights,
            index=index,
            log_prob=log_prob,
            entropy=attention_entropy(logits, mask),
        )
