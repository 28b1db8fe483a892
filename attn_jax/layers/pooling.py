"""Attention pooling: a learned query summarises a sequence into one vector.

Yang et al., 2016, "Hierarchical Attention Networks for Document Classification": each position is
scored against a learned context vector ``u_w`` and the sequence is replaced by the weighted average of
its elements.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from attn_jax.attention.normalizers import softmax

Initializer = Any

# A vector whose dot product with a unit-variance [units] input has unit variance: std = units**-0.5.
_vector_init = nn.initializers.variance_scaling(
    1.0, "fan_in", "truncated_normal", in_axis=-1, out_axis=()
)


class AttentionPooling(nn.Module):
    """Attention pooling with one learned query (Yang et al., 2016, Hierarchical Attention Networks).

    ``u_i = tanh(W h_i + b)``, ``alpha = softmax_i(u_i . u_w)``, ``s = sum_i alpha_i h_i``, where
    ``u_w`` is a learned context vector (the "query": which positions matter for the task).

    Attributes:
      units: size of the hidden projection ``W h_i + b`` and of the context vector ``u_w``.
      dtype: computation dtype (inferred from inputs and parameters when ``None``).
      param_dtype: dtype of the parameters.
      kernel_init: initialiser of ``W`` (``[features, units]``).
      bias_init: initialiser of ``b`` (``[units]``).
      context_init: initialiser of ``u_w`` (``[units]``).
      sow_weights: sow the float32 weights ``[batch..., len]`` as ``intermediates/attention_weights``.

    Params: ``proj/kernel [features, units]``, ``proj/bias [units]``, ``context [units]``.
    """

    units: int
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Initializer = nn.initializers.lecun_normal()
    bias_init: Initializer = nn.initializers.zeros_init()
    context_init: Initializer = _vector_init
    sow_weights: bool = False

    @nn.compact
    def __call__(self, inputs: ArrayLike, mask: ArrayLike | None = None) -> Array:
        """Pool a sequence.

        Args:
          inputs: ``[batch..., len, features]``.
          mask: boolean ``[batch..., len]``, ``True`` = a real (non-pad) position; pads get zero weight,
            and a fully masked sequence pools to zeros.

        Returns:
          ``[batch..., features]``, the attention-weighted average of ``inputs``.
        """
        inputs = jnp.asarray(inputs)
        hidden = nn.Dense(
            self.units,
            dtype=self.dtype,
            param_dtype=self.param_dtype,
            kernel_init=self.kernel_init,
            bias_init=self.bias_init,
            name="proj",
        )(inputs)
        hidden = jnp.tanh(hidden)  # [batch..., len, units]
        context = self.param("context", self.context_init, (self.units,), self.param_dtype)
        hidden, context = nn.dtypes.promote_dtype(hidden, context, dtype=self.dtype)
        logits = jnp.einsum(
            "...lu,u->...l", hidden, context, preferred_element_type=jnp.float32
        )  # [batch..., len]
        weights = softmax(logits, mask)  # float32 [batch..., len]
        if self.sow_weights:
            self.sow("intermediates", "attention_weights", weights)
        (values,) = nn.dtypes.promote_dtype(inputs, dtype=self.dtype)
        return jnp.einsum("...l,...lf->...f", weights.astype(values.dtype), values)
