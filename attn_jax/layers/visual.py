"""Visual attention over image regions: "Show, Attend and Tell" (Xu et al., 2015)."""

from __future__ import annotations

from typing import Any, Literal

import flax.linen as nn
import flax.struct
import jax.numpy as jnp
from jax import Array

from attn_jax.attention.dot_product import weighted_sum
from attn_jax.attention.hard import attention_entropy, attention_log_prob, sample_attention
from attn_jax.attention.normalizers import mask_logits, softmax
from attn_jax.attention.scores import additive_scores


@flax.struct.dataclass
class VisualAttentionOutput:
    """What :class:`VisualAttention` returns for one decoder step (a pytree, so it passes ``nn.scan``).

    Attributes:
      context: ``[batch, d]`` context vector ``z_t`` (already scaled by ``beta`` when gated), in the
        features' dtype; all zeros for a row whose regions are all masked.
      weights: ``[batch, regions]`` float32 attention distribution ``alpha_t``.
      index: ``[batch]`` int32 region read by hard attention; ``None`` for soft attention.
      log_prob: ``[batch]`` float32 ``log alpha_t[index]`` for REINFORCE (0 for an all-masked row);
        ``None`` for soft attention.
      entropy: ``[batch]`` float32 entropy of ``alpha_t``.
      beta: ``[batch, 1]`` gating scalar ``sigmoid(f_beta(h))``; ``None`` when the gate is off.
    """

    context: Array
    weights: Array
    index: Array | None
    log_prob: Array | None
    entropy: Array
    beta: Array | None


