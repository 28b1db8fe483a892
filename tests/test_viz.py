"""attn_jax.viz heatmaps: PNGs are written, labels drawn, weights checked, intermediates flattened."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

from attn_jax.models.classifier import TransformerClassifier
from attn_jax.viz import (
    attention_heatmap,
    collect_attention_weights,
    multi_head_grid,
    save_figure,
    token_weights_figure,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TOKENS = ["the", "film", "was", "not", "$5", "good"]


def _distribution(rng: np.random.Generator, *shape: int) -> np.ndarray:
    w = rng.random(shape).astype(np.float32)
    return w / w.sum(-1, keepdims=True)


def _assert_png(path) -> np.ndarray:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC)
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0.01  # not a blank canvas
    return image


def _tick_texts(fig: Figure, axis: str) -> list[str]:
    texts = []
    for ax in fig.axes:
        labels = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
        texts += [t.get_text() for t in labels]
    return texts


def test_attention_heatmap_writes_png_with_labels(tmp_path):
    rng = np.random.default_rng(0)
    fig = attention_heatmap(_distribution(rng, 4, 6), TOKENS, ["a", "b", "c", "d"], title="alignment")
    assert isinstance(fig, Figure)
    assert _tick_texts(fig, "x")[:6] == TOKENS  # "$5" stays literal (no mathtext)
    assert _tick_texts(fig, "y")[:4] == ["a", "b", "c", "d"]
    assert fig.axes[0].get_title() == "alignment"
    path = tmp_path / "deep" / "dir" / "heatmap.png"
    save_figure(fig, path)  # parent directories are created
    _assert_png(path)


def test_attention_heatmap_60_tokens_stays_readable(tmp_path):
    rng = np.random.default_rng(1)
    tokens = [f"token{i}" for i in range(60)]
    fig = attention_heatmap(_distribution(rng, 60, 60), tokens, tokens)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == tokens  # every token labelled
    assert all(t.get_rotation() == 90 for t in ax.get_xticklabels())
    assert 5.5 <= ax.get_xticklabels()[0].get_fontsize() < 10
    path = tmp_path / "h60.png"
    save_figure(fig, path)
    image = _assert_png(path)
    assert image.shape[1] >= 60 * 12  # at least ~12 pixels per token column


def test_long_labels_are_shortened_and_default_labels_are_positions():
    fig = attention_heatmap(np.eye(3, dtype=np.float32), ["a" * 40, "b", "c"], None)
    assert _tick_texts(fig, "x")[0].endswith("…") and len(_tick_texts(fig, "x")[0]) <= 16
    assert _tick_texts(fig, "y")[:3] == ["0", "1", "2"]


def test_token_weights_figure(tmp_path):
    rng = np.random.default_rng(2)
    fig = token_weights_figure(TOKENS, _distribution(rng, 6), title="pooling", label="positive")
    assert _tick_texts(fig, "x")[:6] == TOKENS
    assert "positive" in _tick_texts(fig, "y")
    assert fig.get_suptitle() == "pooling"
    path = tmp_path / "tokens.png"
    save_figure(fig, path)
    _assert_png(path)


def test_token_weights_figure_wraps_long_sequences(tmp_path):
    rng = np.random.default_rng(3)
    tokens = [f"w{i}" for i in range(95)]
    fig = token_weights_figure(tokens, _distribution(rng, 95), max_per_row=40)
    heatmap_axes = [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]
    assert len(heatmap_axes) == 3
    drawn = [t.get_text() for ax in heatmap_axes for t in ax.get_xticklabels()]
    assert drawn == tokens
    save_figure(fig, tmp_path / "long.png")
    _assert_png(tmp_path / "long.png")


def test_multi_head_grid(tmp_path):
    rng = np.random.default_rng(4)
    fig = multi_head_grid(_distribution(rng, 6, 6, 6), TOKENS, title="layer 0")
    panels = [ax for ax in fig.axes if ax.get_title().startswith("head")]
    assert [ax.get_title() for ax in panels] == [f"head {h}" for h in range(6)]
    bottom = [t.get_text() for t in panels[-1].get_xticklabels()]
    left = [t.get_text() for t in panels[0].get_yticklabels()]
    assert bottom == TOKENS and left == TOKENS
    path = tmp_path / "heads.png"
    save_figure(fig, path)
    _assert_png(path)


def test_multi_head_grid_cross_attention_shapes():
    w = np.full((2, 3, 6), 1 / 6, np.float32)
    fig = multi_head_grid(w, TOKENS, query_tokens=["x", "y", "z"])
    assert "z" in _tick_texts(fig, "y")
    with pytest.raises(ValueError, match="query_tokens"):
        multi_head_grid(w, TOKENS, query_tokens=["x"])


@pytest.mark.parametrize(
    "bad",
    [np.array([[0.5, 1.5]]), np.array([[-0.2, 0.7]]), np.array([[np.nan, 1.0]])],
    ids=["above-one", "negative", "nan"],
)
def test_weights_outside_unit_interval_raise(bad):
    with pytest.raises(ValueError):
        attention_heatmap(bad, ["a", "b"], ["q"])
    with pytest.raises(ValueError):
        token_weights_figure(["a", "b"], bad[0])
    with pytest.raises(ValueError):
        multi_head_grid(bad[None], ["a", "b"])


def test_rounding_excursions_are_clipped_not_raised():
    w = jnp.array([[1.004, -0.001]], jnp.bfloat16)  # bfloat16 rounding of a softmax row
    image = attention_heatmap(w, ["a", "b"], ["q"]).axes[0].images[0]
    data = np.asarray(image.get_array())
    assert data.max() <= 1.0 and data.min() >= 0.0


def test_shape_and_label_errors():
    with pytest.raises(ValueError, match="2 dimensions"):
        attention_heatmap(np.ones(3) / 3, ["a", "b", "c"], None)
    with pytest.raises(ValueError, match="x_labels"):
        attention_heatmap(np.ones((1, 3)) / 3, ["a", "b"], None)
    with pytest.raises(ValueError, match="tokens"):
        token_weights_figure(["a"], np.ones(3) / 3)


def test_no_pyplot_state(tmp_path):
    """Figures are made without pyplot; a pyplot figure passed to save_figure is closed."""
    attention_heatmap(np.eye(2, dtype=np.float32), ["a", "b"], ["a", "b"])
    if "matplotlib.pyplot" in sys.modules:  # another test imported it: nothing may be registered
        import matplotlib.pyplot as plt

        before = plt.get_fignums()
        fig = plt.figure()
        save_figure(fig, tmp_path / "pyplot.png")
        assert plt.get_fignums() == before


def test_collect_attention_weights_from_transformer_classifier():
    model = TransformerClassifier(
        vocab_size=20, num_classes=2, embed_dim=16, num_layers=2, num_heads=4, mlp_dim=32, sow_weights=True
    )
    tokens = jnp.array([[3, 4, 5, 6, 0, 0, 0], [7, 8, 9, 1, 2, 3, 4]])
    variables = jax.jit(model.init)(jax.random.key(0), tokens)
    _, state = jax.jit(lambda v, t: model.apply(v, t, mutable=["intermediates"]))(variables, tokens)
    weights = collect_attention_weights(state)
    assert list(weights) == [
        "layer_0/attention/attention_weights",
        "layer_1/attention/attention_weights",
        "pool/attention_weights",
    ]
    assert weights["layer_0/attention/attention_weights"].shape == (2, 4, 7, 7)
    assert weights["layer_1/attention/attention_weights"].shape == (2, 4, 7, 7)
    assert weights["pool/attention_weights"].shape == (2, 7)
    assert all(isinstance(a, np.ndarray) and a.dtype == np.float32 for a in weights.values())
    np.testing.assert_allclose(weights["pool/attention_weights"].sum(-1), 1.0, rtol=1e-5)
    assert collect_attention_weights(state["intermediates"]).keys() == weights.keys()  # either form
    # The collected arrays plot directly.
    multi_head_grid(weights["layer_0/attention/attention_weights"][0], [str(t) for t in tokens[0]])
    token_weights_figure([str(t) for t in tokens[0]], weights["pool/attention_weights"][0])


def test_collect_attention_weights_repeated_sows_and_filter():
    intermediates = {
        "decoder": {"attention": {"attention_weights": (np.zeros(3), np.ones(3))}},
        "encoder": {"hidden": (np.ones(2),)},
    }
    got = collect_attention_weights(intermediates)
    assert list(got) == ["decoder/attention/attention_weights/0", "decoder/attention/attention_weights/1"]
    everything = collect_attention_weights(intermediates, name=None)
    assert "encoder/hidden" in everything
