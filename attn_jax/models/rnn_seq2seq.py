"""RNN encoder-decoder models with every classic attention, and the hard-attention REINFORCE objective.

:class:`RNNSeq2Seq` is the encoder-decoder of Sutskever et al. (2014) with a bidirectional encoder
(Schuster & Paliwal, 1997) and a choice of attention read by the decoder at every step:

=================  =====================================================================================
``attention``      attention layer and decoder flow
=================  =====================================================================================
``none``           no attention: the decoder sees the source only through the encoder's final state
                   (Sutskever et al., 2014)
``bahdanau``       additive attention queried by the previous decoder state, context fed into the RNN
                   (Bahdanau et al., 2015)
``location``       location-aware attention (Chorowski et al., 2015), Bahdanau flow
``coverage``       additive attention with a coverage vector (Tu et al., 2016; See et al., 2017),
                   Bahdanau flow, per-step coverage loss in ``aux``
``hard``           stochastic hard attention (Xu et al., 2015), Bahdanau flow, trained with REINFORCE
                   (:func:`hard_attention_loss`)
``luong_dot``      Luong global attention with the ``dot`` / ``general`` / ``concat`` score, queried by
``luong_general``  the current decoder state; attentional state ``tanh(W_c [c_t; h_t])`` with input
``luong_concat``   feeding (Luong et al., 2015)
``local_m``        Luong local attention, monotonic / predictive window, ``general`` score, Luong flow
``local_p``        (Luong et al., 2015)
=================  =====================================================================================

Models expose the protocol of the generic decoders: ``encode(src) -> memory``,
``init_cache(memory) -> cache`` and ``decode_step(tokens, cache) -> (logits, cache)``; ``__call__`` runs
the same decoder step over all target positions with ``nn.scan`` (compiled once, not unrolled), so
teacher-forced logits equal step-by-step decoding.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from attn_jax.attention.hard import (
    attention_entropy,
    attention_log_prob,
    reinforce_loss,
    sample_attention,
    update_baseline,
)
from attn_jax.attention.location import coverage_loss
from attn_jax.attention.normalizers import mask_logits, softmax
from attn_jax.layers.additive import AdditiveAttention, step_context
from attn_jax.layers.coverage import CoverageAttention
from attn_jax.layers.hard import HardAttention
from attn_jax.layers.local import LocalAttention
from attn_jax.layers.location_aware import LocationAwareAttention
from attn_jax.layers.luong import LuongAttention
from attn_jax.models.rnn_classifier import sequence_lengths

Carry = Any
PyTree = Any

ATTENTIONS = (
    "none",
    "bahdanau",
    "luong_dot",
    "luong_general",
    "luong_concat",
    "local_m",
    "local_p",
    "location",
    "coverage",
    "hard",
)
CELLS = ("lstm", "gru")
# Attentions queried by the previous decoder state whose context enters the RNN (Bahdanau et al., 2015);
# the others are queried by the new state and combined after the RNN (Luong et al., 2015).
BAHDANAU_FLOW = ("bahdanau", "location", "coverage", "hard")
LUONG_FLOW = ("luong_dot", "luong_general", "luong_concat", "local_m", "local_p")
# The decoder RNN scans over target steps with parameters shared and per-step dropout / sampling keys.
SCAN_RNGS = {"params": False, "dropout": True, "attention": True}


def check_choice(kind: str, value: str, valid: tuple[str, ...]) -> None:
    """Raise a ``ValueError`` naming the valid choices when ``value`` is not one of them."""
    if value not in valid:
        raise ValueError(f"Unknown {kind} {value!r}; valid: {', '.join(valid)}.")


def make_cell(cell: str, features: int, dtype: Any = None, **kwargs: Any) -> nn.RNNCellBase:
    """An LSTM (Hochreiter & Schmidhuber, 1997) or GRU (Cho et al., 2014) cell with ``features`` units.

    ``kwargs`` go to the cell (e.g. ``parent=None`` for a cell handed to ``nn.RNN``).
    """
    check_choice("cell", cell, CELLS)
    cls = nn.OptimizedLSTMCell if cell == "lstm" else nn.GRUCell
    return cls(features, dtype=dtype, **kwargs)


def carry_output(carry: Carry) -> Array:
    """The hidden state ``h`` of an LSTM carry ``(c, h)`` or a GRU carry ``h``: ``[batch, features]``."""
    return carry[1] if isinstance(carry, tuple) else carry


def concat_carries(forward: Carry, backward: Carry) -> Carry:
    """Join the final carries of the two encoder directions feature-wise (``(c, h)`` pairs stay pairs)."""
    return jax.tree_util.tree_map(lambda f, b: jnp.concatenate([f, b], axis=-1), forward, backward)


class BidirectionalEncoder(nn.Module):
    """Bidirectional RNN encoder (Schuster & Paliwal, 1997) over right-padded, embedded sequences.

    ``x [batch, len, embed]`` and ``valid [batch, len]`` (True = real token) ->
    ``(outputs [batch, len, 2 * hidden_dim], (forward_carry, backward_carry))``. The RNNs get the
    sequence lengths, so the backward direction starts at each sequence's last real token and each final
    carry is the one at the last real token (padding must be at the end).

    Attributes:
      hidden_dim: state size per direction.
      cell: ``'lstm'`` or ``'gru'``.
      dtype: computation dtype (``None``: inferred).

    Params: ``{forward_rnn,backward_rnn}/cell/...``.
    """

    hidden_dim: int
    cell: str = "lstm"
    dtype: Any = None

    @nn.compact
    def __call__(self, x: Array, valid: Array) -> tuple[Array, tuple[Carry, Carry]]:
        rnn = lambda: nn.RNN(make_cell(self.cell, self.hidden_dim, self.dtype, parent=None), parent=None)
        carries, outputs = nn.Bidirectional(rnn(), rnn(), return_carry=True, name="birnn")(
            x, seq_lengths=sequence_lengths(valid)
        )  # outputs [batch, len, 2 * hidden_dim]
        return outputs, carries


class AttentionDecoderStep(nn.Module):
    """One step of the attentional RNN decoder, shared by teacher forcing (scanned) and decoding.

    ``(state, source, y [batch, embed]) -> (state, outputs)``: ``state`` is the decoder's carry (a dict:
    ``rnn`` carry, and depending on the attention ``feed`` (input feeding, Luong et al., 2015),
    ``prev_weights`` (location-aware, Chorowski et al., 2015), ``coverage`` (Tu et al., 2016),
    ``step`` (local-m)); ``source`` holds ``memory [batch, S, hidden_dim]``, ``keys`` (the projected
    memory) and ``mask [batch, S]``; ``outputs`` holds float32 ``logits [batch, vocab]`` and, with
    attention, ``weights [batch, S]``, plus ``log_prob`` / ``entropy`` ``[batch]`` (hard) or
    ``coverage_loss [batch]`` (coverage).

    Three flows:

    - ``none`` (Sutskever et al., 2014): ``h_t = RNN(h_{t-1}, y_{t-1})``, ``logits = W_o h_t``;
    - Bahdanau (``bahdanau``, ``location``, ``coverage``, ``hard``; Bahdanau et al., 2015, Xu et al.,
      2015): ``c_t = attend(h_{t-1})``, ``h_t = RNN(h_{t-1}, [y_{t-1}; c_t])``,
      ``logits = W_o tanh(W_c [h_t; c_t; y_{t-1}])``;
    - Luong (``luong_*``, ``local_*``; Luong et al., 2015): ``h_t = RNN(h_{t-1}, [y_{t-1}; h~_{t-1}])``,
      ``c_t = attend(h_t)``, ``h~_t = tanh(W_c [c_t; h_t])``, ``logits = W_o h~_t``.

    Hard attention reads the memory row at a position sampled from the attention distribution with the
    ``'attention'`` RNG stream when not ``deterministic``, and at its argmax when ``deterministic``.
    """

    vocab_size: int
    hidden_dim: int
    cell: str = "lstm"
    attention: str = "bahdanau"
    attention_units: int = 64
    window: int = 10
    location_filters: int = 10
    location_filter_width: int = 31
    dropout_rate: float = 0.0
    dtype: Any = None

    def setup(self) -> None:
        check_choice("attention", self.attention, ATTENTIONS)
        self.rnn = make_cell(self.cell, self.hidden_dim, self.dtype)
        self.attend = self.make_attention()
        if self.attention != "none":
            self.combine = nn.Dense(self.hidden_dim, use_bias=False, dtype=self.dtype)  # W_c
        self.dropout = nn.Dropout(self.dropout_rate)
        self.output = nn.Dense(self.vocab_size, dtype=self.dtype)  # W_o

    def make_attention(self) -> nn.Module | None:
        """The attention layer named by ``attention`` (``None`` for ``'none'``)."""
        units, hidden, dtype = self.attention_units, self.hidden_dim, self.dtype
        kind = self.attention
        if kind == "bahdanau":
            return AdditiveAttention(units=units, dtype=dtype)
        if kind.startswith("luong_"):
            score = kind.removeprefix("luong_")
            return LuongAttention(score=score, units=hidden if score == "general" else units, dtype=dtype)
        if kind.startswith("local_"):
            mode = "monotonic" if kind == "local_m" else "predictive"
            return LocalAttention(
                score="general",
                units=hidden,
                mode=mode,
                half_width=self.window,
                position_units=units,
                dtype=dtype,
            )
        if kind == "location":
            return LocationAwareAttention(
                units=units,
                num_filters=self.location_filters,
                filter_width=self.location_filter_width,
                dtype=dtype,
            )
        if kind == "coverage":
            return CoverageAttention(units=units, dtype=dtype)
        if kind == "hard":
            return HardAttention(units=units, dtype=dtype)
        return None

    def project_memory(self, memory: Array) -> Array:
        """The attention keys, computed once per source: ``[batch, S, hidden_dim] -> [batch, S, units]``."""
        return self.attend.project_memory(memory)

    def initial_state(self, encoder_carry: Carry, mask: Array) -> dict[str, Any]:
        """The decoder state before the first target token, from the encoder's final carry.

        Input feeding starts from zeros, location-aware attention from all weight on the first source
        position, coverage from zeros and local-m from step 0.
        """
        state: dict[str, Any] = {"rnn": encoder_carry}
        batch, src_len = mask.shape
        if self.attention in LUONG_FLOW:
            state["feed"] = jnp.zeros((batch, self.hidden_dim), jnp.float32)  # h~_0
        if self.attention == "location":  # all weight on the first source position
            first = jnp.zeros((batch, src_len), jnp.float32).at[:, 0].set(1.0)
            state["prev_weights"] = jnp.where(mask, first, 0.0)
        if self.attention == "coverage":
            state["coverage"] = jnp.zeros((batch, src_len), jnp.float32)
        if self.attention == "local_m":
            state["step"] = jnp.zeros((batch,), jnp.int32)
        return state

    def __call__(
        self, state: dict[str, Any], source: dict[str, Array], y: Array, *, deterministic: bool = True
    ) -> tuple[dict[str, Any], dict[str, Array]]:
        new_state = dict(state)
        outputs: dict[str, Array] = {}
        carry = state["rnn"]
        if self.attention == "none":
            carry, h = self.rnn(carry, y)
            hidden = h
        elif self.attention in BAHDANAU_FLOW:
            context, outputs = self.read(carry_output(carry), state, source, deterministic)
            carry, h = self.rnn(carry, jnp.concatenate([y, context.astype(y.dtype)], axis=-1))
            hidden = jnp.tanh(self.combine(jnp.concatenate([h, context.astype(h.dtype), y], axis=-1)))
        else:
            feed = state["feed"].astype(y.dtype)
            carry, h = self.rnn(carry, jnp.concatenate([y, feed], axis=-1))
            context, outputs = self.read(h, state, source, deterministic)
            hidden = jnp.tanh(self.combine(jnp.concatenate([context.astype(h.dtype), h], axis=-1)))
            new_state["feed"] = hidden.astype(jnp.float32)
        new_state["rnn"] = carry
        if self.attention == "location":
            new_state["prev_weights"] = outputs["weights"]
        if self.attention == "coverage":
            new_state["coverage"] = state["coverage"] + outputs["weights"]
        if self.attention == "local_m":
            new_state["step"] = state["step"] + 1
        hidden = self.dropout(hidden, deterministic=deterministic)
        outputs["logits"] = self.output(hidden).astype(jnp.float32)  # [batch, vocab]
        return new_state, outputs

    def read(
        self, query: Array, state: dict[str, Any], source: dict[str, Array], deterministic: bool
    ) -> tuple[Array, dict[str, Array]]:
        """Attend from ``query [batch, q_features]``: ``(context [batch, hidden_dim], outputs)``."""
        memory, keys, mask = source["memory"], source["keys"], source["mask"]
        kind = self.attention
        if kind == "hard":
            return self.read_hard(query, source, deterministic)
        if kind == "location":
            context, weights = self.attend(query, memory, state["prev_weights"], mask, projected_memory=keys)
        elif kind == "coverage":
            context, weights, _ = self.attend(query, memory, state["coverage"], mask, projected_memory=keys)
            return context, {"weights": weights, "coverage_loss": coverage_loss(weights, state["coverage"])}
        elif kind == "local_m":
            context, weights = self.attend(query, memory, mask, step=state["step"], projected_memory=keys)
        else:
            context, weights = self.attend(query, memory, mask, projected_memory=keys)
        return context, {"weights": weights}

    def read_hard(
        self, query: Array, source: dict[str, Array], deterministic: bool
    ) -> tuple[Array, dict[str, Array]]:
        """Hard attention (Xu et al., 2015): the memory row at a sampled (or the argmax) position.

        Sampling draws from the ``'attention'`` RNG stream; the parameters and logits are those of
        :class:`~attn_jax.layers.HardAttention`, whose own ``__call__`` samples from ``'sample'``.
        """
        memory, mask = source["memory"], source["mask"]
        logits = self.attend.alignment_logits(query, source["keys"])  # [batch, S]
        if deterministic:
            index = jnp.argmax(mask_logits(logits, mask), axis=-1).astype(jnp.int32)
        else:
            index = sample_attention(self.make_rng("attention"), logits, mask)  # [batch]
        weights = softmax(logits, mask)  # [batch, S]
        allowed = jnp.any(mask, axis=-1)  # [batch]
        one_hot = jax.nn.one_hot(index, logits.shape[-1], dtype=jnp.float32) * allowed[:, None]
        (values,) = nn.dtypes.promote_dtype(memory, dtype=self.dtype)
        outputs = {
            "weights": weights,
            "log_prob": jnp.where(allowed, attention_log_prob(logits, index, mask), 0.0),
            "entropy": attention_entropy(logits, mask),
        }
        return step_context(one_hot, values), outputs


class RNNSeq2Seq(nn.Module):
    """RNN encoder-decoder (Sutskever et al., 2014) with a configurable attention.

    Encoder: embeddings and a bidirectional LSTM/GRU with ``hidden_dim // 2`` units per direction, so
    the memory ``h_j = [h_fwd_j; h_bwd_j]`` has ``hidden_dim`` features (the decoder's state size, as
    Luong's ``dot`` score needs) and the decoder starts from the two final states concatenated.
    Decoder: :class:`AttentionDecoderStep` (see there for the three flows), scanned over target
    positions. ``attention`` is one of :data:`ATTENTIONS`; ``'none'`` has no attention parameters at all.

    Stochastic parts: dropout (``'dropout'`` RNG stream) and, for ``'hard'`` attention when not
    ``deterministic``, the attended position, sampled per step from the ``'attention'`` RNG stream
    (Xu et al., 2015). With ``deterministic=True`` hard attention reads the argmax position.

    Attributes:
      vocab_size: target vocabulary size (0 is padding).
      src_vocab_size: source vocabulary size (``None``: ``vocab_size``).
      embed_dim: size of the source and target embeddings.
      hidden_dim: decoder state size and memory feature size (even).
      cell: ``'lstm'`` or ``'gru'``, for encoder and decoder.
      attention: see :data:`ATTENTIONS`.
      attention_units: hidden size of the additive/concat scores and of local-p's position network.
      window: half-width ``D`` of local attention's window.
      location_filters, location_filter_width: filters of location-aware attention.
      dropout_rate: dropout on the embeddings and before the output layer.
      dtype: computation dtype (``None``: inferred); logits and attention weights are float32.
      sow_weights: sow the attention weights ``[batch, T, S]`` (``[batch, S]`` from ``decode_step``) as
        ``intermediates/attention_weights``.

    Params: ``src_embed``, ``tgt_embed``, ``encoder/birnn/...``, ``decoder/rnn``, ``decoder/attend``
    (absent for ``'none'``), ``decoder/combine``, ``decoder/output``.
    """

    vocab_size: int
    src_vocab_size: int | None = None
    embed_dim: int = 64
    hidden_dim: int = 64
    cell: str = "lstm"
    attention: str = "bahdanau"
    attention_units: int = 64
    window: int = 10
    location_filters: int = 10
    location_filter_width: int = 31
    dropout_rate: float = 0.0
    dtype: Any = None
    sow_weights: bool = False

    def setup(self) -> None:
        check_choice("attention", self.attention, ATTENTIONS)
        check_choice("cell", self.cell, CELLS)
        if self.hidden_dim % 2:
            raise ValueError(
                f"RNNSeq2Seq needs an even hidden_dim (hidden_dim // 2 units per encoder direction), "
                f"got {self.hidden_dim}."
            )
        embedding_init = nn.with_logical_partitioning(nn.initializers.normal(stddev=1.0), ("vocab", "embed"))
        embed = lambda n: nn.Embed(
            n,
            self.embed_dim,
            embedding_init=embedding_init,
            dtype=self.dtype,
        )
        self.src_embed = embed(self.src_vocab_size or self.vocab_size)
        self.tgt_embed = embed(self.vocab_size)
        self.encoder = BidirectionalEncoder(self.hidden_dim // 2, self.cell, self.dtype)
        self.decoder = AttentionDecoderStep(
            vocab_size=self.vocab_size,
            hidden_dim=self.hidden_dim,
            cell=self.cell,
            attention=self.attention,
            attention_units=self.attention_units,
            window=self.window,
            location_filters=self.location_filters,
            location_filter_width=self.location_filter_width,
            dropout_rate=self.dropout_rate,
            dtype=self.dtype,
        )
        self.dropout = nn.Dropout(self.dropout_rate)

    def encode(self, src: Array, *, deterministic: bool = True) -> dict[str, Any]:
        """``src [batch, S]`` int (0 = pad) -> ``{'memory' [batch, S, hidden_dim], 'mask' [batch, S],
        'final'}`` where ``final`` is the encoders' final carry joined over directions."""
        mask = src != 0  # [batch, S]
        x = self.dropout(self.src_embed(src), deterministic=deterministic)  # [batch, S, embed_dim]
        memory, (forward, backward) = self.encoder(x, mask)  # [batch, S, hidden_dim]
        return {"memory": memory, "mask": mask, "final": concat_carries(forward, backward)}

    def init_cache(self, memory: dict[str, Any]) -> dict[str, Any]:
        """The decoding cache ``{'source': {memory, keys, mask}, 'decoder': state}``.

        Every leaf has a leading batch axis, so beam search can tile and reorder it.
        """
        source = {"memory": memory["memory"], "mask": memory["mask"]}
        if self.attention != "none":
            source["keys"] = self.decoder.project_memory(memory["memory"])  # [batch, S, units]
        return {"source": source, "decoder": self.decoder.initial_state(memory["final"], memory["mask"])}

    def decode_step(self, tokens: Array, cache: dict[str, Any]) -> tuple[Array, dict[str, Any]]:
        """One deterministic step: ``tokens [batch]`` (the previous token) -> ``(logits [batch, vocab]
        float32, cache)``."""
        y = self.tgt_embed(tokens)  # [batch, embed_dim]
        state, outputs = self.decoder(cache["decoder"], cache["source"], y, deterministic=True)
        if "weights" in outputs and self.sow_weights:
            self.sow("intermediates", "attention_weights", outputs["weights"])
        return outputs["logits"], {**cache, "decoder": state}

    def __call__(
        self, src: Array, tgt_in: Array, *, deterministic: bool = True
    ) -> tuple[Array, dict[str, Array]]:
        """Teacher-forced logits.

        Args:
          src: ``[batch, S]`` int source ids, 0 = padding (right-padded).
          tgt_in: ``[batch, T]`` int target ids shifted right (BOS first).
          deterministic: no dropout; hard attention reads the argmax position instead of sampling.

        Returns:
          ``(logits [batch, T, vocab] float32, aux)``; ``aux`` holds ``attention_log_prob`` and
          ``attention_entropy`` ``[batch, T]`` for ``'hard'`` and ``coverage_loss [batch, T]`` for
          ``'coverage'`` (empty otherwise).
        """
        cache = self.init_cache(self.encode(src, deterministic=deterministic))
        y = self.dropout(self.tgt_embed(tgt_in), deterministic=deterministic)  # [batch, T, embed_dim]
        scan = nn.scan(
            lambda step, state, source, y_t: step(state, source, y_t, deterministic=deterministic),
            variable_broadcast="params",
            split_rngs=SCAN_RNGS,
            in_axes=(nn.broadcast, 1),
            out_axes=1,
        )
        _, outputs = scan(self.decoder, cache["decoder"], cache["source"], y)  # each [batch, T, ...]
        if "weights" in outputs and self.sow_weights:
            self.sow("intermediates", "attention_weights", outputs["weights"])  # [batch, T, S]
        aux = {}
        if "log_prob" in outputs:
            aux["attention_log_prob"] = outputs["log_prob"]
            aux["attention_entropy"] = outputs["entropy"]
        if "coverage_loss" in outputs:
            aux["coverage_loss"] = outputs["coverage_loss"]
        return outputs["logits"], aux


def hard_attention_loss(
    token_log_likelihood: ArrayLike,
    attention_log_prob: ArrayLike,
    target_mask: ArrayLike,
    baseline: ArrayLike,
    *,
    reward: ArrayLike | None = None,
    attention_entropy: ArrayLike | None = None,
    entropy_weight: float = 0.0,
    reward_weight: float = 1.0,
    baseline_decay: float = 0.9,
) -> tuple[Array, Array, dict[str, Array]]:
    """REINFORCE term for hard attention (Xu et al., 2015, eq. 11-12; Williams, 1992).

    Each decoder step's sampled position (``log p = attention_log_prob[:, t]``) is credited with a reward
    ``R``:

    - default: the sequence log-likelihood ``sum_t token_log_likelihood`` (no gradient), the reward of
      Xu et al. (2015), shared by all steps of a sequence;
    - ``reward [batch]``: any per-sequence reward, e.g. sentence BLEU computed outside ``jit``;
    - ``reward [batch, T]``: a per-step reward, e.g. ``token_log_likelihood`` itself, which credits each
      sample with its own token only: biased (it ignores a sample's effect on later tokens) but of much
      lower variance, so it learns far faster on small problems.

    The term is ``reward_weight * sum_{b,t} -(R - baseline) log p / num_tokens`` (the scale of a
    token-averaged NLL) minus ``entropy_weight`` times the mean per-token attention entropy. Add it to the
    NLL. The baseline is a moving average of the mean reward (per sequence, or per token for a per-step
    reward), carried by the caller between steps; start it near the first rewards (e.g. 0 for BLEU, the
    first batch's mean for log-likelihoods) or accept a few noisy steps.

    Args:
      token_log_likelihood: ``[batch, T]`` float ``log p(y_t | ...)`` of the targets.
      attention_log_prob: ``[batch, T]`` from ``aux['attention_log_prob']``.
      target_mask: ``[batch, T]`` True (or 1) at real target tokens.
      baseline: scalar float, the current reward baseline.
      reward: optional ``[batch]`` or ``[batch, T]`` reward replacing the sequence log-likelihood.
      attention_entropy: optional ``[batch, T]`` from ``aux['attention_entropy']``.
      entropy_weight: weight ``lambda_e`` of the entropy bonus.
      reward_weight: weight ``lambda_r`` of the REINFORCE term.
      baseline_decay: decay of the moving-average baseline.

    Returns:
      ``(loss_term, new_baseline, metrics)``: scalar float32, scalar float32 and a dict of scalars
      (``reward``, ``baseline``, ``advantage``, and ``attention_entropy`` when given).
    """
    mask = jnp.asarray(target_mask, jnp.float32)  # [batch, T]
    num_tokens = jnp.maximum(jnp.sum(mask), 1.0)
    if reward is None:
        reward = jnp.sum(jnp.asarray(token_log_likelihood, jnp.float32) * mask, axis=-1)  # [batch]
    reward = jax.lax.stop_gradient(jnp.asarray(reward, jnp.float32))
    if reward.ndim == 1:  # per sequence
        mean_reward = jnp.mean(reward)
        reward = reward[:, None]  # [batch, 1]
    else:  # per step
        mean_reward = jnp.sum(reward * mask) / num_tokens
    baseline = jnp.asarray(baseline, jnp.float32)
    log_prob = jnp.asarray(attention_log_prob, jnp.float32) * mask  # [batch, T]
    # reinforce_loss averages over all batch * T entries; rescale to a sum per real target token.
    rewards = jnp.broadcast_to(reward, log_prob.shape)
    loss = reward_weight * reinforce_loss(log_prob, rewards, baseline) * (log_prob.size / num_tokens)
    metrics = {"reward": mean_reward, "baseline": baseline, "advantage": mean_reward - baseline}
    if attention_entropy is not None:
        mean_entropy = jnp.sum(jnp.asarray(attention_entropy, jnp.float32) * mask) / num_tokens
        loss = loss - entropy_weight * mean_entropy
        metrics["attention_entropy"] = mean_entropy
    return loss, update_baseline(baseline, mean_reward, baseline_decay), metrics
