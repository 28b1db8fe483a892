"""Attention heatmaps: where a model looked, drawn with matplotlib (Agg) for files and notebooks.

Every figure is a :class:`matplotlib.figure.Figure` with its own ``FigureCanvasAgg``: nothing here
touches pyplot's global state or the global backend, so the functions are safe in a training loop
(no figure piles up in pyplot's registry) and in a notebook (a returned figure displays inline).

Weights are attention distributions, so they must lie in ``[0, 1]``: values outside
``[-WEIGHT_TOLERANCE, 1 + WEIGHT_TOLERANCE]`` or non-finite values raise :class:`ValueError`, and the
small excursions within that tolerance (bfloat16 rounding) are clipped. The colour scale runs from 0
to the largest weight drawn (pass ``vmax=1.0`` for an absolute scale), so that a spread-out distribution
over 60 tokens is still visible; the colourbar gives the numbers.

Long tokens are shortened to :data:`MAX_LABEL_CHARS` characters with an ellipsis; tokens are drawn
as plain text (a ``$`` in a token does not start mathtext).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

WEIGHT_TOLERANCE = 1e-2
MAX_LABEL_CHARS = 16
CMAP = "viridis"


def _figure(width: float, height: float) -> Figure:
    """A figure bound to an Agg canvas, outside pyplot."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _check_weights(weights: Any, ndim: int, what: str) -> np.ndarray:
    """``weights`` as float32 numpy with ``ndim`` dims, checked to be in ``[0, 1]`` (see module doc)."""
    w = np.asarray(weights).astype(np.float32)  # also takes jax arrays and bfloat16
    if w.ndim != ndim:
        raise ValueError(f"{what} must have {ndim} dimensions, got shape {w.shape}.")
    if w.size == 0:
        raise ValueError(f"{what} is empty (shape {w.shape}).")
    if not np.all(np.isfinite(w)):
        raise ValueError(f"{what} contains NaN or inf.")
    lo, hi = float(w.min()), float(w.max())
    if lo < -WEIGHT_TOLERANCE or hi > 1.0 + WEIGHT_TOLERANCE:
        raise ValueError(
            f"{what} must be attention weights in [0, 1], got values in [{lo:.4g}, {hi:.4g}]; "
            "pass the normalised weights (e.g. a softmax output), not logits."
        )
    return np.clip(w, 0.0, 1.0)


def _labels(labels: Sequence[Any] | None, n: int, what: str) -> list[str]:
    """``n`` display strings: the given labels (shortened) or ``0 .. n-1``."""
    if labels is None:
        return [str(i) for i in range(n)]
    labels = [str(t) for t in labels]
    if len(labels) != n:
        raise ValueError(f"got {len(labels)} {what} for an axis of length {n}.")
    return [t if len(t) <= MAX_LABEL_CHARS else t[: MAX_LABEL_CHARS - 1] + "…" for t in labels]


def _font_size(n: int) -> float:
    """Tick label size for an axis of ``n`` labels: 10 pt for short sequences down to 6 pt."""
    return float(np.clip(10.0 - (n - 15) * 0.1, 6.0, 10.0))


def _cell_inches(n: int) -> float:
    """Side of one heatmap cell: roomy for a few tokens, just enough for a 6 pt label at 60."""
    return float(np.clip(0.45 - (n - 10) * 0.005, 0.2, 0.45))


def _vmax(w: np.ndarray, vmax: float | None) -> float:
    return float(vmax) if vmax is not None else max(float(w.max()), 1e-6)


def _label_axes(
    ax: Axes,
    x_labels: list[str] | None,
    y_labels: list[str] | None,
    *,
    x_style: tuple[int, int] | None = None,
) -> None:
    """Put every label on the axes as plain text; vertical x labels when they would collide.

    ``x_style``: ``(count, longest)`` that choose the x font size and rotation (default: those of
    ``x_labels``), so that the wrapped rows of one figure all look the same.
    """
    if x_labels is not None:
        count, longest = x_style if x_style is not None else (len(x_labels), max(map(len, x_labels)))
        rotation = 90 if count > 12 or longest > 6 else 45
        ax.set_xticks(range(len(x_labels)))
        ax.set_xticklabels(
            x_labels,
            rotation=rotation,
            ha="center" if rotation == 90 else "right",
            rotation_mode="anchor" if rotation != 90 else "default",
            fontsize=_font_size(count),
            parse_math=False,
        )
    else:
        ax.set_xticks([])
    if y_labels is not None:
        n = len(y_labels)
        ax.set_yticks(range(n))
        ax.set_yticklabels(y_labels, fontsize=_font_size(n), parse_math=False)
    else:
        ax.set_yticks([])
    ax.tick_params(length=2, pad=2)


