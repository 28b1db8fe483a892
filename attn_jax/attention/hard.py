"""Hard (stochastic) attention and its REINFORCE training signal.

Hard attention (Xu et al., 2015) reads one position sampled from the attention distribution instead of
a weighted average. The sample is not differentiable, so the attention parameters are trained with the
score-function estimator REINFORCE (Williams, 1992): minimise
``-(reward - baseline) * log p(index)``, with a moving-average baseline to reduce variance and an entropy
bonus to keep the distribution from collapsing early (both as in Xu et al., 2015, section 4.1).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from attn_jax.attention.normalizers import log_softmax, mask_logits, softmax


def sample_attention(rng: Array, logits: ArrayLike, mask: ArrayLike | None = None) -> Array:
    """Sample one key position per query from ``softmax(logits)``: hard attention (Xu et al., 2015).

    Args:
      rng: a ``jax.random`` key.
      logits: ``[..., kv_len]`` attention logits.
      mask: boolean, broadcastable to ``logits``; masked positions are never drawn.

    Returns:
      ``[...]`` int32 indices into ``kv_len``.
    """
    return jax.random.categorical(rng, mask_logits(logits, mask), axis=-1).astype(jnp.int32)


def attention_log_prob(logits: ArrayLike, index: ArrayLike, mask: ArrayLike | None = None) -> Array:
    """``log p(index)`` of a hard-attention sample (Xu et al., 2015) under the masked softmax.

    Args:
      logits: ``[..., kv_len]`` attention logits.
      index: ``[...]`` sampled positions.
      mask: boolean, broadcastable to ``logits``.

    Returns:
      ``[...]`` float32 log-probabilities, the input of :func:`reinforce_loss`.
    """
    log_p = log_softmax(logits, mask)
    return jnp.take_along_axis(log_p, jnp.asarray(index)[..., None], axis=-1)[..., 0]


def attention_entropy(logits: ArrayLike, mask: ArrayLike | None = None) -> Array:
    """Entropy ``-sum p log p`` of the attention distribution; ``[...]`` float32, 0 for empty rows."""
    p = softmax(logits, mask)
    log_p = log_softmax(logits, mask)
    return -jnp.sum(jnp.where(p > 0, p * log_p, 0.0), axis=-1)


def reinforce_loss(
    log_prob: ArrayLike,
    reward: ArrayLike,
    baseline: ArrayLike = 0.0,
    *,
    entropy: ArrayLike | None = None,
    entropy_weight: float = 0.0,
) -> Array:
    """REINFORCE surrogate loss (Williams, 1992) whose gradient is an unbiased policy-gradient estimate.

    ``loss = mean(-(reward - baseline) * log_prob) - entropy_weight * mean(entropy)``. The advantage is
    held constant (``stop_gradient``), so only ``log_prob`` (and ``entropy``) carry gradient; to maximise
    the expected reward, *minimise* this loss. Any ``baseline`` that does not depend on the sample keeps
    the estimate unbiased and lowers its variance.

    Args:
      log_prob: ``[batch...]`` log-probabilities of the sampled actions (sum over steps beforehand for a
        sequence of samples).
      reward: ``[batch...]`` rewards of those samples.
      baseline: scalar or ``[batch...]`` reward baseline, e.g. from :func:`update_baseline`.
      entropy: optional ``[batch...]`` entropy of the sampling distributions.
      entropy_weight: weight of the entropy bonus (Xu et al., 2015, ``lambda_e``).

    Returns:
      scalar float32 loss.
    """
    advantage = jax.lax.stop_gradient(jnp.asarray(reward, jnp.float32) - baseline)
    loss = -jnp.mean(advantage * jnp.asarray(log_prob, jnp.float32))
    if entropy is not None and entropy_weight:
        loss = loss - entropy_weight * jnp.mean(jnp.asarray(entropy, jnp.float32))
    return loss


def update_baseline(baseline: ArrayLike, reward: ArrayLike, decay: float = 0.9) -> Array:
    """Exponential moving average of the mean reward, the baseline of Xu et al. (2015), eq. 12.

    ``b <- decay * b + (1 - decay) * mean(reward)``; keep it in the training state between steps.

    Args:
      baseline: scalar (or ``[batch...]``-broadcastable) current baseline.
      reward: ``[batch...]`` rewards of this step's samples.
      decay: weight of the old baseline.

    Returns:
      the new baseline, float32, with the shape of ``baseline``.
    """
    mean_reward = jax.lax.stop_gradient(jnp.mean(jnp.asarray(reward, jnp.float32)))
    return decay * jnp.asarray(baseline, jnp.float32) + (1.0 - decay) * mean_reward
