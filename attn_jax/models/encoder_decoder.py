"""Transformer encoder-decoder for sequence-to-sequence tasks, with cached incremental decoding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import Array

from attn_jax.attention import positions as pos_lib
from attn_jax.models.transformer import DecoderBlock, EncoderBlock

Position = Literal["sinusoidal", "rotary"]
# What a layer keeps for the backward pass (Chen et al., 2016): "none" disables rematerialisation, "full"
# keeps nothing (recomputes the layer), the others keep matrix-product outputs (jax.checkpoint_policies).
REMAT_POLICIES = {
    "none": None,
    "full": None,
    "dots": jax.checkpoint_policies.dots_saveable,
    "dots_with_no_batch_dims": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


class TransformerEncoderDecoder(nn.Module):
    """Pre-LayerNorm Transformer encoder-decoder (Vaswani et al., 2017; Xiong et al., 2020).

    - ``position``: ``'sinusoidal'`` encodings added to the embeddings, or ``'rotary'`` (Su et al., 2021)
      in every self-attention.
    - ``share_embeddings``: one token table for source and target (a shared vocabulary);
      ``tie_output``: the output projection is the target table transposed (Press & Wolf, 2017).
    - ``scan_layers``: layers run under ``nn.scan`` (one compiled layer, parameters stacked on a leading
      ``layers`` axis); ``remat``: what each layer stores for the backward pass, ``'none'`` (everything),
      ``'full'`` to recompute
      each layer in the backward pass, or ``'dots'``/``'dots_with_no_batch_dims'`` (see
      :data:`REMAT_POLICIES`).
    - ``decode``: the decoder keeps a key/value cache in the ``'cache'`` collection and takes the next
      token only (see :meth:`decode_logits`), and its cross-attention keys and values are computed once
      per source (:meth:`cache_memory`); build such a model with :meth:`decoder_for_inference`.

    ``src [batch, src_len]`` and ``tgt_in [batch, tgt_len]`` int ids, 0 = padding, ``tgt_in`` starting
    with BOS -> ``logits [batch, tgt_len, vocab_size]`` float32.
    """

    vocab_size: int
    embed_dim: int = 128
    num_encoder_layers: int = 2
    num_decoder_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int | None = None
    mlp_dim: int = 512
    dropout_rate: float = 0.1
    position: Position = "sinusoidal"
    share_embeddings: bool = True
    tie_output: bool = True
    scan_layers: bool = False
    remat: str = "none"
    decode: bool = False
    implementation: str | None = None
    dtype: Any = None
    sow_weights: bool = False

    def setup(self) -> None:
        if self.position not in ("sinusoidal", "rotary"):
            raise ValueError(f"Unknown position {self.position!r}; valid: sinusoidal, rotary.")
        if self.remat not in REMAT_POLICIES:
            raise ValueError(f"Unknown remat policy {self.remat!r}; valid: {', '.join(REMAT_POLICIES)}.")
        embed = lambda name: nn.Embed(
            self.vocab_size,
            self.embed_dim,
            embedding_init=nn.with_logical_partitioning(
                nn.initializers.normal(stddev=self.embed_dim**-0.5), ("vocab", "embed")
            ),
            dtype=self.dtype,
            name=name,
        )
        self.target_embed = embed("target_embed")
        self.source_embed = self.target_embed if self.share_embeddings else embed("source_embed")
        block = dict(
            num_heads=self.num_heads,
            num_kv_heads=self.num_kv_heads,
            mlp_dim=self.mlp_dim,
            dropout_rate=self.dropout_rate,
            position="rotary" if self.position == "rotary" else "none",
            implementation=self.implementation,
            dtype=self.dtype,
            sow_weights=self.sow_weights,
        )
        # `deterministic` is the last positional argument of each block (static under remat).
        self.encoder_layers = self._stack(EncoderBlock, block, self.num_encoder_layers, "encoder", 3)
        self.decoder_layers = self._stack(
            DecoderBlock, dict(block, decode=self.decode), self.num_decoder_layers, "decoder", 4
        )
        self.encoder_norm = nn.LayerNorm(dtype=self.dtype, name="encoder_norm")
        self.decoder_norm = nn.LayerNorm(dtype=self.dtype, name="decoder_norm")
        self.dropout = nn.Dropout(self.dropout_rate)
        if self.decode:
            self.position_counter = _PositionCounter()
        if not self.tie_output:
            self.logits_dense = nn.Dense(
                self.vocab_size,
                dtype=self.dtype,
                kernel_init=nn.with_logical_partitioning(
                    nn.initializers.xavier_uniform(), ("embed", "vocab")
                ),
                name="logits",
            )

    def _stack(self, block_cls, kwargs: dict, num_layers: int, name: str, deterministic_argnum: int):
        """The layers as one scanned module (parameters ``[layers, ...]``) or a list of modules."""
        if self.remat != "none":
            block_cls = nn.remat(
                block_cls, policy=REMAT_POLICIES[self.remat], static_argnums=(deterministic_argnum,)
            )
        if not self.scan_layers:
            return [block_cls(**kwargs, name=f"{name}_{i}") for i in range(num_layers)]

        def body(layer, x, *args):
            return layer(x, *args), None

        scanned = nn.scan(
            body,
            variable_axes={"params": 0, "intermediates": 0},
            split_rngs={"params": True, "dropout": True},
            in_axes=nn.broadcast,
            length=num_layers,
            metadata_params={nn.PARTITION_NAME: "layers"},
        )
        return (scanned, block_cls(**kwargs, name=name))

    def _run(self, layers, x: Array, *args: Any) -> Array:
        if self.scan_layers:  # (lifted body, template layer)
            scanned, layer = layers
            return scanned(layer, x, *args)[0]
        for layer in layers:
            x = layer(x, *args)
        return x

    def _embed(self, table: nn.Embed, tokens: Array, positions: Array, deterministic: bool) -> Array:
        x = table(tokens) * jnp.asarray(self.embed_dim**0.5, table.dtype or jnp.float32)
        if self.position == "sinusoidal":
            x = x + pos_lib.sinusoidal_positions(positions, self.embed_dim).astype(x.dtype)
        return self.dropout(x, deterministic=deterministic)

    def encode(self, src: Array, *, deterministic: bool = True) -> Array:
        """``src [batch, src_len]`` -> encoder output ``[batch, src_len, embed_dim]``."""
        x = self._embed(self.source_embed, src, jnp.arange(src.shape[-1]), deterministic)
        mask = (src != 0)[:, None, None, :]  # [batch, 1, 1, src_len]
        x = self._run(self.encoder_layers, x, mask, deterministic)
        return self.encoder_norm(x)

    def decode_logits(
        self, memory: Array | None, src: Array, tgt_in: Array, *, deterministic: bool = True
    ) -> Array:
        """Target logits ``[batch, tgt_len, vocab]`` given the encoder output ``memory``.

        With ``decode`` set, ``tgt_in`` is the next token(s) ``[batch, 1]``: their positions and the keys
        they attend to come from the cache, and ``memory`` is ``None`` once :meth:`cache_memory` has put
        the cross-attention keys and values there (``src`` still gives the source padding mask).
        """
        if self.decode:
            positions = self.position_counter(tgt_in.shape[-1])
        else:
            positions = jnp.arange(tgt_in.shape[-1])
        x = self._embed(self.target_embed, tgt_in, positions, deterministic)
        memory_mask = (src != 0)[:, None, None, :]  # [batch, 1, 1, src_len]
        x = self._run(self.decoder_layers, x, memory, memory_mask, deterministic)
        x = self.decoder_norm(x)
        logits = self.target_embed.attend(x) if self.tie_output else self.logits_dense(x)
        return logits.astype(jnp.float32)

    def __call__(self, src: Array, tgt_in: Array, *, deterministic: bool = True) -> Array:
        memory = self.encode(src, deterministic=deterministic)
        return self.decode_logits(memory, src, tgt_in, deterministic=deterministic)

    def cache_memory(self, memory: Array) -> None:
        """With ``decode``: put every decoder layer's cross-attention keys and values of the encoder
        output ``memory [batch, src_len, embed_dim]`` in the ``'cache'`` collection (``[batch, src_len,
        kv_heads, head_dim]`` each), once per source, so that decoding steps need not project it again.
        """
        if not self.decode or self.scan_layers:
            raise ValueError("cache_memory needs decode and unrolled layers: see decoder_for_inference().")
        for layer in self.decoder_layers:
            layer.cache_memory(memory)

    def decoder_for_inference(self) -> TransformerEncoderDecoder:
        """The same model with a key/value cache and unrolled layers, for step-by-step decoding.

        Its parameters are this model's passed through :func:`unstack_layers`.
        """
        return self.clone(decode=True, scan_layers=False, remat="none", dropout_rate=0.0)


class _PositionCounter(nn.Module):
    """Positions of the next ``length`` target tokens while decoding, counted in the ``'cache'``
    collection (initialisation does not advance it)."""

    @nn.compact
    def __call__(self, length: int) -> Array:
        index = self.variable("cache", "position", lambda: jnp.array(0, jnp.int32))
        start = index.value
        if not self.is_initializing():
            index.value = start + length
        return start + jnp.arange(length)


def unstack_layers(params: Any, model: TransformerEncoderDecoder) -> Any:
    """Parameters of a ``scan_layers`` model laid out as those of its unrolled twin.

    ``{'encoder': {leaf: [layers, ...]}}`` -> ``{'encoder_0': {leaf: [...]}, 'encoder_1': ...}``; a model
    without ``scan_layers`` is returned unchanged.
    """
    params = nn.meta.unbox(params)
    if not model.scan_layers:
        return params
    params = dict(params)
    for name, count in (("encoder", model.num_encoder_layers), ("decoder", model.num_decoder_layers)):
        stacked = params.pop(name)
        for i in range(count):
            params[f"{name}_{i}"] = jax.tree.map(lambda x, i=i: x[i], stacked)
    return params


def decoding_state(
    model: TransformerEncoderDecoder, params: Any, src: Array, max_len: int, *, cached: bool = True
) -> tuple[Callable[[Array, Any], tuple[Array, Any]], dict[str, Any]]:
    """A step function and its initial state for :mod:`attn_jax.decoding`, decoding ``src``.

    ``step(tokens [batch], state) -> (logits [batch, vocab], state)``. With ``cached`` the decoder
    appends each token's keys and values to its cache and attends from the new token only, and the
    cross-attention keys and values of the source are computed once, here, into the same cache (the
    state ``{'src', 'cache'}`` then holds no encoder output). Without it, every step re-runs the decoder
    over the whole prefix (padded to ``max_len``) and re-projects the encoder output, the baseline the
    cache is measured against. The encoder runs once, here, in both cases. Every non-scalar leaf of
    the state has a leading batch axis, so beam search can tile and reorder it.
    """
    inference = model.decoder_for_inference()
    params = unstack_layers(params, model)
    memory = inference.apply({"params": params}, src, method=inference.encode)  # [batch, src_len, embed]
    if cached:
        state: dict[str, Any] = {
            "src": src,
            "cache": _decoding_cache(inference, params, src, memory, max_len),
        }

        def step(tokens: Array, state: dict[str, Any]) -> tuple[Array, dict[str, Any]]:
            logits, updated = inference.apply(
                {"params": params, "cache": state["cache"]},
                None,  # the cross-attention keys and values are in the cache
                state["src"],
                tokens[:, None],
                method=inference.decode_logits,
                mutable=["cache"],
            )  # [batch, 1, vocab]
            return logits[:, 0], state | {"cache": updated["cache"]}

        return step, state

    unrolled = inference.clone(decode=False)
    state = {
        "memory": memory,
        "src": src,
        "prefix": jnp.zeros((src.shape[0], max_len), jnp.int32),
        "length": jnp.array(0, jnp.int32),
    }

    def recompute_step(tokens: Array, state: dict[str, Any]) -> tuple[Array, dict[str, Any]]:
        t = state["length"]
        prefix = state["prefix"].at[:, t].set(tokens)
        logits = unrolled.apply(
            {"params": params}, state["memory"], state["src"], prefix, method=unrolled.decode_logits
        )  # [batch, max_len, vocab]; causal, so position t sees tokens 0..t only
        return logits[:, t], state | {"prefix": prefix, "length": t + 1}

    return recompute_step, state


def _decoding_cache(
    inference: TransformerEncoderDecoder, params: Any, src: Array, memory: Array, max_len: int
) -> dict[str, Any]:
    """The ``'cache'`` collection before the first step of ``inference`` (a ``decode`` model).

    Self-attention caches ``[batch, max_len, kv_heads, head_dim]`` are empty and positions start at 0;
    each layer's cross-attention ``cached_key``/``cached_value`` ``[batch, src_len, kv_heads,
    head_dim]`` already hold the projection of ``memory [batch, src_len, embed]`` (the encoder output
    for ``src [batch, src_len]``), made once per source.
    """
    shapes = jax.eval_shape(
        inference.init, jax.random.key(0), src, jnp.zeros((src.shape[0], max_len), jnp.int32)
    )["cache"]
    empty = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    _, filled = inference.apply(
        {"params": params, "cache": empty}, memory, method=inference.cache_memory, mutable=["cache"]
    )
    return filled["cache"]