def attention_heatmap(
    weights: Any,
    x_labels: Sequence[Any] | None,
    y_labels: Sequence[Any] | None,
    *,
    title: str | None = None,
    vmax: float | None = None,
) -> Figure:
    """A labelled heatmap of one attention matrix (the alignment plots of Bahdanau et al., 2015).

    Args:
      weights: ``[q_len, kv_len]`` attention weights in ``[0, 1]`` (rows: queries, e.g. output tokens;
        columns: keys, e.g. input tokens).
      x_labels: ``kv_len`` key tokens, drawn under the columns (``None``: positions).
      y_labels: ``q_len`` query tokens, drawn beside the rows (``None``: positions).
      title: figure title.
      vmax: top of the colour scale (``None``: the largest weight).

    Returns:
      The figure (Agg canvas, outside pyplot); write it with :func:`save_figure`.

    Raises:
      ValueError: wrong rank, label counts that do not match, or weights outside ``[0, 1]``.
    """
    w = _check_weights(weights, 2, "weights [q_len, kv_len]")
    q_len, kv_len = w.shape
    xl = _labels(x_labels, kv_len, "x_labels")
    yl = _labels(y_labels, q_len, "y_labels")
    cell = _cell_inches(max(q_len, kv_len))
    label_room = 0.08 * max(map(len, xl + yl)) + 0.6  # inches for the tick labels
    fig = _figure(
        min(max(kv_len * cell + label_room + 1.2, 4.0), 20.0),
        min(max(q_len * cell + label_room + (0.4 if title else 0.0), 3.0), 20.0),
    )
    ax = fig.add_subplot()
    image = ax.imshow(w, cmap=CMAP, vmin=0.0, vmax=_vmax(w, vmax), aspect="auto", interpolation="nearest")
    _label_axes(ax, xl, yl)
    fig.colorbar(image, ax=ax, fraction=0.05, pad=0.02, label="attention weight")
    if title:
        ax.set_title(title, fontsize=11)
    return fig


