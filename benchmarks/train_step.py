"""Training step of the Transformer encoder-decoder against a plain Flax reference of the same size.

Run from the repository root::

    python benchmarks/train_step.py                  # batch 16, lengths 64, width 256, 3+3 layers
    python benchmarks/train_step.py --batch 32 --steps 10 --models attn_jax   # bigger batch, one variant
    python benchmarks/train_step.py --quick --out /tmp/train_step.json   # smoke run

Both models are pre-LayerNorm encoder-decoders (Vaswani et al., 2017; Xiong et al., 2020) with sinusoidal
positions, one token table for source, target and the tied output projection, GELU MLPs and the same
dropout sites. The reference is built here from ``flax.linen.MultiHeadDotProductAttention`` (attention
dropout not broadcast, so both draw as many random bits); ours is ``TransformerEncoderDecoder`` with the
attention kernel chosen automatically, as ``attn_jax``, ``attn_jax+scan`` (``scan_layers``),
``attn_jax+remat_full`` and ``attn_jax+scan+remat_full``. Parameter counts are asserted equal. Each step
(forward, cross-entropy over target tokens, backward, ``optax.adamw``) is jitted with its state donated.

Measured, all in one run on the default backend:

- compile time: ``jit(step).lower(...).compile()``;
- step time: the median (and minimum) of ``--steps`` steps after ``--warmup``, each ended by
  ``jax.block_until_ready``; the models take turns step by step, so load changes hit them alike;
- ``x ref``: tokens/s over the reference's, as the ratio of the median step times and as ``paired``, the
  median over rounds of the reference's step time over the model's in the same round (each round's two
  steps run back to back, so a slow spell of a shared machine cancels out of that round's ratio);
- CPU time per step: process CPU seconds (all threads) during the step, the work it took whatever the
  wall clock lost to other tenants;
- tokens/s: target tokens (``batch * tgt_len``) per second; the source tokens are reported alongside;
- MFU: model FLOP/s over a float32 peak, the best of ``--peak-repeats`` jitted ``--matmul-size``
  square matmuls (``2 n^3`` FLOPs). Model FLOPs per step are 3x the forward's matrix products
  (forward + backward): ``6 x`` every weight-matrix parameter x the tokens it is applied to
  (encoder weights and the cross-attention key/value projections see source tokens; the other decoder
  weights and the tied ``vocab x width`` output projection see target tokens; embedding lookups are
  not matmuls and do not count), plus ``3 x 4 x batch x width x q_len x kv_len`` per attention
  (causal self-attention counts its useful half). Remat recomputation is not model FLOPs.
- ``XLA GF`` / ``XLA GB``: FLOPs and bytes accessed per step by XLA's cost analysis of the compiled
  step (recomputation included; a scanned loop body counts once, so ``+scan`` rows undercount). They do
  not depend on the machine's load: they show extra work (copies, transposes) when timings are noisy.

Output: a table on stdout and JSON in ``--out`` (default ``benchmarks/results/train_step-<backend>.json``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import jaxlib
import numpy as np
import optax
from jax import Array

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attn_jax.models.encoder_decoder import TransformerEncoderDecoder  # noqa: E402

REFERENCE = "flax_reference"
VARIANTS = {  # ours: name -> (scan_layers, remat)
    "attn_jax": (False, "none"), "attn_jax+scan": (True, "none"),
    "attn_jax+remat_full": (False, "full"), "attn_jax+scan+remat_full": (True, "full"),
}

# --------------------------------------------------------------------------------------------------
# The plain Flax reference


def sinusoids(length: int, dim: int) -> Array:
    """``[length, dim]`` sinusoidal positions (Vaswani et al., 2017): sines, then cosines."""
    inv_freq = jnp.exp(-jnp.log(10_000.0) * jnp.arange(dim // 2) / (dim // 2))
    angles = jnp.arange(length)[:, None] * inv_freq  # [length, dim / 2]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class RefLayer(nn.Module):
    """A pre-LN encoder layer, or with ``memory`` a decoder layer (causal self-, then cross-attention)."""

    num_heads: int
    mlp_dim: int
    dropout_rate: float

    @nn.compact
    def __call__(self, x, memory, self_mask, memory_mask, deterministic: bool):
        attention = lambda: nn.MultiHeadDotProductAttention(
            num_heads=self.num_heads, dropout_rate=self.dropout_rate, broadcast_dropout=False,
            deterministic=deterministic,
        )
        drop = lambda h: nn.Dropout(self.dropout_rate)(h, deterministic=deterministic)
        x = x + drop(attention()(nn.LayerNorm()(x), mask=self_mask))
        if memory is not None:
            x = x + drop(attention()(nn.LayerNorm()(x), memory, mask=memory_mask))
        h = nn.gelu(nn.Dense(self.mlp_dim)(nn.LayerNorm()(x)))  # [batch, len, mlp]
        return x + drop(nn.Dense(x.shape[-1])(drop(h)))


class ReferenceTransformer(nn.Module):
    """Pre-LN Transformer encoder-decoder from stock ``flax.linen`` modules, tied embeddings."""

    vocab_size: int
    embed_dim: int
    num_encoder_layers: int
    num_decoder_layers: int
    num_heads: int
    mlp_dim: int
    dropout_rate: float

    @nn.compact
    def __call__(self, src: Array, tgt_in: Array, *, deterministic: bool = True) -> Array:
        embed = nn.Embed(self.vocab_size, self.embed_dim,
                         embedding_init=nn.initializers.normal(self.embed_dim**-0.5))
        layer = lambda: RefLayer(self.num_heads, self.mlp_dim, self.dropout_rate)

        def embedded(tokens):  # [batch, len] -> [batch, len, width]
            x = embed(tokens) * self.embed_dim**0.5 + sinusoids(tokens.shape[-1], self.embed_dim)
            return nn.Dropout(self.dropout_rate)(x, deterministic=deterministic)

        src_mask = (src != 0)[:, None, None, :]  # [batch, 1, 1, src_len], True = may attend
        x = embedded(src)  # [batch, src_len, width]
        for _ in range(self.num_encoder_layers):
            x = layer()(x, None, src_mask, None, deterministic)
        memory = nn.LayerNorm()(x)
        causal = nn.make_causal_mask(tgt_in)  # [batch, 1, tgt_len, tgt_len]
        y = embedded(tgt_in)  # [batch, tgt_len, width]
        for _ in range(self.num_decoder_layers):
            y = layer()(y, memory, causal, src_mask, deterministic)
        return embed.attend(nn.LayerNorm()(y)).astype(jnp.float32)  # [batch, tgt_len, vocab]


# --------------------------------------------------------------------------------------------------
# Models, FLOPs and the training step


def build_models(args: argparse.Namespace) -> dict[str, nn.Module]:
    """The reference and the chosen variants of ours, all with the same widths, depths and dropout."""
    size = dict(vocab_size=args.vocab, embed_dim=args.width, num_encoder_layers=args.encoder_layers,
                num_decoder_layers=args.decoder_layers, num_heads=args.heads, mlp_dim=args.mlp_dim,
                dropout_rate=args.dropout)
    models: dict[str, nn.Module] = {REFERENCE: ReferenceTransformer(**size)}
    for name in args.models:
        scan, remat = VARIANTS[name]
        models[name] = TransformerEncoderDecoder(**size, scan_layers=scan, remat=remat)
    return models


def model_flops(args: argparse.Namespace) -> tuple[int, float]:
    """Weight-matrix parameters (embeddings excluded) and model FLOPs per training step (see docstring)."""
    d, m, vocab, batch = args.width, args.mlp_dim, args.vocab, args.batch
    on_src = args.encoder_layers * (4 * d * d + 2 * d * m) + args.decoder_layers * 2 * d * d  # + cross k, v
    on_tgt = args.decoder_layers * (6 * d * d + 2 * d * m)  # self q, k, v, out; cross q, out; MLP
    matmul = 6 * batch * (args.src_len * on_src + args.tgt_len * (on_tgt + vocab * d))
    pairs = args.encoder_layers * args.src_len**2 + args.decoder_layers * (
        args.tgt_len**2 / 2 + args.tgt_len * args.src_len)  # query-key pairs; causal counts half
    return on_src + on_tgt, matmul + 3 * 4 * batch * d * pairs


def make_batch(args: argparse.Namespace) -> dict[str, Array]:
    """Random ids in ``[3, vocab)``; every other source ends in a quarter of padding (id 0); BOS = 1."""
    rng = np.random.default_rng(args.seed)
    src = rng.integers(3, args.vocab, (args.batch, args.src_len)).astype(np.int32)
    src[::2, args.src_len - args.src_len // 4:] = 0
    tgt = rng.integers(3, args.vocab, (args.batch, args.tgt_len)).astype(np.int32)
    tgt_in = np.concatenate([np.ones((args.batch, 1), np.int32), tgt[:, :-1]], axis=1)
    return {"src": jnp.asarray(src), "tgt_in": jnp.asarray(tgt_in), "tgt_out": jnp.asarray(tgt)}


def make_train_step(model: nn.Module, tx: optax.GradientTransformation):
    """``(params, opt_state, step, key), batch -> (new state, loss)``: cross-entropy over target tokens."""

    def loss_fn(params: Any, batch: dict[str, Array], rng: Array) -> Array:
        logits = model.apply({"params": params}, batch["src"], batch["tgt_in"], deterministic=False,
                             rngs={"dropout": rng})  # [batch, tgt_len, vocab]
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["tgt_out"])
        weights = (batch["tgt_out"] != 0).astype(jnp.float32)
        return (losses * weights).sum() / weights.sum()

    def train_step(state, batch):
        params, opt_state, step, key = state
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, jax.random.fold_in(key, step))
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, step + 1, key), loss

    return train_step


def count(params: Any, name: str | None = None) -> int:
    """Number of parameters, or of those in leaves called ``name``."""
    leaves = jax.tree_util.tree_leaves_with_path(params)
    return sum(x.size for path, x in leaves if name is None or path[-1].key == name)


def xla_cost(compiled: Any) -> dict[str, float]:
    """XLA's cost analysis of a compiled function (``flops``, ``bytes accessed``; empty if unsupported)."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # not every backend implements it
        return {}
    cost = cost[0] if isinstance(cost, list | tuple) else cost
    return dict(cost or {})


