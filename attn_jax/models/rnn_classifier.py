"""Sequence classifiers: a bidirectional LSTM read out by additive attention."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jax import Array

from attn_jax.layers.additive import AdditiveAttention


def sequence_lengths(valid: Array) -> Array:
    """``[batch, len]`` boolean (True = real token) -> ``[batch]`` int32: one past the last real token.

    For right-padded batches this is the number of real tokens; a stray 0 inside a sequence is read by
    the LSTMs as a token (and masked out of the attention) rather than cutting the sequence short.
    """
    positions = jnp.arange(1, valid.shape[-1] + 1, dtype=jnp.int32)  # [len]
    return jnp.max(jnp.where(valid, positions, 0), axis=-1)  # [batch]


class BiLSTMClassifier(nn.Module):
    """BiLSTM encoder + additive attention pooling + linear head.

    The encoder is a bidirectional (Schuster & Paliwal, 1997) LSTM (Hochreiter & Schmidhuber, 1997);
    its outputs ``h_j = [h_fwd_j; h_bwd_j]`` are read out by additive attention (Bahdanau et al.,
    2015) with a *learned* query vector ``s`` standing in for the decoder state:
    ``e_j = v^T tanh(W s + U h_j)``, ``a = softmax(e)``, ``c = sum_j a_j h_j``, then
    ``logits = Dense(dropout(c))``. This is the "BiLSTM + additive attention" classifier of the design
    table, as used for document classification by Yang et al. (2016).

    Why :class:`~attn_jax.layers.AdditiveAttention` rather than
    :class:`~attn_jax.layers.AttentionPooling`: the two compute the same function (``W s`` for a
    learned ``s`` is a learned bias, so ``v^T tanh(W s + U h_j)`` is Yang et al.'s
    ``u_w . tanh(W h_j + b)``), but reusing the Bahdanau module makes this literally the additive
    attention of the paper, with its parameter names (``W``, ``U``, ``v``), and lets the query be swapped
    for a real state (e.g. a final encoder state) without touching the scorer.

    The LSTMs are given the sequence lengths (``seq_lengths``), so the backward direction starts at each
    sequence's last real token and padding never leaks into the outputs at real positions: appending
    padding leaves the logits unchanged. Padding must be at the end (right-padded batches).

    ``tokens [batch, len]`` int ids with 0 = padding -> ``logits [batch, num_classes]`` float32.

    Attributes:
      vocab_size: number of token ids (0 is padding).
      num_classes: number of output classes.
      embed_dim: size of the token embeddings (logical axes ``("vocab", "embed")``).
      hidden_dim: LSTM state size per direction (the encoder outputs ``2 * hidden_dim`` features).
      dropout_rate: dropout on the embeddings and on the pooled vector.
      attention_units: size of the hidden layer of the additive score.
      dtype: computation dtype (``None``: inferred; the attention weights are always float32).
      sow_weights: sow the pooling weights ``[batch, len]`` as ``intermediates/pool/attention_weights``
        (the same path as :class:`~attn_jax.models.classifier.TransformerClassifier`).

    Params: ``embed/embedding [vocab, embed]``, ``encoder/{forward_rnn,backward_rnn}/cell/...``,
    ``query [2 * hidden_dim]`` (the learned ``s``), ``pool/{query_proj,memory_proj}/kernel``, ``pool/v``,
    ``head/{kernel,bias}``.
    """

    vocab_size: int
    num_classes: int
    embed_dim: int = 64
    hidden_dim: int = 64
    dropout_rate: float = 0.1
    attention_units: int = 64
    dtype: Any = None
    sow_weights: bool = False

    @nn.compact
    def __call__(self, tokens: Array, *, deterministic: bool = True) -> Array:
        valid = tokens != 0  # [batch, len]
        lengths = sequence_lengths(valid)  # [batch]
        x = nn.Embed(
            self.vocab_size,
            self.embed_dim,
            embedding_init=nn.with_logical_partitioning(
                nn.initializers.normal(stddev=1.0), ("vocab", "embed")
            ),
            dtype=self.dtype,
            name="embed",
        )(tokens)  # [batch, len, embed_dim]
        x = nn.Dropout(self.dropout_rate)(x, deterministic=deterministic)
        # parent=None: the cells and RNNs are adopted by the module that holds them, so the params nest
        # as encoder/forward_rnn/cell/... instead of landing on this module as OptimizedLSTMCell_0.
        lstm = lambda: nn.RNN(
            nn.OptimizedLSTMCell(self.hidden_dim, dtype=self.dtype, parent=None), parent=None
        )
        encoder = nn.Bidirectional(lstm(), lstm(), name="encoder")
        h = encoder(x, seq_lengths=lengths)  # [batch, len, 2 * hidden_dim]
        query = self.param("query", nn.initializers.normal(stddev=1.0), (2 * self.hidden_dim,))
        query = jnp.broadcast_to(query, (*h.shape[:-2], query.shape[-1]))  # [batch, 2 * hidden_dim]
        pooled, _ = AdditiveAttention(
            units=self.attention_units, dtype=self.dtype, sow_weights=self.sow_weights, name="pool"
        )(query, h, valid)  # [batch, 2 * hidden_dim], weights [batch, len]
        pooled = nn.Dropout(self.dropout_rate)(pooled, deterministic=deterministic)
        logits = nn.Dense(self.num_classes, dtype=self.dtype, name="head")(pooled)
        return logits.astype(jnp.float32)
