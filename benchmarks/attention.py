"""Benchmark every dot-product attention implementation: time, temporary memory and achieved FLOP/s.

Run from the repository root::

    python benchmarks/attention.py                                  # lengths 256 ... 4096
    python benchmarks/attention.py --lengths 1024 4096 --impls attn_jax:blockwise jax.nn
    python benchmarks/attention.py --lengths 16384 32768 --memory-only     # temporaries only, no timing
    python benchmarks/attention.py --lengths 256 512 --repeats 2 --out /tmp/attn.json   # smoke run

What it measures, in one run on the default JAX backend, for each implementation x sequence length x
(causal, non-causal), with self-attention inputs ``[batch, length, heads, head_dim]`` (defaults: batch 1,
8 heads, head_dim 64, float32):

- implementations: every name in ``attn_jax.attention.available_implementations(backend)`` for the
  default backend (called through ``dot_product_attention(..., implementation=name)``, shown as
  ``attn_jax:<name>``), the automatic choice (``attn_jax:auto``, ``implementation=None``; the table notes
  which kernel it picked), plus ``jax.nn.dot_product_attention`` (``jax.nn``) and
  ``flax.linen.dot_product_attention`` (``flax.linen``, given a boolean causal mask built inside the
  jitted function, as the others build theirs);
- time of the forward pass and of forward+backward (the gradient of the sum of the outputs with respect to
  q, k and v), each jitted, run ``--warmup`` times, then timed ``--repeats`` times with
  ``jax.block_until_ready``; the median is reported;
- temporary memory of each compiled function, ``compiled.memory_analysis().temp_size_in_bytes``
  (reported as missing on backends that do not provide it);
- achieved GFLOP/s and its fraction of a matrix-product peak measured in the same run (the median time of
  a jitted ``--matmul-size`` square matmul in the same dtype, ``2 n^3`` FLOPs, at least 5 timed runs);
- the ratio of each implementation's time to ``jax.nn.dot_product_attention``'s at the same shape.

FLOP convention: the forward pass counts its two matrix products, ``4 * B * H * Tq * Tk * D``, halved when
causal (only the useful half is counted, whether or not an implementation skips the masked half).
Forward+backward counts ``3x`` the forward: the backward pass has four matrix products of the same size
(dV, dP, dQ, dK). Softmax, masking and any recomputation are not counted.

Memory guard: every configuration is compiled first (cheap even at 32k) and skipped, before running, as
"too much memory" when its compiled temporary memory exceeds the budget: ``--max-memory-gb``, by default
80% of the machine's memory (the accelerator's ``bytes_limit``, or the host's available RAM on CPU). On a
backend without memory analysis, implementations known to materialise the ``[B, H, Tq, Tk]`` score matrix
(``attn_jax:xla``, ``jax.nn``, ``flax.linen``) fall back to an estimate of their float32 score matrices
(2 copies for the forward, 5 for forward+backward). Skipped configurations keep their compiled memory in
the table; skipped and failing ones are listed with the reason and never stop the run. ``--memory-only``
compiles and reports memory without timing anything.

Output: a table on stdout and the same data as JSON in ``--out`` (default
``benchmarks/results/attention-<backend>.json``), with the device, versions, date and command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import logging
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import jaxlib
from jax import Array

from attn_jax.attention import available_implementations, dot_product_attention

AttentionFn = Callable[[Array, Array, Array], Array]

MAX_LENGTH = 32768
DEFAULT_LENGTHS = (256, 512, 1024, 2048, 4096)
JAX_NN = "jax.nn"
FLAX = "flax.linen"
AUTO = "attn_jax:auto"
ATTN_JAX_MATERIALISING = frozenset({"xla"})  # attn_jax kernels that build the full score matrix
MEMORY_FRACTION = 0.8  # default budget: this share of the machine's memory
FORWARD_SCORE_COPIES = 2  # logits and weights
FORWARD_BACKWARD_SCORE_COPIES = 5  # plus residuals and cotangents (attn_jax:xla compiles to about 5)
FORWARD_BACKWARD_FLOP_FACTOR = 3.0
SCORE_BYTES = 4  # scores and softmax are float32 whatever the input dtype
PASSES = ("forward", "forward_backward")


@dataclasses.dataclass(frozen=True)
class Shape:
    """One attention problem: self-attention, queries and keys of the same length."""

    batch: int
    length: int
    heads: int
    head_dim: int
    dtype: str
    causal: bool


@dataclasses.dataclass(frozen=True)
class Implementation:
    """A named attention function factory; ``materialises`` marks the full-score-matrix ones."""

    name: str
    make: Callable[[bool], AttentionFn]
    materialises: bool


@dataclasses.dataclass
class Measurement:
    """One timed pass (forward or forward+backward) of one implementation at one shape."""

    status: str  # "ok", "skipped" or "failed"
    reason: str | None = None
    ms: float | None = None
    temp_bytes: int | None = None
    gflops: float | None = None
    fraction_of_peak: float | None = None
    ratio_vs_jax_nn: float | None = None


@dataclasses.dataclass
class Row:
    """All measurements of one implementation x length x causal."""

    impl: str
    length: int
    causal: bool
    forward: Measurement
    forward_backward: Measurement
    chosen: str | None = None  # for attn_jax:auto, the implementation it picked


# --------------------------------------------------------------------------------------------------
# Implementations


def _attn_jax(name: str) -> Callable[[bool], AttentionFn]:
    def make(causal: bool) -> AttentionFn:
        return lambda q, k, v: dot_product_attention(q, k, v, causal=causal, implementation=name)

    return make


def _jax_nn(causal: bool) -> AttentionFn:
    return lambda q, k, v: jax.nn.dot_product_attention(q, k, v, is_causal=causal)


def _flax(causal: bool) -> AttentionFn:
    def attend(q: Array, k: Array, v: Array) -> Array:
        mask = None
        if causal:  # [batch, 1, length, length], True = may attend
            mask = nn.make_causal_mask(jnp.ones(q.shape[:-2], jnp.bool_), dtype=jnp.bool_)
        return nn.dot_product_attention(q, k, v, mask=mask, deterministic=True)

    return attend


def all_implementations(backend: str | None = None) -> list[Implementation]:
    """attn_jax's kernels that run on ``backend`` (default: JAX's), its automatic choice, then the
    jax.nn and flax.linen references."""
    backend = backend or jax.default_backend()
    impls = [
        Implementation(f"attn_jax:{name}", _attn_jax(name), name in ATTN_JAX_MATERIALISING)
        for name in available_implementations(backend)
    ]
    impls.append(Implementation(AUTO, _attn_jax(None), materialises=False))
    impls.append(Implementation(JAX_NN, _jax_nn, materialises=True))
    impls.append(Implementation(FLAX, _flax, materialises=True))
    return impls


# --------------------------------------------------------------------------------------------------
# Measuring


def attention_flops(shape: Shape, backward: bool) -> float:
    """FLOPs by the convention in the module docstring."""
    flops = 4.0 * shape.batch * shape.heads * shape.length * shape.length * shape.head_dim
    if shape.causal:
        flops /= 2
    return flops * FORWARD_BACKWARD_FLOP_FACTOR if backward else flops


def score_matrix_bytes(shape: Shape, copies: int) -> int:
    """Estimated bytes of ``copies`` float32 ``[B, H, T, T]`` score matrices."""
    return copies * shape.batch * shape.heads * shape.length * shape.length * SCORE_BYTES


def make_inputs(shape: Shape, seed: int) -> tuple[Array, Array, Array]:
    """Random normal q, k, v of shape ``[batch, length, heads, head_dim]``."""
    dims = (shape.batch, shape.length, shape.heads, shape.head_dim)
    keys = jax.random.split(jax.random.key(seed), 3)
    return tuple(jax.random.normal(key, dims, jnp.dtype(shape.dtype)) for key in keys)


def forward_backward(fn: AttentionFn) -> Callable[[Array, Array, Array], tuple[Array, Array, Array]]:
    """Gradient of the sum of the outputs with respect to q, k and v."""
    return jax.grad(lambda q, k, v: fn(q, k, v).astype(jnp.float32).sum(), argnums=(0, 1, 2))


def temp_bytes(compiled: Any) -> int | None:
    """``temp_size_in_bytes`` of a compiled function, or None where the backend does not report it."""
    try:
        analysis = compiled.memory_analysis()
    except (NotImplementedError, RuntimeError, AttributeError):
        return None
    return None if analysis is None else getattr(analysis, "temp_size_in_bytes", None)


def median_seconds(fn: Callable[..., Any], args: Sequence[Array], warmup: int, repeats: int) -> float:
    """Median wall time of ``fn(*args)`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def gb(num_bytes: float) -> str:
    """Bytes as decimal gigabytes for messages."""
    return f"{num_bytes / 1e9:.3g} GB"


def measure(
    fn: Callable[..., Any],
    args: Sequence[Array],
    *,
    estimate_bytes: int | None,
    budget_bytes: float,
    warmup: int,
    repeats: int,
    memory_only: bool = False,
) -> Measurement:
    """Compile, check the memory budget, then time ``fn``; exceptions become a failed measurement."""
    try:
        compiled = jax.jit(fn).lower(*args).compile()
        temp = temp_bytes(compiled)
        if temp is not None and temp > budget_bytes:
            reason = f"too much memory: compiled temporaries {gb(temp)} > budget {gb(budget_bytes)}"
            return Measurement("skipped", reason, temp_bytes=temp)
        if temp is None and estimate_bytes is not None and estimate_bytes > budget_bytes:
            estimate = gb(estimate_bytes)
            reason = f"too much memory: estimated score matrices {estimate} > budget {gb(budget_bytes)}"
            return Measurement("skipped", reason)
        if memory_only:
            return Measurement("ok", "memory only", temp_bytes=temp)
        seconds = median_seconds(compiled, args, warmup, repeats)
    except Exception as error:  # report and carry on: one bad configuration must not end the run
        message = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        return Measurement("failed", f"{type(error).__name__}: {message}")
    return Measurement("ok", ms=seconds * 1e3, temp_bytes=temp)


def matmul_peak_gflops(size: int, dtype: str, warmup: int, repeats: int, seed: int) -> tuple[float, float]:
    """Median time (ms) and GFLOP/s of a jitted ``size x size`` matmul: the reference peak."""
    key_a, key_b = jax.random.split(jax.random.key(seed))
    a = jax.random.normal(key_a, (size, size), jnp.dtype(dtype))
    b = jax.random.normal(key_b, (size, size), jnp.dtype(dtype))
    compiled = jax.jit(jnp.matmul).lower(a, b).compile()
    seconds = median_seconds(compiled, (a, b), warmup, max(repeats, 5))
    return seconds * 1e3, 2.0 * size**3 / seconds / 1e9


def machine_memory_bytes() -> int | None:
    """Memory the default device can use: the accelerator's ``bytes_limit``, else the host's available
    RAM (Linux ``MemAvailable``, or physical memory), or None when unknown."""
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # some backends do not implement it
        stats = None
    if stats and stats.get("bytes_limit"):
        return int(stats["bytes_limit"])
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


class _ChoiceLog(logging.Handler):
    """Collects the implementation names that ``dot_product_attention`` logs when it chooses one."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.names: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "using the" in record.getMessage():
            self.names.append(str(record.args[0]) if record.args else record.getMessage())


def chosen_implementation(attend: AttentionFn, inputs: Sequence[Array]) -> str | None:
    """The implementation ``implementation=None`` picks for these inputs (traced, not run)."""
    logger = logging.getLogger("attn_jax.attention.dot_product")
    handler, level = _ChoiceLog(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        jax.eval_shape(lambda *args: attend(*args), *inputs)  # a new function: traced afresh, never cached
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return handler.names[-1] if handler.names else None


def measure_row(impl: Implementation, shape: Shape, args: argparse.Namespace) -> Row:
    """Forward and forward+backward measurements of one implementation at one shape."""
    inputs = make_inputs(shape, args.seed)
    attend = impl.make(shape.causal)
    common = {"budget_bytes": args.budget_bytes, "warmup": args.warmup, "repeats": args.repeats,
              "memory_only": args.memory_only}
    fwd_estimate = score_matrix_bytes(shape, FORWARD_SCORE_COPIES) if impl.materialises else None
    bwd_estimate = score_matrix_bytes(shape, FORWARD_BACKWARD_SCORE_COPIES) if impl.materialises else None
    not_asked = Measurement("skipped", "not requested (--passes)")
    forward = not_asked
    if args.passes in ("both", "forward"):
        forward = measure(attend, inputs, estimate_bytes=fwd_estimate, **common)
    backward = not_asked
    if args.passes in ("both", "forward_backward"):
        backward = measure(forward_backward(attend), inputs, estimate_bytes=bwd_estimate, **common)
    chosen = chosen_implementation(attend, inputs) if impl.name == AUTO else None
    return Row(impl.name, shape.length, shape.causal, forward, backward, chosen)


def add_derived(rows: list[Row], batch: int, heads: int, head_dim: int, peak: float) -> None:
    """Fill GFLOP/s, fraction of the matmul peak and the ratio to jax.nn in place."""
    reference = {(r.length, r.causal): r for r in rows if r.impl == JAX_NN}
    for row in rows:
        shape = Shape(batch, row.length, heads, head_dim, "", row.causal)
        for pass_name in PASSES:
            m: Measurement = getattr(row, pass_name)
            if m.ms is None:
                continue
            m.gflops = attention_flops(shape, pass_name == "forward_backward") / (m.ms / 1e3) / 1e9
            m.fraction_of_peak = m.gflops / peak
            ref = reference.get((row.length, row.causal))
            ref_ms = getattr(ref, pass_name).ms if ref is not None else None
            if ref_ms:
                m.ratio_vs_jax_nn = m.ms / ref_ms


# --------------------------------------------------------------------------------------------------
# Output


def _cell(value: float | None, m: Measurement, fmt: str) -> str:
    """A number, or why there is none: ``skip``, ``FAIL``, or ``-`` (not reported)."""
    if value is not None:
        return format(value, fmt)
    return {"skipped": "skip", "failed": "FAIL"}.get(m.status, "-")


def _pair(a: float | None, b: float | None, fmt: str, fwd: Measurement, bwd: Measurement) -> str:
    return f"{_cell(a, fwd, fmt)} / {_cell(b, bwd, fmt)}"


def _mb(num_bytes: int | None) -> float | None:
    return None if num_bytes is None else num_bytes / 2**20


def _pct(fraction: float | None) -> float | None:
    return None if fraction is None else 100 * fraction


def _align(cells: Sequence[str], widths: Sequence[int], left: set[int]) -> str:
    """Pad cells to their column widths; columns in ``left`` are left-aligned, numbers right-aligned."""
    columns = enumerate(zip(cells, widths, strict=True))
    return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in columns)


def format_table(rows: list[Row]) -> str:
    """One line per implementation x length x causal; paired cells are ``forward / forward+backward``."""
    header = ("impl", "len", "causal", "fwd ms", "fwd+bwd ms", "temp MB", "GFLOP/s", "%peak", "x vs jax.nn")
    lines = [header]
    for r in rows:
        f, b = r.forward, r.forward_backward
        lines.append((
            r.impl if r.chosen is None else f"{r.impl} ({r.chosen})",
            str(r.length),
            "yes" if r.causal else "no",
            _cell(f.ms, f, ".2f"),
            _cell(b.ms, b, ".2f"),
            _pair(_mb(f.temp_bytes), _mb(b.temp_bytes), ".1f", f, b),
            _pair(f.gflops, b.gflops, ".1f", f, b),
            _pair(_pct(f.fraction_of_peak), _pct(b.fraction_of_peak), ".1f", f, b),
            _pair(f.ratio_vs_jax_nn, b.ratio_vs_jax_nn, ".2f", f, b),
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [_align(line, widths, left={0, 2}) for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    text.append("(paired columns: forward / forward+backward)")
    return "\n".join(text)


def format_problems(rows: list[Row]) -> str:
    """Lines naming each skipped or failed measurement and why."""
    lines = []
    for r in rows:
        for pass_name in PASSES:
            m: Measurement = getattr(r, pass_name)
            if m.status != "ok" and m.reason != "not requested (--passes)":
                causal = "causal" if r.causal else "non-causal"
                lines.append(f"  {m.status}: {r.impl} len={r.length} {causal} {pass_name}: {m.reason}")
    return "\n".join(lines)


def device_info() -> dict[str, Any]:
    """Backend, device kind and library versions, for the printout and the JSON."""
    device = jax.devices()[0]
    return {
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "device_count": jax.device_count(),
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib.__version__,
        "flax_version": flax.__version__,
    }


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path``, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


# --------------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None, impl_names: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time, memory and GFLOP/s of every dot-product attention implementation.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=list(DEFAULT_LENGTHS),
                        help=f"sequence lengths (query = key length), each at most {MAX_LENGTH}")
    parser.add_argument("--causal", choices=("both", "yes", "no"), default="both",
                        help="measure causal, non-causal or both")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    parser.add_argument("--impls", nargs="+", choices=impl_names, default=list(impl_names),
                        help="implementations to measure")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; the median is reported")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs before timing")
    parser.add_argument("--passes", choices=("both", "forward", "forward_backward"), default="both",
                        help="which passes to compile and time")
    parser.add_argument("--memory-only", action="store_true",
                        help="compile and report temporary memory, time nothing")
    parser.add_argument("--max-memory-gb", type=float, default=None,
                        help=f"skip configurations whose compiled temporaries exceed this "
                             f"(default: {MEMORY_FRACTION * 100:.0f}%% of the device's or host's memory)")
    parser.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n peak matmul")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON output (default: benchmarks/results/attention-<backend>.json)")
    args = parser.parse_args(argv)
    bad = [n for n in args.lengths if not 1 <= n <= MAX_LENGTH]
    if bad:
        parser.error(f"--lengths must be between 1 and {MAX_LENGTH}; got {bad}")
    for flag in ("batch", "heads", "head_dim", "repeats", "matmul_size"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.warmup < 0 or (args.max_memory_gb is not None and args.max_memory_gb <= 0):
        parser.error("--warmup must be >= 0 and --max-memory-gb > 0")
    if args.max_memory_gb is None:
        available = machine_memory_bytes()
        if available is None:
            parser.error("cannot tell this machine's memory; give --max-memory-gb")
        args.budget_bytes = MEMORY_FRACTION * available
    else:
        args.budget_bytes = args.max_memory_gb * 1e9
    return args


def main(argv: Sequence[str] | None = None) -> int:
    impls = all_implementations()
    args = parse_args(argv, [impl.name for impl in impls])
    impls = [impl for impl in impls if impl.name in args.impls]
    info = device_info()
    out = args.out or Path(__file__).resolve().parent / "results" / f"attention-{info['backend']}.json"
    print(f"backend: {info['backend']}  device: {info['device_kind']} x{info['device_count']}  "
          f"jax {info['jax_version']}  flax {info['flax_version']}")
    print(f"shape: batch {args.batch}, heads {args.heads}, head_dim {args.head_dim}, {args.dtype}; "
          f"median of {args.repeats} after {args.warmup} warm-up; memory budget {gb(args.budget_bytes)}")

    peak_ms = peak = None
    if not args.memory_only:
        peak_ms, peak = matmul_peak_gflops(args.matmul_size, args.dtype, args.warmup, args.repeats, args.seed)
        print(f"matmul peak: {args.matmul_size}x{args.matmul_size} {args.dtype} in {peak_ms:.2f} ms "
              f"= {peak:.1f} GFLOP/s")

    causal_modes = {"both": (False, True), "yes": (True,), "no": (False,)}[args.causal]
    rows = []
    for length in args.lengths:
        for causal in causal_modes:
            shape = Shape(args.batch, length, args.heads, args.head_dim, args.dtype, causal)
            for impl in impls:
                print(f"  measuring {impl.name} len={length} causal={causal}", file=sys.stderr, flush=True)
                rows.append(measure_row(impl, shape, args))
    if peak is not None:
        add_derived(rows, args.batch, args.heads, args.head_dim, peak)

    print()
    print(format_table(rows))
    problems = format_problems(rows)
    if problems:
        print("\nnot measured:\n" + problems)

    write_json(out, {
        "benchmark": "attention",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        **info,
        "config": {
            "lengths": args.lengths, "causal": list(causal_modes), "batch": args.batch,
            "heads": args.heads, "head_dim": args.head_dim, "dtype": args.dtype,
            "implementations": [impl.name for impl in impls], "repeats": args.repeats,
            "warmup": args.warmup, "passes": args.passes, "memory_only": args.memory_only,
            "memory_budget_bytes": args.budget_bytes,
            "flops": "forward 4*B*H*Tq*Tk*D, halved when causal; forward+backward 3x forward",
        },
        "matmul_peak": {"size": args.matmul_size, "ms": peak_ms, "gflops": peak},
        "results": [dataclasses.asdict(row) for row in rows],
    })
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
