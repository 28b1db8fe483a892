"""Pictures of where a model looked: attention heatmaps written as PNGs (reads outputs only).

``viz`` imports nothing above ``attn_jax.models``: it takes plain arrays (or a Flax ``intermediates``
collection) and token strings, and returns matplotlib figures drawn on an Agg canvas, without pyplot's
global state. A trainer writes them into ``WORKDIR/attention/`` at each eval::

    _, state = model.apply(variables, tokens, mutable=["intermediates"])
    weights = collect_attention_weights(state)            # {"pool/attention_weights": [batch, len], ...}
    fig = token_weights_figure(words, weights["pool/attention_weights"][0], label="positive")
    save_figure(fig, workdir / "attention" / f"step_{step}_example_0.png")

- :func:`attention_heatmap` — one ``[q_len, kv_len]`` matrix with tokens on both axes (alignment plot).
- :func:`token_weights_figure` — ``[len]`` pooling weights over the tokens of one example.
- :func:`multi_head_grid` — ``[heads, q_len, kv_len]``, one panel per head.
- :func:`save_figure` — PNG, parent directories created, figure closed.
- :func:`collect_attention_weights` — flatten sown ``attention_weights`` into ``{"path": array}``.
"""

from attn_jax.viz.heatmaps import (
    attention_heatmap,
    collect_attention_weights,
    multi_head_grid,
    save_figure,
    token_weights_figure,
)

__all__ = [
    "attention_heatmap",
    "collect_attention_weights",
    "multi_head_grid",
    "save_figure",
    "token_weights_figure",
]