def matmul_peak(size: int, repeats: int) -> float:
    """Best FLOP/s of a jitted float32 ``size x size`` matmul over ``repeats`` timed runs."""
    a, b = jax.random.normal(jax.random.key(1), (2, size, size), jnp.float32)
    matmul = jax.jit(jnp.matmul).lower(a, b).compile()
    jax.block_until_ready(matmul(a, b))
    times = [seconds(lambda: matmul(a, b)) for _ in range(repeats)]
    return 2.0 * size**3 / min(times)


def seconds(fn) -> float:
    """Wall time of ``fn()`` until its results are ready."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


# --------------------------------------------------------------------------------------------------
# Measuring


def prepare(model: nn.Module, batch: dict[str, Array], args: argparse.Namespace) -> dict[str, Any]:
    """Initialise, compile (timed) and return the compiled step with its state and static facts."""
    key = jax.random.key(args.seed)
    params = jax.jit(model.init)(key, batch["src"], batch["tgt_in"])["params"]
    params = nn.meta.unbox(params)
    tx = optax.adamw(1e-4, weight_decay=0.01)
    state = (params, tx.init(params), jnp.array(0, jnp.int32), jax.random.key(args.seed + 1))
    start = time.perf_counter()
    compiled = jax.jit(make_train_step(model, tx), donate_argnums=0).lower(state, batch).compile()
    compile_s = time.perf_counter() - start
    return {"step": compiled, "state": state, "compile_s": compile_s, "xla_cost": xla_cost(compiled),
            "params": count(params), "matmul_params": count(params, "kernel"), "times": [],
            "cpu_times": []}


def run_steps(runs: dict[str, dict[str, Any]], batch: dict[str, Array], steps: int, timed: bool) -> None:
    """Run every model ``steps`` times, taking turns, recording each step's wall time when ``timed``."""
    for _ in range(steps):
        for run in runs.values():
            start, cpu_start = time.perf_counter(), time.process_time()
            run["state"], loss = run["step"](run["state"], batch)
            jax.block_until_ready((run["state"], loss))
            if timed:
                run["times"].append(time.perf_counter() - start)
                run["cpu_times"].append(time.process_time() - cpu_start)
            run["loss"] = float(loss)


