"""The attention flow layer of BiDAF (Seo et al., 2017), owning the similarity weight ``w``."""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from attn_jax.attention.bidaf import (
    bidaf_merge,
    context_to_query_attention,
    query_to_context_attention,
    trilinear_similarity,
)

Initializer = Any

# std = (3 d)**-0.5: the similarity of unit-variance inputs starts with unit variance.
_vector_init = nn.initializers.variance_scaling(
    1.0, "fan_in", "truncated_normal", in_axis=-1, out_axis=()
)


class BiDAFAttention(nn.Module):
    """Bidirectional attention flow (Seo et al., 2017, "Bidirectional Attention Flow for Machine
    Comprehension", section 2.4).

    ``S_tj = w^T [h_t; u_j; h_t * u_j]``; context-to-query ``U~_t = sum_j softmax_j(S_t:) u_j``;
    query-to-context ``h~ = sum_t softmax_t(max_j S_tj) h_t``; output
    ``G_t = [h_t; U~_t; h_t * U~_t; h_t * h~]``. See :mod:`attn_jax.attention.bidaf` for the math.

    Attributes:
      dtype: computation dtype (inferred from inputs and parameters when ``None``).
      param_dtype: dtype of ``w``.
      kernel_init: initialiser of ``w`` (a vector ``[3 d]``).
      sow_weights: sow the float32 context-to-query weights ``[batch..., T, J]`` as
        ``intermediates/attention_weights`` and the query-to-context weights ``[batch..., T]`` as
        ``intermediates/q2c_weights``.

    Params: ``kernel [3 d]`` = ``[w_context; w_query; w_product]``.
    """

    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Initializer = _vector_init
    sow_weights: bool = False

    @nn.compact
    def __call__(
        self,
        context: ArrayLike,
        query: ArrayLike,
        context_mask: ArrayLike | None = None,
        query_mask: ArrayLike | None = None,
    ) -> Array:
        """Query-aware context vectors.

        Args:
          context: ``[batch..., T, d]`` context encodings ``H``.
          query: ``[batch..., J, d]`` query encodings ``U``.
          context_mask: boolean ``[batch..., T]``, ``True`` = real context position.
          query_mask: boolean ``[batch..., J]``, ``True`` = real query position.

        Returns:
          ``G``: ``[batch..., T, 4 d]``.
        """
        context, query = jnp.asarray(context), jnp.asarray(query)
        d = context.shape[-1]
        if query.shape[-1] != d:
            raise ValueError(
                f"BiDAFAttention needs context and query of the same width; got context "
                f"{context.shape} and query {query.shape}."
            )
        kernel = self.param("kernel", self.kernel_init, (3 * d,), self.param_dtype)
        context, query, kernel = nn.dtypes.promote_dtype(context, query, kernel, dtype=self.dtype)
        w_context, w_query, w_product = kernel[:d], kernel[d : 2 * d], kernel[2 * d :]
        similarity = trilinear_similarity(
            context, query, w_context, w_query, w_product
        )  # [batch..., T, J]
        u_tilde, c2q = context_to_query_attention(similarity, query, context_mask, query_mask)
        h_tilde, q2c = query_to_context_attention(similarity, context, context_mask, query_mask)
        if self.sow_weights:
            self.sow("intermediates", "attention_weights", c2q)
            self.sow("intermediates", "q2c_weights", q2c)
        return bidaf_merge(context, u_tilde, h_tilde)  # [batch..., T, 4 d]