class VisualAttention(nn.Module):
    """Soft or hard attention over image regions (Xu et al., 2015, "Show, Attend and Tell").

    The scores are additive, ``e_ti = v^T tanh(W a_i + b + U h_{t-1})`` (Bahdanau et al., 2015), and
    ``alpha_t = softmax(e_t)`` over the ``regions = h * w`` annotation vectors ``a_i``:

    - ``mode='soft'`` (section 4.2): ``z_t = sum_i alpha_ti a_i``, trained by backpropagation;
    - ``mode='hard'`` (section 4.1): ``z_t = a_s`` for one region ``s ~ Categorical(alpha_t)`` drawn with
      the ``'sample'`` RNG stream (the argmax when ``deterministic``), trained with REINFORCE from the
      returned ``log_prob`` and ``entropy`` (see :func:`attn_jax.attention.reinforce_loss`).

    With ``gate`` (section 4.2.1) the context is scaled by ``beta_t = sigmoid(f_beta(h_{t-1}))``, which
    lets the decoder put less weight on the image, e.g. for function words.

    A captioning decoder should call :meth:`project_features` once per image, outside its ``nn.scan``
    over time steps, and pass the result as ``projected_features`` at every step (like caching the
    projected keys of multi-head attention).

    When ``sow_weights`` is set, the ``[batch, regions]`` float32 weights are sown as
    ``('intermediates', 'attention_weights')``; reshape them to ``[batch, h, w]`` to draw them.

    Attributes:
      units: width of the additive-attention hidden layer.
      mode: ``'soft'`` (deterministic) or ``'hard'`` (stochastic) attention.
      gate: scale the context by the gating scalar ``beta``.
      dtype: computation dtype of the projections (``None``: inferred from inputs and params).
      param_dtype: parameter dtype.
      sow_weights: sow the attention weights into ``'intermediates'``.
    """

    units: int
    mode: Literal["soft", "hard"] = "soft"
    gate: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32
    sow_weights: bool = False

    def setup(self) -> None:
        if self.mode not in ("soft", "hard"):
            raise ValueError(f"VisualAttention mode must be 'soft' or 'hard'; got {self.mode!r}.")
        dense = dict(dtype=self.dtype, param_dtype=self.param_dtype)
        self.feature_proj = nn.Dense(self.units, use_bias=True, name="feature_proj", **dense)  # W, b
        self.hidden_proj = nn.Dense(self.units, use_bias=False, name="hidden_proj", **dense)  # U
        self.v = self.param(
            "v", nn.initializers.normal(stddev=self.units**-0.5), (self.units,), self.param_dtype
        )
        if self.gate:
            self.gate_proj = nn.Dense(1, name="gate_proj", **dense)  # f_beta

    def project_features(self, features: Array) -> Array:
        """Project the annotation vectors once, ``W a_i + b`` (Xu et al., 2015).

        Args:
          features: ``[batch, h, w, d]`` or ``[batch, regions, d]``.

        Returns:
          ``[batch, regions, units]``, to pass as ``projected_features`` at every decoder step.
        """
        return self.feature_proj(_flatten_regions(features))

    def __call__(
        self,
        features: Array,
        hidden: Array,
        mask: Array | None = None,
        *,
        deterministic: bool = True,
        projected_features: Array | None = None,
    ) -> VisualAttentionOutput:
        """Attend over the image regions for one decoder step.

        Args:
          features: ``[batch, h, w, d]`` feature map or ``[batch, regions, d]`` annotation vectors.
          hidden: ``[batch, n]`` previous decoder state ``h_{t-1}``.
          mask: ``[batch, regions]`` (or ``[batch, h, w]``) boolean, ``True`` = may attend.
          deterministic: hard attention takes the argmax instead of sampling (no RNG needed).
          projected_features: ``[batch, regions, units]`` from :meth:`project_features`, to skip
            re-projecting the features at every step.

        Returns:
          a :class:`VisualAttentionOutput`.
        """
        feats = _flatten_regions(features)  # [batch, regions, d]
        batch, regions, _ = feats.shape
        if projected_features is None or self.is_initializing():
            projected = self.project_features(feats)
            projected_features = projected if projected_features is None else projected_features
        if mask is not None:
            mask = jnp.asarray(mask, bool).reshape(batch, regions)
        query = self.hidden_proj(hidden)[:, None, None, :]  # [batch, 1, 1, units]
        key = projected_features[:, :, None, :]  # [batch, regions, 1, units]
        logits = additive_scores(query, key, self.v)[:, 0, 0, :]  # [batch, regions] float32
        weights = softmax(logits, mask)  # [batch, regions] float32
        if self.sow_weights:
            self.sow("intermediates", "attention_weights", weights)
        entropy = attention_entropy(logits, mask)  # [batch]
        index = log_prob = None
        if self.mode == "soft":
            # [batch, 1, 1, regions] x [batch, regions, 1, d] -> [batch, 1, 1, d]
            context = weighted_sum(weights[:, None, None, :], feats[:, :, None, :])[:, 0, 0, :]
        else:
            if deterministic:
                index = jnp.argmax(mask_logits(logits, mask), axis=-1).astype(jnp.int32)
            else:
                index = sample_attention(self.make_rng("sample"), logits, mask)  # [batch]
            context = jnp.take_along_axis(feats, index[:, None, None], axis=1)[:, 0, :]  # [batch, d]
            log_prob = attention_log_prob(logits, index, mask)
            if mask is not None:
                any_allowed = jnp.any(mask, axis=-1)  # [batch]
                context = jnp.where(any_allowed[:, None], context, jnp.zeros_like(context))
                log_prob = jnp.where(any_allowed, log_prob, 0.0)
        beta = None
        if self.gate:
            beta = nn.sigmoid(self.gate_proj(hidden).astype(jnp.float32))  # [batch, 1]
            context = (beta * context).astype(feats.dtype)
        return VisualAttentionOutput(
            context=context,
            weights=weights,
            index=index,
            log_prob=log_prob,
            entropy=entropy,
            beta=beta,
        )


def _flatten_regions(features: Array) -> Array:
    """``[batch, h, w, d]`` -> ``[batch, h * w, d]``; ``[batch, regions, d]`` is returned unchanged."""
    if features.ndim == 4:
        batch, h, w, d = features.shape
        return features.reshape(batch, h * w, d)
    if features.ndim != 3:
        raise ValueError(
            f"features must be [batch, h, w, d] or [batch, regions, d]; got shape {features.shape}."
        )
    return features