def token_weights_figure(
    tokens: Sequence[Any],
    weights: Any,
    *,
    title: str | None = None,
    label: str | None = None,
    max_per_row: int = 40,
    vmax: float | None = None,
) -> Figure:
    """How much a pooling attention looked at each token (Yang et al., 2016, Figure 5 style).

    One heatmap row per ``max_per_row`` tokens (a long review wraps onto several rows, like text),
    tokens under their cells, one colourbar. For a sentiment classifier pass the pooling weights of
    one example and, as ``label``, its gold or predicted class; the label is drawn to the left of
    the first row.

    Args:
      tokens: ``len`` tokens (strip the padding first, or pass the padded tokens and weights).
      weights: ``[len]`` weights in ``[0, 1]``, e.g. ``intermediates/pool/attention_weights[i]``.
      title: figure title.
      label: a short text for the row, e.g. ``"positive (p=0.93)"`` (``None``: ``"attention"``).
      max_per_row: tokens per row before wrapping.
      vmax: top of the colour scale (``None``: the largest weight).

    Returns:
      The figure (Agg canvas, outside pyplot).

    Raises:
      ValueError: ``weights`` not 1-D, ``len(tokens) != len(weights)``, or weights outside ``[0, 1]``.
    """
    w = _check_weights(weights, 1, "weights [len]")
    n = w.shape[0]
    labels = _labels(tokens, n, "tokens")
    if max_per_row < 1:
        raise ValueError(f"max_per_row must be positive, got {max_per_row}.")
    num_rows = math.ceil(n / max_per_row)
    per_row = min(n, max_per_row)
    cell = _cell_inches(per_row)
    label_room = 0.075 * max(map(len, labels)) + 0.35
    row_label = label if label is not None else "attention"
    fig = _figure(
        min(max(per_row * cell + 0.09 * len(row_label) + 1.6, 4.0), 20.0),
        num_rows * (cell + label_room) + (0.45 if title else 0.1),
    )
    axes = fig.subplots(num_rows, 1, squeeze=False)[:, 0]
    top = _vmax(w, vmax)
    image = None
    for r, ax in enumerate(axes):
        chunk = w[r * max_per_row : (r + 1) * max_per_row]
        # Pad the last row with NaN (drawn blank) so that every row has cells of the same width.
        row = np.full((1, per_row), np.nan, np.float32)
        row[0, : chunk.shape[0]] = chunk
        image = ax.imshow(row, cmap=CMAP, vmin=0.0, vmax=top, aspect="auto", interpolation="nearest")
        _label_axes(
            ax,
            labels[r * max_per_row : (r + 1) * max_per_row],
            [row_label] if r == 0 else None,
            x_style=(per_row, max(map(len, labels))),
        )
        ax.set_xlim(-0.5, per_row - 0.5)
    fig.colorbar(image, ax=list(axes), fraction=0.05, pad=0.02, label="weight")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def multi_head_grid(
    weights: Any,
    tokens: Sequence[Any] | None,
    *,
    title: str | None = None,
    query_tokens: Sequence[Any] | None = None,
    vmax: float | None = None,
) -> Figure:
    """One heatmap per head of a multi-head attention (Vaswani et al., 2017), in a grid.

    All heads share one colour scale and one colourbar; key tokens label the bottom row of panels and
    query tokens the left column.

    Args:
      weights: ``[heads, q_len, kv_len]`` attention weights in ``[0, 1]`` (one example of the sown
        ``[batch, heads, q_len, kv_len]``).
      tokens: ``kv_len`` key tokens; for self-attention they label both axes.
      title: figure title.
      query_tokens: ``q_len`` query tokens (``None``: ``tokens`` when ``q_len == kv_len``, otherwise
        positions).
      vmax: top of the colour scale (``None``: the largest weight).

    Returns:
      The figure (Agg canvas, outside pyplot).

    Raises:
      ValueError: wrong rank, label counts that do not match, or weights outside ``[0, 1]``.
    """
    w = _check_weights(weights, 3, "weights [heads, q_len, kv_len]")
    heads, q_len, kv_len = w.shape
    xl = _labels(tokens, kv_len, "tokens")
    if query_tokens is None and tokens is not None and q_len == kv_len:
        query_tokens = tokens
    yl = _labels(query_tokens, q_len, "query_tokens")
    cols = min(heads, 4) if heads != 6 else 3
    rows = math.ceil(heads / cols)
    panel = float(np.clip(0.11 * max(q_len, kv_len) + 1.2, 2.4, 6.5))
    label_room = 0.075 * max(map(len, xl + yl)) + 0.4
    fig = _figure(cols * panel + label_room + 1.0, rows * panel + label_room + (0.5 if title else 0.1))
    axes = fig.subplots(rows, cols, squeeze=False)
    top = _vmax(w, vmax)
    image = None
    for h in range(rows * cols):
        ax = axes[h // cols, h % cols]
        if h >= heads:
            ax.set_axis_off()
            continue
        image = ax.imshow(w[h], cmap=CMAP, vmin=0.0, vmax=top, aspect="auto", interpolation="nearest")
        last_in_column = h + cols >= heads
        _label_axes(ax, xl if last_in_column else None, yl if h % cols == 0 else None)
        ax.set_title(f"head {h}", fontsize=9)
    fig.colorbar(image, ax=axes.ravel().tolist(), fraction=0.04, pad=0.02, label="attention weight")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def save_figure(fig: Figure, path: str | PathLike[str], *, dpi: int = 120) -> None:
    """Write ``fig`` as a PNG at ``path`` (parent directories created) and close it.

    Figures from this module live outside pyplot and are freed when dropped; a figure made with
    ``matplotlib.pyplot`` is also removed from pyplot's registry, so a loop that writes one picture
    per eval does not leak figures.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.canvas is None or not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    try:
        fig.savefig(path, format="png", dpi=dpi)
    finally:
        pyplot = sys.modules.get("matplotlib.pyplot")
        if pyplot is not None:  # only if the caller uses pyplot; importing it would pick a backend
            pyplot.close(fig)


def collect_attention_weights(
    intermediates: Mapping[str, Any], *, name: str | None = "attention_weights"
) -> dict[str, np.ndarray]:
    """Flatten a Flax ``intermediates`` collection into ``{"path/to/module/name": array}``.

    ``model.apply(variables, x, mutable=["intermediates"])`` returns ``(out, {"intermediates": {...}})``;
    pass either that dict or its ``"intermediates"`` entry. Sown values are tuples (one entry per
    call of ``sow``): a single entry gives ``"layer_0/attention/attention_weights"``, several give
    ``".../attention_weights/0"``, ``".../attention_weights/1"``, ... in call order.

    Args:
      intermediates: nested mappings (dict or FrozenDict) whose leaves are tuples of arrays.
      name: keep only values sown under this name (``None``: keep everything).

    Returns:
      An insertion-ordered dict of numpy arrays (floating arrays as float32, so bfloat16 plots), in
      the order the modules were visited, e.g. for a two-layer
      :class:`~attn_jax.models.classifier.TransformerClassifier` with ``sow_weights=True``:
      ``layer_0/attention/attention_weights [batch, heads, len, len]``, ``layer_1/...``,
      ``pool/attention_weights [batch, len]``.
    """
    if set(intermediates.keys()) == {"intermediates"}:
        intermediates = intermediates["intermediates"]
    out: dict[str, np.ndarray] = {}

    def to_numpy(value: Any) -> np.ndarray:
        a = np.asarray(value)
        if a.dtype.kind in "fV":  # float16/32/64 and ml_dtypes (bfloat16) floats
            a = a.astype(np.float32)
        return a

    def visit(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, Mapping):
            for key, child in node.items():
                visit(child, (*path, str(key)))
            return
        if name is not None and (not path or path[-1] != name):
            return
        key = "/".join(path)
        if isinstance(node, (tuple, list)):
            if len(node) == 1:
                out[key] = to_numpy(node[0])
            else:
                for i, value in enumerate(node):
                    out[f"{key}/{i}"] = to_numpy(value)
        else:
            out[key] = to_numpy(node)

    visit(intermediates, ())
    return out