def summarise(runs: dict[str, dict[str, Any]], args: argparse.Namespace, flops: float, peak: float):
    """Per-model results: times, throughput, MFU and the ratio of tokens/s to the reference's."""
    results = {}
    for name, run in runs.items():
        step_s, xla = statistics.median(run["times"]), run["xla_cost"]
        results[name] = {
            "params": run["params"], "compile_s": run["compile_s"], "step_ms": 1e3 * step_s,
            "step_ms_min": 1e3 * min(run["times"]), "cpu_ms": 1e3 * statistics.median(run["cpu_times"]),
            "tgt_tokens_per_s": args.batch * args.tgt_len / step_s,
            "all_tokens_per_s": args.batch * (args.src_len + args.tgt_len) / step_s,
            "model_gflops_per_s": flops / step_s / 1e9, "mfu": flops / step_s / peak,
            "xla_gflop_per_step": xla["flops"] / 1e9 if "flops" in xla else None,
            "xla_gb_accessed_per_step": xla["bytes accessed"] / 1e9 if "bytes accessed" in xla else None,
            "final_loss": run["loss"],
        }
    reference = results[REFERENCE]["tgt_tokens_per_s"]
    for name, result in results.items():
        result["speed_vs_reference"] = result["tgt_tokens_per_s"] / reference
        rounds = zip(runs[REFERENCE]["times"], runs[name]["times"], strict=True)
        result["speed_vs_reference_paired"] = statistics.median(ref / ours for ref, ours in rounds)
    return results


