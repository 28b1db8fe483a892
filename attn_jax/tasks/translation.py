"""Translation: a Transformer encoder-decoder, or an RNN sequence-to-sequence model whose attention is
chosen by config; headline metric ``bleu``."""

from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from attn_jax.errors import UserError
from attn_jax.models import encoder_decoder
from attn_jax.models.encoder_decoder import TransformerEncoderDecoder
from attn_jax.models.rnn_seq2seq import ATTENTIONS, CELLS, RNNSeq2Seq, hard_attention_loss
from attn_jax.tasks.base import Batch
from attn_jax.tasks.seq2seq import Seq2SeqTask, StepFn
from attn_jax.tasks.token_bleu import sentence_bleu
from attn_jax.viz import collect_attention_weights

MODELS = ("transformer", "rnn")
# What rewards each sampled hard-attention position (REINFORCE, Williams, 1992; Xu et al., 2015).
HARD_REWARDS = ("likelihood", "token_likelihood", "bleu")


class TranslationTask(Seq2SeqTask):
    """Source-language text -> target-language text (``data.source_lang`` -> ``data.target_lang``)."""

    @functools.cached_property
    def model(self) -> nn.Module:
        m = self.config.model
        if m.name not in MODELS:
            raise UserError(f"Unknown translation model {m.name!r}; valid models: {', '.join(MODELS)}.")
        if m.name == "rnn":
            return self._rnn_model()
        if m.position not in ("sinusoidal", "rotary"):
            raise UserError(f"Unknown position {m.position!r}; valid: sinusoidal, rotary.")
        if m.remat not in encoder_decoder.REMAT_POLICIES:
            valid = ", ".join(encoder_decoder.REMAT_POLICIES)
            raise UserError(f"Unknown remat policy {m.remat!r}; valid: {valid}.")
        if m.embed_dim % m.num_heads:
            raise UserError(f"model.embed_dim {m.embed_dim} must divide by model.num_heads {m.num_heads}.")
        return TransformerEncoderDecoder(
            vocab_size=self.vocab_size,
            embed_dim=m.embed_dim,
            num_encoder_layers=m.num_encoder_layers,
            num_decoder_layers=m.num_decoder_layers,
            num_heads=m.num_heads,
            num_kv_heads=m.get("num_kv_heads"),
            mlp_dim=m.mlp_dim,
            dropout_rate=m.dropout_rate,
            position=m.position,
            share_embeddings=m.share_embeddings,
            tie_output=m.tie_output,
            scan_layers=m.scan_layers,
            remat=m.remat,
            implementation=m.get("implementation"),
            dtype=jnp.dtype(self.config.dtype),
        )

    def _rnn_model(self) -> RNNSeq2Seq:
        m = self.config.model
        if m.attention not in ATTENTIONS:
            raise UserError(f"Unknown attention {m.attention!r}; valid: {', '.join(ATTENTIONS)}.")
        if m.cell not in CELLS:
            raise UserError(f"Unknown RNN cell {m.cell!r}; valid: {', '.join(CELLS)}.")
        if m.hard_reward not in HARD_REWARDS:
            raise UserError(f"Unknown hard_reward {m.hard_reward!r}; valid: {', '.join(HARD_REWARDS)}.")
        if m.hidden_dim % 2:
            raise UserError(f"model.hidden_dim must be even (two encoder directions); got {m.hidden_dim}.")
        return RNNSeq2Seq(
            vocab_size=self.vocab_size,
            embed_dim=m.embed_dim,
            hidden_dim=m.hidden_dim,
            cell=m.cell,
            attention=m.attention,
            attention_units=m.attention_units,
            window=m.window,
            dropout_rate=m.dropout_rate,
            dtype=jnp.dtype(self.config.dtype),
        )

    def forward(self, params: Any, batch: Batch, rng: Array | None) -> tuple[Array, Array]:
        if self.config.model.name == "transformer":
            logits = self.model.apply(
                {"params": params},
                batch["src"],
                batch["tgt_in"],
                deterministic=rng is None,
                rngs=None if rng is None else {"dropout": rng},
            )
            return logits, jnp.float32(0.0)
        rngs = (
            None if rng is None else dict(zip(("dropout", "attention"), jax.random.split(rng), strict=True))
        )
        logits, aux = self.model.apply(
            {"params": params}, batch["src"], batch["tgt_in"], deterministic=rng is None, rngs=rngs
        )
        if "attention_log_prob" not in aux or rng is None:
            return logits, jnp.float32(0.0)
        return logits, self._reinforce_term(logits, aux, batch)

    def _reinforce_term(self, logits: Array, aux: dict[str, Array], batch: Batch) -> Array:
        """REINFORCE for the sampled hard-attention positions, with the batch's mean reward as baseline."""
        m, targets = self.config.model, batch["tgt_out"]
        mask = targets != 0  # [batch, T]
        token_ll = jnp.take_along_axis(jax.nn.log_softmax(logits), targets[..., None], -1)[..., 0]
        if m.hard_reward == "token_likelihood":
            reward = token_ll  # [batch, T]
        elif m.hard_reward == "bleu":  # of the teacher-forced argmax outputs
            reward = 100.0 * sentence_bleu(jnp.argmax(logits, -1), mask, targets, mask)  # [batch]
        else:
            reward = jnp.sum(token_ll * mask, -1)  # [batch]
        reward = jax.lax.stop_gradient(reward)
        baseline = jnp.sum(reward * mask) / jnp.sum(mask) if reward.ndim == 2 else jnp.mean(reward)
        term, _, _ = hard_attention_loss(
            token_ll,
            aux["attention_log_prob"],
            mask,
            baseline,
            reward=reward,
            attention_entropy=aux["attention_entropy"],
            entropy_weight=m.hard_entropy_weight,
            reward_weight=m.hard_reward_weight,
        )
        return term

    def decoding_state(self, params: Any, inputs: dict[str, Array]) -> tuple[StepFn, Any]:
        src = inputs["src"]
        if self.config.model.name == "transformer":
            return encoder_decoder.decoding_state(self.model, params, src, self.config.decode.max_len)
        model = self.model
        memory = model.apply({"params": params}, src, method=model.encode)
        cache = model.apply({"params": params}, memory, method=model.init_cache)

        def step(tokens: Array, cache: Any) -> tuple[Array, Any]:
            return model.apply({"params": params}, tokens, cache, method=model.decode_step)

        return step, cache

    def alignment(self, params: Any, batch: Batch) -> np.ndarray:
        if self.config.model.name == "rnn":
            _, state = self.model.clone(sow_weights=True).apply(
                {"params": params},
                jnp.asarray(batch["src"]),
                jnp.asarray(batch["tgt_in"]),
                mutable=["intermediates"],
            )
            weights = collect_attention_weights(state)
            if not weights:  # attention 'none': nothing to draw
                return np.zeros((*batch["tgt_in"].shape, batch["src"].shape[-1]), np.float32)
            return np.asarray(jax.device_get(next(iter(weights.values()))))  # [batch, tgt_len, src_len]
        # The last decoder layer's cross-attention, averaged over heads.
        model = self.model.clone(sow_weights=True, scan_layers=False, remat="none")
        params = encoder_decoder.unstack_layers(params, self.model)
        _, state = model.apply(
            {"params": params},
            jnp.asarray(batch["src"]),
            jnp.asarray(batch["tgt_in"]),
            mutable=["intermediates"],
        )
        weights = collect_attention_weights(state)
        last = f"decoder_{model.num_decoder_layers - 1}/cross_attention/attention_weights"
        return np.asarray(jax.device_get(weights[last])).mean(axis=1)  # [batch, tgt_len, src_len]
