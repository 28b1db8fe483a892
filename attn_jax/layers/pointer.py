"""The pointer-generator output layer (See et al., 2017): generate a word or copy one from the source."""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from attn_jax.attention.normalizers import log_softmax, softmax
from attn_jax.attention.pointer import (
    DEFAULT_FLOOR,
    copy_distribution,
    mix_copy_and_generate,
    pad_vocab,
)

Initializer = Any


class PointerGenerator(nn.Module):
    """Pointer-generator output distribution (See et al., 2017, "Get To The Point", section 2.2).

    ``p_gen = sigmoid(w_h . h*_t + w_s . s_t + w_x . x_t + b_ptr)`` and
    ``P(w) = p_gen P_vocab(w) + (1 - p_gen) sum_{i: w_i = w} a_t,i`` over the extended vocabulary
    (the fixed vocabulary followed by each example's source OOVs; see
    :mod:`attn_jax.attention.pointer`).

    The decoder's attention weights, context vector, state and vocabulary logits are inputs, so the layer
    fits any attentional decoder (coverage, Bahdanau, Luong, ...).

    Attributes:
      copy: mix in the copy distribution. With ``copy=False`` the output is the plain vocabulary
        log-softmax, padded to the extended size with ``log(floor)`` (about zero probability), ``p_gen``
        is all ones and the layer has no parameters: the same model then trains without copying
        (an ablation).
      floor: probability added to every word before the log (never ``log(0)``).
      dtype: computation dtype of the ``p_gen`` projections (inferred when ``None``).
      param_dtype: dtype of the parameters.
      kernel_init: initialiser of ``w_h``, ``w_s``, ``w_x`` (each ``[features, 1]``).
      bias_init: initialiser of ``b_ptr`` (a scalar).
      sow_weights: sow ``p_gen`` (float32 ``[batch...]``) as ``intermediates/p_gen``.

    Params (``copy=True``): ``w_h/kernel [d_c, 1]``, ``w_s/kernel [d_s, 1]``, ``w_x/kernel [d_x, 1]``,
    ``b_ptr []``.
    """

    copy: bool = True
    floor: float = DEFAULT_FLOOR
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Initializer = nn.initializers.lecun_normal()
    bias_init: Initializer = nn.initializers.zeros_init()
    sow_weights: bool = False

    @nn.compact
    def __call__(
        self,
        vocab_logits: ArrayLike,
        attention_weights: ArrayLike,
        context: ArrayLike,
        decoder_state: ArrayLike,
        decoder_input: ArrayLike,
        source_ids: ArrayLike,
        extended_vocab_size: int,
        source_mask: ArrayLike | None = None,
    ) -> tuple[Array, Array]:
        """Log-probabilities over the extended vocabulary for one decoder step (or many at once).

        Args:
          vocab_logits: ``[batch..., vocab_size]`` logits of the generation distribution ``P_vocab``.
          attention_weights: ``[batch..., src_len]`` the decoder's attention ``a_t`` over the source.
          context: ``[batch..., d_c]`` the context vector ``h*_t``.
          decoder_state: ``[batch..., d_s]`` the decoder state ``s_t``.
          decoder_input: ``[batch..., d_x]`` the decoder input ``x_t``.
          source_ids: ``[batch..., src_len]`` source word ids in the extended vocabulary.
          extended_vocab_size: static Python int, ``vocab_size`` plus the batch's largest number of
            source OOVs (padded to a fixed maximum to avoid recompiling).
          source_mask: boolean ``[batch..., src_len]``, ``True`` = real source position.

        Returns:
          ``(log_probs, p_gen)``: float32 ``[batch..., extended_vocab_size]`` (exponentiates to a
          distribution, up to ``floor`` per word) and float32 ``[batch...]``.
        """
        vocab_logits = jnp.asarray(vocab_logits)
        batch_shape = vocab_logits.shape[:-1]
        if not self.copy:
            log_probs = pad_vocab(log_softmax(vocab_logits), extended_vocab_size, math.log(self.floor))
            p_gen = jnp.ones(batch_shape, jnp.float32)
        else:
            p_gen = jax.nn.sigmoid(self._p_gen_logit(context, decoder_state, decoder_input))
            copy_dist = copy_distribution(
                attention_weights, source_ids, extended_vocab_size, source_mask
            )  # [batch..., extended_vocab_size]
            log_probs = mix_copy_and_generate(
                softmax(vocab_logits), copy_dist, p_gen, floor=self.floor
            )
        if self.sow_weights:
            self.sow("intermediates", "p_gen", p_gen)
        return log_probs, p_gen

    def _p_gen_logit(self, context: ArrayLike, state: ArrayLike, inputs: ArrayLike) -> Array:
        """``w_h . h*_t + w_s . s_t + w_x . x_t + b_ptr`` as float32 ``[batch...]``."""

        def dense(name: str) -> nn.Dense:
            return nn.Dense(
                1,
                use_bias=False,
                dtype=self.dtype,
                param_dtype=self.param_dtype,
                kernel_init=self.kernel_init,
                name=name,
            )

        logit = dense("w_h")(context) + dense("w_s")(state) + dense("w_x")(inputs)  # [batch..., 1]
        b_ptr = self.param("b_ptr", self.bias_init, (), self.param_dtype)
        return logit[..., 0].astype(jnp.float32) + b_ptr.astype(jnp.float32)