def padded(row: tuple[str, ...], widths: list[int]) -> list[str]:
    """Cells padded to their column widths: the first left-aligned, the numbers right-aligned."""
    return [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]


def format_table(results: dict[str, dict[str, Any]]) -> str:
    header = ("model", "compile s", "step ms", "min ms", "CPU ms", "tgt tok/s", "src+tgt tok/s", "GFLOP/s",
              "MFU %", "XLA GF", "XLA GB", "x ref", "paired")
    rows = [header]
    maybe = lambda x: "-" if x is None else f"{x:.2f}"
    for name, r in results.items():
        rows.append((name, f"{r['compile_s']:.1f}", f"{r['step_ms']:.0f}", f"{r['step_ms_min']:.0f}",
                     f"{r['cpu_ms']:.0f}", f"{r['tgt_tokens_per_s']:.0f}", f"{r['all_tokens_per_s']:.0f}",
                     f"{r['model_gflops_per_s']:.1f}", f"{100 * r['mfu']:.1f}",
                     maybe(r["xla_gflop_per_step"]), maybe(r["xla_gb_accessed_per_step"]),
                     f"{r['speed_vs_reference']:.2f}", f"{r['speed_vs_reference_paired']:.2f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(padded(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Command line

QUICK = dict(batch=4, src_len=16, tgt_len=16, width=64, encoder_layers=1, decoder_layers=1, heads=4,
             mlp_dim=128, vocab=512, steps=3, warmup=1, matmul_size=256, peak_repeats=3)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Transformer enc-dec training step: attn_jax vs plain Flax.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sizes = dict(batch=16, src_len=64, tgt_len=64, width=256, encoder_layers=3, decoder_layers=3, heads=8,
                 mlp_dim=1024, vocab=8192)
    for name, default in sizes.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=int, default=default, help="model / batch size")
    p.add_argument("--dropout", type=float, default=0.1, help="every dropout site, in both models")
    p.add_argument("--steps", type=int, default=6, help="timed steps per model; the median is reported")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per model before timing")
    p.add_argument("--models", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                   help=f"variants of ours to run ({REFERENCE} always runs)")
    p.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n float32 peak matmul")
    p.add_argument("--peak-repeats", type=int, default=10, help="timed peak matmuls; the best counts")
    p.add_argument("--seed", type=int, default=0, help="data, parameters and dropout")
    p.add_argument("--quick", action="store_true", help="a tiny model and few steps: checks that it runs")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON output (default: benchmarks/results/train_step-<backend>.json)")
    args = p.parse_args(argv)
    if args.quick:
        p.set_defaults(**QUICK)
        args = p.parse_args(argv)  # explicit flags still win
    if args.width % args.heads or args.steps < 1 or args.warmup < 0:
        p.error("--width must be a multiple of --heads, --steps >= 1 and --warmup >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    backend = jax.default_backend()
    info = {"backend": backend, "device_kind": jax.devices()[0].device_kind, "cpu_count": os.cpu_count(),
            "jax_version": jax.__version__, "jaxlib_version": jaxlib.__version__,
            "flax_version": flax.__version__, "optax_version": optax.__version__}
    print("  ".join(f"{k} {v}" for k, v in info.items()))
    matmul_params, flops = model_flops(args)
    batch = make_batch(args)
    runs = {}
    for name, model in build_models(args).items():
        print(f"  compiling {name}", file=sys.stderr, flush=True)
        runs[name] = prepare(model, batch, args)
    counts = {name: (run["params"], run["matmul_params"]) for name, run in runs.items()}
    print(f"parameters (all, weight matrices): {counts[REFERENCE][0]:,}, {matmul_params:,}")
    assert all(c == (counts[REFERENCE][0], matmul_params) for c in counts.values()), counts

    peak = matmul_peak(args.matmul_size, args.peak_repeats)
    print(f"peak: {args.matmul_size}x{args.matmul_size} float32 matmul, best of {args.peak_repeats}: "
          f"{peak / 1e9:.1f} GFLOP/s; model FLOPs per step {flops / 1e9:.3g} G")
    run_steps(runs, batch, args.warmup, timed=False)
    run_steps(runs, batch, args.steps, timed=True)
    results = summarise(runs, args, flops, peak)
    print(f"\nbatch {args.batch}, src/tgt len {args.src_len}/{args.tgt_len}, width {args.width}, layers "
          f"{args.encoder_layers}+{args.decoder_layers}, heads {args.heads}, mlp {args.mlp_dim}, vocab "
          f"{args.vocab}, dropout {args.dropout}; median of {args.steps} steps (models take turns)\n")
    print(format_table(results))
    print("(tok/s counts target tokens unless marked src+tgt; x ref: target tok/s over the reference's;\n"
          " paired: median over rounds of the reference's step time over the model's; CPU ms: process CPU\n"
          " time per step, median)")

    out = args.out or ROOT / "benchmarks" / "results" / f"train_step-{backend}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    config = {k: v for k, v in vars(args).items() if k != "out"}
    out.write_text(json.dumps({
        "benchmark": "train_step",
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},  # others sharing the CPU
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        **info, "config": config, "parameters": counts[REFERENCE][0],
        "weight_matrix_parameters": matmul_params, "model_flops_per_step": flops,
        "matmul_peak_flops": peak, "results": results,
    }, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
