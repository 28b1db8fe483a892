"""Bidirectional attention flow (Seo et al., 2017, "Bidirectional Attention Flow for Machine Comprehension").

A context ``H = [h_1..h_T]`` and a query ``U = [u_1..u_J]`` (both ``[batch..., len, d]``) are compared by
a trilinear similarity ``S_tj``; each context position then reads the query (context-to-query attention)
and the whole context is summarised by the positions most relevant to some query word
(query-to-context attention). :func:`bidaf_merge` joins the three into ``G``, the query-aware context.
The weight vector ``w`` of the similarity is owned by :class:`attn_jax.layers.bidaf.BiDAFAttention`.
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from attn_jax.attention.masks import combine_masks
from attn_jax.attention.normalizers import mask_logits, softmax


def trilinear_similarity(
    context: ArrayLike,
    query: ArrayLike,
    w_context: ArrayLike,
    w_query: ArrayLike,
    w_product: ArrayLike,
) -> Array:
    """Trilinear similarity ``S_tj = w^T [h_t; u_j; h_t * u_j]`` (Seo et al., 2017, eq. 1).

    With ``w = [w_context; w_query; w_product]`` this is computed as
    ``w_context . h_t + w_query . u_j + (h_t * w_product) . u_j``, which never materialises the
    ``[batch..., T, J, 3d]`` concatenation. There is no bias: both attention directions are invariant to
    adding a constant to ``S``.

    Args:
      context: ``[batch..., T, d]`` context vectors ``h_t``.
      query: ``[batch..., J, d]`` query vectors ``u_j``.
      w_context: ``[d]``.
      w_query: ``[d]``.
      w_product: ``[d]``.

    Returns:
      ``[batch..., T, J]`` float32 similarity.
    """
    f32 = jnp.float32
    h, u = jnp.asarray(context), jnp.asarray(query)
    s_context = jnp.einsum("...td,d->...t", h, w_context, preferred_element_type=f32)  # [batch..., T]
    s_query = jnp.einsum("...jd,d->...j", u, w_query, preferred_element_type=f32)  # [batch..., J]
    s_product = jnp.einsum(
        "...td,...jd->...tj", h * jnp.asarray(w_product, h.dtype), u, preferred_element_type=f32
    )  # [batch..., T, J]
    return s_context[..., :, None] + s_query[..., None, :] + s_product


def context_to_query_attention(
    similarity: ArrayLike,
    query: ArrayLike,
    context_mask: ArrayLike | None = None,
    query_mask: ArrayLike | None = None,
) -> tuple[Array, Array]:
    """Context-to-query attention (Seo et al., 2017, section 2.4): ``U~_t = sum_j softmax_j(S_t:) u_j``.

    Args:
      similarity: ``[batch..., T, J]`` from :func:`trilinear_similarity`.
      query: ``[batch..., J, d]``.
      context_mask: boolean ``[batch..., T]``, ``True`` = real context position; padded rows get
        all-zero weights.
      query_mask: boolean ``[batch..., J]``, ``True`` = real query position; padded query words get zero
        weight.

    Returns:
      ``(attended_query, weights)``: ``[batch..., T, d]`` in the query dtype and
      ``[batch..., T, J]`` float32.
    """
    query = jnp.asarray(query)
    mask = combine_masks(
        None if context_mask is None else jnp.asarray(context_mask)[..., :, None],
        None if query_mask is None else jnp.asarray(query_mask)[..., None, :],
    )  # [batch..., T, J] or None
    weights = softmax(similarity, mask)  # float32 [batch..., T, J]
    attended = jnp.einsum("...tj,...jd->...td", weights.astype(query.dtype), query)
    return attended, weights


def query_to_context_attention(
    similarity: ArrayLike,
    context: ArrayLike,
    context_mask: ArrayLike | None = None,
    query_mask: ArrayLike | None = None,
) -> tuple[Array, Array]:
    """Query-to-context attention (Seo et al., 2017, section 2.4): ``h~ = sum_t b_t h_t``.

    ``b = softmax_t(max_j S_tj)``: context positions that match *some* query word well. The maximum is
    taken over real query positions only; a query with no real position gives all-zero weights. The
    paper tiles ``h~`` ``T`` times; it is returned once here and broadcast by :func:`bidaf_merge`.

    Args:
      similarity: ``[batch..., T, J]`` from :func:`trilinear_similarity`.
      context: ``[batch..., T, d]``.
      context_mask: boolean ``[batch..., T]``, ``True`` = real context position (gets weight).
      query_mask: boolean ``[batch..., J]``, ``True`` = real query position (enters the max).

    Returns:
      ``(attended_context, weights)``: ``[batch..., d]`` in the context dtype and ``[batch..., T]``
      float32.
    """
    context = jnp.asarray(context)
    row_mask = None if query_mask is None else jnp.asarray(query_mask)[..., None, :]
    row_max = jnp.max(mask_logits(similarity, row_mask), axis=-1)  # [batch..., T]
    any_query = None if query_mask is None else jnp.any(query_mask, axis=-1, keepdims=True)
    weights = softmax(row_max, combine_masks(context_mask, any_query))  # float32 [batch..., T]
    attended = jnp.einsum("...t,...td->...d", weights.astype(context.dtype), context)
    return attended, weights


def bidaf_merge(context: ArrayLike, attended_query: ArrayLike, attended_context: ArrayLike) -> Array:
    """Query-aware context ``G_t = [h_t; U~_t; h_t * U~_t; h_t * h~]`` (Seo et al., 2017, eq. 2).

    Args:
      context: ``[batch..., T, d]`` ``h_t``.
      attended_query: ``[batch..., T, d]`` ``U~_t`` from :func:`context_to_query_attention`.
      attended_context: ``[batch..., d]`` ``h~`` from :func:`query_to_context_attention` (broadcast over
        ``T``).

    Returns:
      ``[batch..., T, 4 d]``.
    """
    h, u_tilde = jnp.asarray(context), jnp.asarray(attended_query)
    h_tilde = jnp.asarray(attended_context)[..., None, :]  # [batch..., 1, d]
    return jnp.concatenate(jnp.broadcast_arrays(h, u_tilde, h * u_tilde, h * h_tilde), axis=-1)
