"""Multi-head attention with grouped key/value heads, position schemes and a decoding cache."""

from __future__ import annotations

from typing import Any, Literal

import flax.linen as nn
import jax.numpy as jnp
from jax import Array, lax

from attn_jax.attention import masks as masks_lib
from attn_jax.attention import positions as pos_lib
from attn_jax.attention.dot_product import dot_product_attention
from attn_jax.layers.positional import ALiBiBias, RelativePositionBias

PositionScheme = Literal["none", "rotary", "alibi", "relative"]


class MultiHeadAttention(nn.Module):
    """Multi-head attention (Vaswani et al., 2017) for self- and cross-attention.

    Parameters have the layout of ``flax.linen.MultiHeadDotProductAttention`` (``query``, ``key``,
    ``value``, ``out`` DenseGeneral kernels, optional ``query_ln``/``key_ln``), so weights move between
    the two, and carry logical axis names (``embed``, ``heads``, ``kv_heads``, ``head_dim``) for
    sharding by rules.

    Options, each from its paper:
      - ``num_kv_heads``: grouped-query attention (Ainslie et al., 2023); 1 is multi-query attention
        (Shazeer, 2019). Defaults to ``num_heads``.
      - ``position``: ``'rotary'`` (Su et al., 2021), ``'alibi'`` (Press et al., 2022), ``'relative'``
        (T5 buckets, Raffel et al., 2020; Shaw et al., 2018) or ``'none'`` (positions added elsewhere).
      - ``qk_norm``: LayerNorm on queries and keys (Dehghani et al., 2023).
      - ``causal`` / ``window``: causal and sliding-window masks (Beltagy et al., 2020).
      - ``decode``: a key/value cache in the ``'cache'`` collection for incremental decoding. Initialise
        with inputs of the full maximum length; each later call appends its ``len`` tokens.
      - ``static_kv``: cross-attention while decoding, to inputs that are the same at every step (an
        encoder's output), as fairseq's ``static_kv`` (Ott et al., 2019). A call given ``inputs_kv``
        projects it and keeps the keys and values in the ``'cache'`` collection (``cached_key``,
        ``cached_value`` ``[batch..., kv_len, kv_heads, head_dim]``); a call without ``inputs_kv``
        attends to them, so a step never re-projects the source. ``module(None, inputs_kv)`` only fills
        the cache and returns ``None`` (without ``head_dim``, the head size then comes from the width
        of ``inputs_kv``, which must equal that of ``inputs_q``).

    Call: ``inputs_q [batch..., q_len, features]``, ``inputs_kv [batch..., kv_len, features]`` (defaults
    to ``inputs_q``; with ``static_kv``, to the cached keys and values); ``mask`` boolean and ``bias``
    float, broadcastable to ``[batch..., heads, q_len, kv_len]`` (``kv_len`` is the cache length when
    decoding); ``q_positions``/``kv_positions`` ``[batch..., len]`` integer positions for the position
    scheme (default ``0..len-1``, offset by the cache index when decoding). Returns
    ``[batch..., q_len, out_features]``. With ``sow_weights``, sows ``attention_weights``
    ``[batch..., heads, q_len, kv_len]`` into ``'intermediates'``.
    """

    num_heads: int
    num_kv_heads: int | None = None
    head_dim: int | None = None
    out_features: int | None = None
    causal: bool = False
    window: int | tuple[int, int] | None = None
    position: PositionScheme = "none"
    rotary_base: float = 10_000.0
    relative_buckets: int = 32
    relative_max_distance: int = 128
    qk_norm: bool = False
    dropout_rate: float = 0.0
    use_bias: bool = True
    decode: bool = False
    static_kv: bool = False
    implementation: str | None = None
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros_init()
    sow_weights: bool = False

    @nn.compact
    def __call__(
        self,
        inputs_q: Array | None,
        inputs_kv: Array | None = None,
        *,
        mask: Array | None = None,
        bias: Array | None = None,
        q_positions: Array | None = None,
        kv_positions: Array | None = None,
        deterministic: bool = True,
    ) -> Array | None:
        if self.static_kv and self.decode:
            raise ValueError("static_kv (cross-attention) and decode (self-attention) exclude each other.")
        if inputs_q is None and (not self.static_kv or inputs_kv is None):
            raise ValueError("inputs_q may be None only with static_kv, to cache inputs_kv's keys/values.")
        if inputs_kv is None and not self.static_kv:
            inputs_kv = inputs_q
        features = (inputs_kv if inputs_q is None else inputs_q).shape[-1]
        kv_heads = self.num_kv_heads or self.num_heads
        head_dim = self.head_dim or features // self.num_heads
        if self.num_heads % kv_heads:
            raise ValueError(f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({kv_heads}).")
        if self.head_dim is None and features % self.num_heads:
            raise ValueError(
                f"features ({features}) must be divisible by num_heads ({self.num_heads}), or set head_dim."
            )

        if inputs_q is None:  # static_kv: only fill the cache
            self._static_key_value(inputs_kv, kv_heads, head_dim)
            return None
        query = self._project("query", self.num_heads, "heads", head_dim)(inputs_q)
        if self.static_kv:
            key, value = self._static_key_value(inputs_kv, kv_heads, head_dim)
        else:
            key, value = self._key_value(inputs_kv, kv_heads, head_dim)
        # query [batch..., q_len, heads, head_dim]; key, value [batch..., kv_len, kv_heads, head_dim]
        if self.qk_norm:
            query = nn.LayerNorm(name="query_ln", use_bias=False, dtype=self.dtype)(query)

        q_len, kv_len = query.shape[-3], key.shape[-3]
        q_positions = jnp.arange(q_len) if q_positions is None else q_positions
        kv_positions = jnp.arange(kv_len) if kv_positions is None else kv_positions
        offset = self._cache_index() if self.decode else 0  # tokens already in the cache
        q_positions = q_positions + offset
        kv_positions = kv_positions + offset
        if self.position == "rotary":
            query = pos_lib.apply_rotary(query, q_positions, base=self.rotary_base)
            key = pos_lib.apply_rotary(key, kv_positions, base=self.rotary_base)

        causal, window = self.causal, self.window
        if self.decode:
            key, value, kv_positions, mask = self._append_to_cache(key, value, offset, mask)
            causal, window = False, None  # folded into the mask, which knows the offset

        position_bias = self._position_bias(q_positions, kv_positions)
        if position_bias is not None:
            bias = position_bias if bias is None else bias + position_bias

        dropout_rng = None
        if not deterministic and self.dropout_rate > 0.0:
            dropout_rng = self.make_rng("dropout")
        result = dot_product_attention(
            query,
            key,
            value,
            bias=bias,
            mask=mask,
            causal=causal,
            window=window,
            dropout_rate=self.dropout_rate,
            dropout_rng=dropout_rng,
            deterministic=deterministic,
            return_weights=self.sow_weights,
            implementation=self.implementation,
        )
        if self.sow_weights:
            out, weights = result  # weights [batch..., heads, q_len, kv_len]
            self.sow("intermediates", "attention_weights", weights)
        else:
            out = result  # [batch..., q_len, heads, head_dim]

        return nn.DenseGeneral(
            features=self.out_features or features,
            axis=(-2, -1),
            use_bias=self.use_bias,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=nn.with_logical_partitioning(self.kernel_init, ("heads", "head_dim", "embed")),
            bias_init=nn.with_logical_partitioning(self.bias_init, ("embed",)),
            name="out",
        )(out)

    def _project(self, name: str, heads: int, heads_axis: str, head_dim: int) -> nn.DenseGeneral:
        return nn.DenseGeneral(
            features=(heads, head_dim),
            axis=-1,
            use_bias=self.use_bias,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=nn.with_logical_partitioning(self.kernel_init, ("embed", heads_axis, "head_dim")),
            bias_init=nn.with_logical_partitioning(self.bias_init, (heads_axis, "head_dim")),
            name=name,
        )

    def _key_value(self, inputs_kv: Array, kv_heads: int, head_dim: int) -> tuple[Array, Array]:
        """Keys (after ``key_ln``) and values of ``inputs_kv [batch..., kv_len, features]``, each
        ``[batch..., kv_len, kv_heads, head_dim]``; no position scheme is applied yet."""
        key = self._project("key", kv_heads, "kv_heads", head_dim)(inputs_kv)
        value = self._project("value", kv_heads, "kv_heads", head_dim)(inputs_kv)
        if self.qk_norm:
            key = nn.LayerNorm(name="key_ln", use_bias=False, dtype=self.dtype)(key)
        return key, value

    def _static_key_value(self, inputs_kv: Array | None, kv_heads: int, head_dim: int) -> tuple[Array, Array]:
        """``static_kv``: keys and values of ``inputs_kv`` written to the cache, or, without
        ``inputs_kv``, the cached ones (``[batch..., kv_len, kv_heads, head_dim]`` each)."""
        if inputs_kv is not None:
            key, value = self._key_value(inputs_kv, kv_heads, head_dim)
            self.put_variable("cache", "cached_key", key)
            self.put_variable("cache", "cached_value", value)
            return key, value
        if not self.has_variable("cache", "cached_key"):
            raise ValueError(
                "static_kv: no cached keys/values; call once with inputs_kv (e.g. the encoder output)."
            )
        return self.get_variable("cache", "cached_key"), self.get_variable("cache", "cached_value")

    def _position_bias(self, q_positions: Array, kv_positions: Array) -> Array | None:
        if self.position == "alibi":
            return ALiBiBias(self.num_heads, name="alibi")(q_positions, kv_positions)
        if self.position == "relative":
            return RelativePositionBias(
                self.num_heads,
                num_buckets=self.relative_buckets,
                max_distance=self.relative_max_distance,
                bidirectional=not self.causal,
                param_dtype=self.param_dtype,
                name="relative_bias",
            )(q_positions, kv_positions)
        if self.position not in ("none", "rotary"):
            raise ValueError(
                f"Unknown position scheme {self.position!r}; valid: none, rotary, alibi, relative."
            )
        return None

    def _cache_index(self) -> Array | int:
        if not self.has_variable("cache", "cache_index"):
            return 0
        return self.get_variable("cache", "cache_index")

    def _append_to_cache(
        self, key: Array, value: Array, offset: Array | int, mask: Array | None
    ) -> tuple[Array, Array, Array, Array | None]:
        """Write ``key``/``value`` at the cache index; return the whole cache and its mask.

        The first call (at ``init``) creates a cache shaped like its inputs, whose length is the
        maximum decoding length, and attends normally.
        """
        initialized = self.has_variable("cache", "cached_key")
        cached_key = self.variable("cache", "cached_key", jnp.zeros, key.shape, key.dtype)
        cached_value = self.variable("cache", "cached_value", jnp.zeros, value.shape, value.dtype)
        cache_index = self.variable("cache", "cache_index", lambda: jnp.array(0, jnp.int32))
        q_len = key.shape[-3]
        max_len = cached_key.value.shape[-3]
        if not initialized:
            attend = masks_lib.combine_masks(
                mask,
                masks_lib.causal_mask(q_len, q_len) if self.causal else None,
                masks_lib.window_mask(q_len, q_len, self.window) if self.window is not None else None,
            )
            return key, value, jnp.arange(q_len), attend
        start = (0,) * (key.ndim - 3) + (offset, 0, 0)
        cached_key.value = lax.dynamic_update_slice(cached_key.value, key, start)
        cached_value.value = lax.dynamic_update_slice(cached_value.value, value, start)
        cache_index.value = offset + q_len
        kv_positions = jnp.arange(max_len)
        # Query i of this chunk sits at position offset + i; keys beyond the written part are empty.
        written = masks_lib.causal_mask(q_len, max_len, offset=offset + q_len - 1)
        attend = masks_lib.combine_masks(
            mask,
            written,
            masks_lib.causal_mask(q_len, max_len, offset=offset) if self.causal else None,
            masks_lib.window_mask(q_len, max_len, self.window, offset=offset)
            if self.window is not None
            else None,
        )
        return cached_key.value, cached_value.value, kv_positions, attend
