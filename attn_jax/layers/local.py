"""Local attention of Luong et al. (2015), local-m and local-p, for one decoder step."""

from __future__ import annotations

from typing import Literal

import flax.linen as nn
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from attn_jax.attention.local import (
    local_attention_weights,
    monotonic_position,
    predictive_position,
)
from attn_jax.layers.additive import read_out
from attn_jax.layers.luong import LuongAttention

LocalMode = Literal["monotonic", "predictive"]
_MODES = ("monotonic", "predictive")


class LocalAttention(LuongAttention):
    """Luong local attention (Luong et al., 2015): attend to a window ``[p_t - D, p_t + D]``.

    - ``mode='monotonic'`` (local-m): ``p_t = t`` (the decoder step, clipped to the source), and the
      weights are the Luong ``score`` softmaxed over the window;
    - ``mode='predictive'`` (local-p): ``p_t = S * sigmoid(v_p^T tanh(W_p h_t))`` and the in-window
      softmax is multiplied by ``exp(-(s - p_t)^2 / (2 sigma^2))``, ``sigma = D / 2``. As in the paper
      the product is not renormalised (rows sum to less than 1); ``p_t`` learns through the Gaussian.

    ``S`` is the number of True positions of ``mask`` (right-padded sources), or ``kv_len`` without a
    mask. Scores, ``units`` and ``projected_memory`` work as in :class:`LuongAttention`.

    Attributes (besides those of :class:`LuongAttention`):
      mode: ``'monotonic'`` or ``'predictive'``.
      half_width: the window half-width ``D`` (10 in the paper).
      position_units: hidden size of ``W_p`` (local-p); defaults to ``units``.

    Params: those of :class:`LuongAttention`, plus for local-p ``position_proj/kernel
    [q_features, position_units]`` (``W_p``) and ``position_v [position_units]`` (``v_p``).
    """

    mode: LocalMode = "predictive"
    half_width: int = 10
    position_units: int | None = None

    def setup(self) -> None:
        super().setup()
        if self.mode not in _MODES:
            raise ValueError(f"Unknown local attention mode {self.mode!r}; valid: {', '.join(_MODES)}.")
        if self.half_width < 0 or (self.mode == "predictive" and self.half_width == 0):
            raise ValueError(
                f"LocalAttention needs half_width >= 0 (> 0 for local-p), got {self.half_width}."
            )
        if self.mode == "predictive":
            units = self.position_units or self.units
            if units is None:
                raise ValueError("LocalAttention(mode='predictive') needs position_units or units.")
            self.position_proj = nn.Dense(
                units,
                use_bias=False,
                dtype=self.dtype,
                param_dtype=self.param_dtype,
                kernel_init=self.kernel_init,
            )  # W_p
            self.position_v = self.param("position_v", self.v_init, (units,), self.param_dtype)

    def aligned_position(
        self,
        query: ArrayLike,
        memory: ArrayLike,
        mask: ArrayLike | None = None,
        *,
        step: ArrayLike | None = None,
    ) -> Array:
        """The window centre ``p_t``: ``[batch...]`` float32 (see :class:`LocalAttention`).

        ``step`` (int ``[batch...]``) is required for local-m and ignored by local-p.
        """
        kv_len = jnp.shape(memory)[-2]
        source_length = kv_len if mask is None else jnp.sum(jnp.asarray(mask), axis=-1)
        if self.mode == "monotonic":
            if step is None:
                raise ValueError("LocalAttention(mode='monotonic') needs step=<int [batch...]>.")
            return monotonic_position(step, source_length)
        hidden = jnp.tanh(self.position_proj(jnp.asarray(query)))  # [batch..., position_units]
        logit = jnp.einsum(
            "...u,u->...", hidden, self.position_v, preferred_element_type=jnp.float32
        )  # [batch...]
        return predictive_position(logit, source_length)

    def __call__(
        self,
        query: ArrayLike,
        memory: ArrayLike,
        mask: ArrayLike | None = None,
        *,
        step: ArrayLike | None = None,
        projected_memory: ArrayLike | None = None,
    ) -> tuple[Array, Array]:
        """Attend from one decoder state to a window of the memory.

        Args:
          query: ``[batch..., q_features]`` decoder state ``h_t``.
          memory: ``[batch..., kv_len, features]`` encoder outputs ``h_s``.
          mask: optional boolean ``[batch..., kv_len]``, True = may attend (real source positions).
          step: int ``[batch...]`` decoder step ``t``, required for local-m.
          projected_memory: ``project_memory(memory)``, if already computed.

        Returns:
          ``(context [batch..., features], weights [batch..., kv_len] float32)``; weights are zero
          outside the window.
        """
        keys = self.project_memory(memory) if projected_memory is None else projected_memory
        center = self.aligned_position(query, memory, mask, step=step)  # [batch...]
        logits = self.alignment_logits(query, keys)  # [batch..., kv_len]
        weights = local_attention_weights(
            logits, center, self.half_width, mask, gaussian=self.mode == "predictive"
        )
        return read_out(self, weights, memory)
