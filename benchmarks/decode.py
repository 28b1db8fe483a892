"""Greedy and beam decoding of the Transformer encoder-decoder: key/value cache against recomputation.

Run from the repository root::

    python benchmarks/decode.py              # batch 8, source 32 tokens, 64 new tokens, beam 4
    python benchmarks/decode.py --quick --out /tmp/decode.json   # smoke run

``attn_jax.models.encoder_decoder.decoding_state`` gives two step functions for the same randomly
initialised ``TransformerEncoderDecoder`` (default width 256, 3+3 layers, 8 heads, MLP 1024, vocabulary
8192, no dropout): ``cached`` appends each new token's keys and values to a cache and runs the decoder
on that token only; ``recompute`` re-runs the decoder over the whole prefix, padded to the maximum
length, at every step (the baseline). Each drives ``attn_jax.decoding.greedy_decode`` and
``attn_jax.decoding.beam_search``; the encoder runs once per call in all four.

Exactly ``--new-tokens`` tokens are decoded per row: EOS is set to ``vocab_size``, an id the model can
never produce, so no row stops early and beam search never finishes a hypothesis before the last step.

Measured, in one run on the default backend, for each (greedy, beam) x (cached, recompute):

- compile time: ``jax.jit(...).lower(params, src).compile()`` of the whole decode (encoder + loop);
- steady-state time: the median of ``--repeats`` calls after ``--warmup`` untimed ones, each ended by
  ``jax.block_until_ready``; the four take turns call by call, so load changes hit them alike;
- tokens/s: ``batch x new_tokens`` output tokens per second (beam search returns that many tokens per
  beam; the decoder runs ``beam`` rows per example);
- speedup: cached tokens/s over recompute tokens/s, for greedy and for beam search; and whether the
  cached and recomputed greedy outputs agree token for token;
- the forward matmul FLOPs of one greedy step by part (analytic; they match XLA's cost analysis of one
  jitted step): the recomputing step re-projects the whole source through every cross-attention's key
  and value weights and projects every position onto the vocabulary; the cached step does neither (its
  cross-attention keys and values are computed once per source, when the decoding state is built).

Output: a table on stdout and JSON in ``--out`` (default ``benchmarks/results/decode-<backend>.json``).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attn_jax import decoding  # noqa: E402
from attn_jax.models.encoder_decoder import TransformerEncoderDecoder, decoding_state  # noqa: E402

BOS = 1
MODES = ("greedy", "beam")
STEPS = ("cached", "recompute")


def build_model(args: argparse.Namespace) -> TransformerEncoderDecoder:
    return TransformerEncoderDecoder(
        vocab_size=args.vocab,
        embed_dim=args.width,
        num_encoder_layers=args.encoder_layers,
        num_decoder_layers=args.decoder_layers,
        num_heads=args.heads,
        mlp_dim=args.mlp_dim,
        dropout_rate=0.0,
    )


def make_decode(model: TransformerEncoderDecoder, args: argparse.Namespace, mode: str, cached: bool):
    """``(params, src [batch, src_len]) -> tokens``: ``[batch, new]`` greedy or ``[batch, beam, new]``."""
    common = dict(batch_size=args.batch, max_len=args.new_tokens, bos_id=BOS, eos_id=args.vocab)

    def decode(params: Any, src: jax.Array) -> jax.Array:
        step, state = decoding_state(model, params, src, args.new_tokens, cached=cached)
        if mode == "greedy":
            return decoding.greedy_decode(step, state, **common)
        return decoding.beam_search(step, state, beam_size=args.beam, alpha=args.alpha, **common)[0]

    return decode


def step_flops(args: argparse.Namespace, rows: int, positions: int, cached: bool) -> dict[str, float]:
    """Forward matmul FLOPs of one decoder step over ``positions`` target positions, by part.

    A ``cached`` step reads the source's cross-attention keys and values from its cache; a recomputing
    step projects the source again.
    """
    d, m, layers, src_len = args.width, args.mlp_dim, args.decoder_layers, args.src_len
    return {
        "decoder layers": 2 * rows * positions * layers * (6 * d * d + 2 * d * m),
        "cross-attention keys/values": 0 if cached else 2 * rows * src_len * layers * 2 * d * d,
        "output projection": 2 * rows * positions * args.vocab * d,
        "attention": 4 * rows * positions * layers * d * (args.new_tokens + src_len),
    }


def run_all(args: argparse.Namespace) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Compile the four decoders, then time them taking turns; returns results and greedy outputs."""
    model = build_model(args)
    rng = np.random.default_rng(args.seed)
    src = rng.integers(3, args.vocab, (args.batch, args.src_len)).astype(np.int32)
    src[::2, args.src_len - args.src_len // 4 :] = 0  # every other source ends in padding
    src = jnp.asarray(src)
    params = nn.meta.unbox(jax.jit(model.init)(jax.random.key(args.seed), src, src[:, :2])["params"])

    runs: dict[str, dict[str, Any]] = {}
    for mode in args.modes:
        for kind in STEPS:
            print(f"  compiling {mode} {kind}", file=sys.stderr, flush=True)
            start = time.perf_counter()
            fn = jax.jit(make_decode(model, args, mode, kind == "cached")).lower(params, src).compile()
            runs[f"{mode} {kind}"] = {"fn": fn, "compile_s": time.perf_counter() - start, "times": []}
    outputs = {}
    for i in range(args.warmup + args.repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            outputs[name] = jax.block_until_ready(run["fn"](params, src))
            if i >= args.warmup:
                run["times"].append(time.perf_counter() - start)
    tokens = args.batch * args.new_tokens
    results = {}
    for name, run in runs.items():
        seconds = statistics.median(run["times"])
        results[name] = {
            "compile_s": run["compile_s"],
            "ms": 1e3 * seconds,
            "ms_min": 1e3 * min(run["times"]),
            "tokens_per_s": tokens / seconds,
        }
    for mode in args.modes:
        cached, recompute = results[f"{mode} cached"], results[f"{mode} recompute"]
        cached["speedup"] = cached["tokens_per_s"] / recompute["tokens_per_s"]
        recompute["speedup"] = 1.0
    return results, outputs


def padded(row: tuple[str, ...], widths: list[int]) -> list[str]:
    """Cells padded to their column widths: the first left-aligned, the numbers right-aligned."""
    return [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]


def format_table(results: dict[str, dict[str, Any]]) -> str:
    header = ("decoder", "compile s", "ms / call", "tokens/s", "speedup")
    rows = [header] + [
        (name, f"{r['compile_s']:.1f}", f"{r['ms']:.1f}", f"{r['tokens_per_s']:.0f}", f"{r['speedup']:.2f}x")
        for name, r in results.items()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(padded(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


QUICK = dict(
    batch=2,
    src_len=8,
    new_tokens=8,
    width=32,
    encoder_layers=1,
    decoder_layers=1,
    heads=4,
    mlp_dim=64,
    vocab=64,
    beam=2,
    repeats=2,
    warmup=1,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Cached vs recomputed greedy and beam decoding.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--src-len", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=64, help="tokens decoded per row (no early EOS)")
    p.add_argument("--beam", type=int, default=4)
    p.add_argument("--alpha", type=float, default=0.6, help="beam search length penalty")
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--encoder-layers", type=int, default=3)
    p.add_argument("--decoder-layers", type=int, default=3)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--mlp-dim", type=int, default=1024)
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--repeats", type=int, default=3, help="timed calls; the median is reported")
    p.add_argument("--warmup", type=int, default=1, help="untimed calls before timing")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="a tiny model: checks that it runs")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="JSON output (default: benchmarks/results/decode-<backend>.json)",
    )
    args = p.parse_args(argv)
    if args.quick:
        p.set_defaults(**QUICK)
        args = p.parse_args(argv)  # explicit flags still win
    if args.width % args.heads or min(args.batch, args.new_tokens, args.beam, args.repeats) < 1:
        p.error("--width must be a multiple of --heads; --batch, --new-tokens, --beam, --repeats >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_start = os.getloadavg()[0]
    backend = jax.default_backend()
    info = {
        "backend": backend,
        "device_kind": jax.devices()[0].device_kind,
        "cpu_count": os.cpu_count(),
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib.__version__,
        "flax_version": flax.__version__,
    }
    print("  ".join(f"{k} {v}" for k, v in info.items()))
    results, outputs = run_all(args)
    greedy_agree = None
    if "greedy" in args.modes:
        greedy_agree = bool(np.array_equal(outputs["greedy cached"], outputs["greedy recompute"]))

    print(
        f"\nbatch {args.batch}, source {args.src_len} tokens, {args.new_tokens} new tokens, beam "
        f"{args.beam}; width {args.width}, layers {args.encoder_layers}+{args.decoder_layers}, heads "
        f"{args.heads}, mlp {args.mlp_dim}, vocab {args.vocab}; EOS = vocab (never produced); median of "
        f"{args.repeats} calls (decoders take turns)\n"
    )
    print(format_table(results))
    print("(tokens/s: batch x new tokens per second; speedup: cached over recompute, same search)")
    if greedy_agree is not None:
        print(f"cached and recomputed greedy tokens agree: {'yes' if greedy_agree else 'NO'}")
    per_step = {
        kind: step_flops(
            args, args.batch, 1 if kind == "cached" else args.new_tokens, cached=kind == "cached"
        )
        for kind in STEPS
    }
    cached = per_step["cached"]
    print(
        f"greedy step forward MFLOP, cached: {sum(cached.values()) / 1e6:.3g} ("
        + ", ".join(f"{k} {100 * v / sum(cached.values()):.0f}%" for k, v in cached.items())
        + f"); recompute: {sum(per_step['recompute'].values()) / 1e6:.3g}"
    )

    out = args.out or ROOT / "benchmarks" / "results" / f"decode-{backend}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    config = {k: v for k, v in vars(args).items() if k != "out"} | {"bos_id": BOS, "eos_id": args.vocab}
    out.write_text(
        json.dumps(
            {
                "benchmark": "decode",
                # others sharing the CPU
                "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "command": shlex.join([Path(sys.executable).name, *sys.argv]),
                **info,
                "config": config,
                "results": results,
                "greedy_cached_equals_recompute": greedy_agree,
                "greedy_step_forward_flops": per_step,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
