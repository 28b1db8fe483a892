"""Multi30k English -> German: train a Transformer on CPU within a time budget, report test SacreBLEU.

Run from the repository root (the data lives beside the checkout, in ``../shared/data/translation/multi30k``:
line-aligned ``{train,val,test_2016_flickr}.{en,de}``)::

    python benchmarks/multi30k.py                   # 55-minute training budget, steps from measured step time
    python benchmarks/multi30k.py --minutes 30      # a shorter budget
    python benchmarks/multi30k.py --steps 3000      # a fixed number of steps instead of a budget
    python benchmarks/multi30k.py --steps 30 --eval-examples 16 --test-size 64 --out /tmp/m30k.json  # smoke

It trains ``configs/translation.py:multi30k`` (``data.source=files:DIR``) with
``attn_jax.train.train_and_evaluate``, evaluating on ``val`` during training, then decodes
``test_2016_flickr`` with beam search from the best checkpoint (by val BLEU) through the task's own eval
(``attn_jax.train.evaluate_checkpoint`` with ``data.eval_split=test_2016_flickr``), and scores the detokenized
outputs with SacreBLEU (BLEU and chrF, with their signatures) against the untouched reference lines.

The trainer has no time limit, so ``--minutes`` is turned into ``train.steps`` before training starts:

1. a timing warm-up builds the task (training the SentencePiece model, kept in the workdir), draws
   ``--draw-batches`` training batches to learn how often each length bucket comes up, times
   ``--timing-repeats`` training steps (median) of two buckets, the most common one and the longest one
   holding at least 5% of the batches, and times one evaluation batch and one beam-search decoding batch;
2. the expected step time is the bucket-frequency-weighted mean of a step time linear in the bucket length
   through those two measurements; the trainer will compile each bucket once, as long as the warm-up took
   per bucket; the in-training evals (``--evals`` of them) are estimated from the eval and decode timings
   (a decode batch of the untrained model runs to ``decode.max_len``; trained outputs are taken to need
   ``DECODE_FRACTION`` of that);
3. ``train.steps`` is what fits into the budget left after the warm-up, those compilations, the evals and a
   start-up allowance; the warm-up (``train.warmup_steps``) keeps the variant's ratio of warm-up to total
   steps, and evals and checkpoints fall every ``ceil(steps / evals)`` steps.

The budget covers everything up to the end of training (tokenizer, warm-up, compilation, training and its
evals); the test decoding comes on top and is timed separately. The training step bakes in the learning-rate
schedule, so the warm-up's compiled steps are thrown away; its eval and decode programs go to a persistent
JAX compilation cache in the workdir, from which the trainer loads them. The run is not stopped at the
deadline (a cut-off run would end before its learning-rate schedule and its final eval): on a machine that
gets busier during the run, training takes longer than the budget, and the result says so.

Output: a table on stdout and JSON (default ``benchmarks/results/multi30k.json``) with the device, CPU
count, load average, versions, resolved config, step timing, val BLEU at each eval, the test scores and
the wall times. The workdir (default: a temporary folder; ``--workdir`` keeps it) holds the run as
``train.py`` leaves it, with the test outputs in ``predictions_<split>/``.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import logging
import math
import os
import pathlib
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from typing import Any

import flax
import jax
import jaxlib
import ml_collections
import numpy as np
import sacrebleu

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attn_jax.errors import UserError  # noqa: E402
from attn_jax.tasks import build_task  # noqa: E402
from attn_jax.train import evaluate_checkpoint, train_and_evaluate  # noqa: E402
from attn_jax.train.parallel import make_runner  # noqa: E402
from configs import translation  # noqa: E402

SOURCE_LANG, TARGET_LANG = "en", "de"
SPLITS = ("train", "val", "test_2016_flickr")
# Trained outputs end long before decode.max_len; the untrained model timed in the warm-up never ends.
DECODE_FRACTION = 0.5
EVAL_OVERHEAD_S = 5.0  # per eval: attention heatmaps, predictions file, checkpoint hand-off
STARTUP_OVERHEAD_S = 20.0  # the trainer's own start: task, cached compilations, first checkpoint


def log(message: str) -> None:
    print(f"[multi30k] {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Multi30k en->de Transformer on CPU within a time budget; SacreBLEU on test_2016_flickr.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--data", type=pathlib.Path, default=ROOT.parent / "shared" / "data" / "translation" / "multi30k"
    )
    p.add_argument(
        "--minutes", type=float, default=55.0, help="training budget (the test decoding comes on top)"
    )
    p.add_argument(
        "--steps", type=int, default=None, help="train this many steps instead (default: from --minutes)"
    )
    p.add_argument("--evals", type=int, default=3, help="evals on val during training (the last at the end)")
    p.add_argument(
        "--eval-examples",
        type=int,
        default=None,
        help="val pairs decoded at each eval (default: the config's)",
    )
    p.add_argument("--test-split", default="test_2016_flickr")
    p.add_argument(
        "--test-size", type=int, default=None, help="decode only the first N test pairs (smoke runs)"
    )
    p.add_argument(
        "--beam", type=int, default=None, help="beam size (default: the config's decode.beam_size)"
    )
    p.add_argument(
        "--draw-batches", type=int, default=400, help="training batches drawn to learn the bucket mix"
    )
    p.add_argument("--timing-repeats", type=int, default=3, help="timed training steps per bucket (median)")
    p.add_argument(
        "--workdir", type=pathlib.Path, default=None, help="keep the run here (default: a temp folder)"
    )
    p.add_argument(
        "--out",
        type=pathlib.Path,
        default=None,
        help="JSON output (default: benchmarks/results/multi30k.json)",
    )
    args = p.parse_args(argv)
    if args.minutes <= 0 or args.evals < 1 or args.timing_repeats < 1 or args.draw_batches < 1:
        p.error("--minutes must be positive; --evals, --timing-repeats and --draw-batches at least 1.")
    if args.steps is not None and args.steps < 1:
        p.error("--steps must be at least 1.")
    return args


def missing_data(directory: pathlib.Path, test_split: str) -> str | None:
    """One line saying what is missing from the data folder, or ``None``."""
    if not directory.is_dir():
        return (
            f"no Multi30k folder at {directory}; pass --data DIR with {{train,val,{test_split}}}.{{en,de}} "
            "(line-aligned text)."
        )
    names = [f"{split}.{lang}" for split in (*SPLITS[:2], test_split) for lang in (SOURCE_LANG, TARGET_LANG)]
    missing = [name for name in names if not (directory / name).is_file()]
    if missing:
        return f"{directory} lacks {', '.join(missing)}; pass --data DIR with the Multi30k files."
    return None


def make_config(args: argparse.Namespace) -> ml_collections.ConfigDict:
    config = translation.get_config("multi30k")
    config.data.source = f"files:{args.data.resolve()}"
    config.data.source_lang, config.data.target_lang = SOURCE_LANG, TARGET_LANG
    if args.eval_examples is not None:
        config.decode.num_examples = args.eval_examples
    if args.beam is not None:
        config.decode.beam_size = args.beam
    return config


def bucket_of(batch: dict[str, np.ndarray]) -> int:
    return int(batch["src"].shape[1])


def time_call(fn, *args) -> tuple[float, Any]:
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return time.perf_counter() - start, out


def measure(
    config: ml_collections.ConfigDict, workdir: pathlib.Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Step time per length bucket, how often each bucket comes up, and the cost of one eval."""
    start = time.perf_counter()
    decoded = config.decode.num_examples or math.inf  # val pairs decoded at each eval of the real run
    config = config.copy_and_resolve_references()
    config.decode.num_examples = config.decode.batch_size  # the same compiled decoder, one batch of it
    task = build_task(config, workdir)  # trains the SentencePiece model once; the trainer loads it
    task_s = time.perf_counter() - start
    runner = make_runner(task, config)
    state = runner.init_state(jax.random.key(config.seed))
    rng = jax.random.key(config.seed + 1)

    log(f"drawing {args.draw_batches} training batches to learn the length-bucket mix")
    iterator = task.train_iterator()
    counts: collections.Counter[int] = collections.Counter()
    samples: dict[int, dict[str, np.ndarray]] = {}
    for _ in range(args.draw_batches):
        batch = next(iterator)
        counts[bucket_of(batch)] += 1
        samples.setdefault(bucket_of(batch), batch)
    shares = {length: counts[length] / args.draw_batches for length in sorted(counts)}
    # The compiled step bakes in the learning-rate schedule, which depends on the steps still to be
    # chosen, so nothing compiled here serves the trainer: time two buckets, the most common and the
    # longest common one, and take the step time as linear in the bucket length between them.
    common = max(shares, key=shares.get)
    longest = max(length for length, share in shares.items() if share >= 0.05 or length == common)
    timed: dict[int, dict[str, float]] = {}
    for length in sorted({common, longest}):
        first, (state, _) = time_call(runner.train_step, state, samples[length], rng)
        times = []
        for _ in range(args.timing_repeats):
            seconds, (state, _) = time_call(runner.train_step, state, samples[length], rng)
            times.append(seconds)
        timed[length] = {"step_s": statistics.median(times), "compile_s": max(first - min(times), 0.0)}
        log(
            f"bucket {length:>3} ({100 * shares[length]:.0f}% of batches): "
            f"{timed[length]['step_s']:.3f} s/step, compiled in {timed[length]['compile_s']:.1f} s"
        )
    short, long = min(timed), max(timed)
    short_s, long_s = timed[short]["step_s"], timed[long]["step_s"]
    # One bucket timed: proportional to the length; two: the line through both.
    slope = max((long_s - short_s) / (long - short), 0.0) if long > short else short_s / short
    step_at = {length: max(short_s + slope * (length - short), 0.0) for length in shares}
    step_s = sum(shares[length] * step_at[length] for length in shares)
    boundaries = config.data.get("bucket_boundaries") or ()
    num_buckets = len({*boundaries, max(config.data.max_source_len, config.data.max_target_len)}) or 1
    train_compile_s = statistics.mean(v["compile_s"] for v in timed.values())

    eval_batch = next(iter(task.eval_iterator()))
    time_call(runner.eval_step, state, eval_batch)  # compiles; the trainer's evals load it from the cache
    eval_batch_s, _ = time_call(runner.eval_step, state, eval_batch)
    # One beam-search batch through the task's own eval decoding (the warm-up task decodes one batch).
    params = runner.host_state(state).params
    time_call(task.eval_extras, params, {"loss": 1.0}, 0)  # compiles (cached for the trainer too)
    decode_batch_s, _ = time_call(task.eval_extras, params, {"loss": 1.0}, 0)
    (workdir / "predictions" / f"step_{0:07d}.jsonl").unlink(missing_ok=True)
    log(f"eval batch {eval_batch_s:.2f} s; beam-search batch of the untrained model {decode_batch_s:.1f} s")

    eval_pairs = len(task.eval_pairs)
    decoded = min(decoded, eval_pairs)
    eval_s = (
        math.ceil(eval_pairs / config.train.batch_size) * eval_batch_s
        + math.ceil(decoded / config.decode.batch_size) * decode_batch_s * DECODE_FRACTION
        + EVAL_OVERHEAD_S
    )
    return {
        "task_build_s": task_s,
        "bucket_share": {str(k): v for k, v in shares.items()},
        "timed_buckets": {str(k): v for k, v in timed.items()},
        "modelled_step_s": {str(k): v for k, v in step_at.items()},
        "mean_step_s": step_s,
        "train_step_compile_s": train_compile_s,
        "num_buckets": num_buckets,
        "eval_batch_s": eval_batch_s,
        "decode_batch_untrained_s": decode_batch_s,
        "estimated_eval_s": eval_s,
        "warmup_s": time.perf_counter() - start,
    }


def plan_steps(timing: dict[str, Any], budget_s: float, elapsed_s: float, evals: int) -> int:
    """Training steps that fit into what is left of the budget after ``evals`` evals (may be <= 0)."""
    left = (
        budget_s
        - elapsed_s
        - STARTUP_OVERHEAD_S
        - timing["task_build_s"]
        - timing["num_buckets"] * timing["train_step_compile_s"]  # the trainer compiles each bucket once
        - evals * timing["estimated_eval_s"]
    )
    return int(left // timing["mean_step_s"])


def set_schedule(config: ml_collections.ConfigDict, steps: int, evals: int) -> None:
    """``steps`` training steps; the variant's warm-up fraction; ``evals`` evenly spaced evals/checkpoints."""
    t = config.train
    t.warmup_steps = max(1, round(t.warmup_steps * steps / t.steps))
    t.steps = steps
    t.eval_every = math.ceil(steps / evals)
    t.checkpoint_every = t.eval_every
    t.log_every = min(t.log_every, steps)


def read_metrics(workdir: pathlib.Path) -> list[dict[str, Any]]:
    path = workdir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def val_history(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each in-training eval: step, val BLEU, loss and its duration (eval line time - train line time)."""
    train_time = {r["step"]: r["time"] for r in records if r["split"] == "train"}
    history = []
    for r in records:
        if r["split"] != "eval":
            continue
        entry = {k: r[k] for k in ("step", "bleu", "loss", "accuracy", "perplexity") if k in r}
        if r["step"] in train_time:
            entry["eval_s"] = r["time"] - train_time[r["step"]]
        history.append(entry)
    return history


def evaluate_test(
    config: ml_collections.ConfigDict, workdir: pathlib.Path, args: argparse.Namespace
) -> dict[str, Any]:
    """Decode the test split from the best checkpoint with the task's eval; SacreBLEU on its outputs."""
    test_config = config.copy_and_resolve_references()
    test_config.data.eval_split = args.test_split
    test_config.data.eval_size = args.test_size
    test_config.decode.num_examples = None  # every test pair
    predictions, kept = workdir / "predictions", workdir / "predictions_val"
    if predictions.exists():  # the task writes predictions/step_N.jsonl: keep the val ones apart
        shutil.rmtree(kept, ignore_errors=True)
        predictions.rename(kept)
    start = time.perf_counter()
    metrics = evaluate_checkpoint(test_config, workdir)
    seconds = time.perf_counter() - start
    step = read_metrics(workdir)[-1]["step"]  # evaluate_checkpoint logs the step it restored
    out_dir = workdir / f"predictions_{args.test_split}"
    shutil.rmtree(out_dir, ignore_errors=True)
    predictions.rename(out_dir)
    if kept.exists():
        kept.rename(predictions)

    rows = [json.loads(line) for line in (out_dir / f"step_{step:07d}.jsonl").read_text("utf-8").splitlines()]
    hypotheses = [r["prediction"] for r in rows]
    references = [r["reference"] for r in rows]
    bleu, chrf = sacrebleu.metrics.BLEU(), sacrebleu.metrics.CHRF()
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return {
        "split": args.test_split,
        "sentences": len(rows),
        "checkpoint_step": step,
        "bleu": bleu_score.score,
        "bleu_signature": str(bleu.get_signature()),
        "bleu_detail": str(bleu_score),
        "chrf": chrf_score.score,
        "chrf_signature": str(chrf.get_signature()),
        "task_metrics": metrics,  # the task's own eval: loss, accuracy, perplexity, bleu, rouge
        "decode_s": seconds,
        "examples": rows[:3],
        "predictions": str(out_dir / f"step_{step:07d}.jsonl"),
    }


def format_table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = missing_data(args.data, args.test_split)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("attn_jax").setLevel(logging.INFO)
    t0 = time.perf_counter()
    load_start = os.getloadavg()[0]
    workdir = (args.workdir or pathlib.Path(tempfile.mkdtemp(prefix="multi30k-"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # The trainer's eval and decode programs are the warm-up's: let it load them from disk.
    jax.config.update("jax_compilation_cache_dir", str(workdir / "jax_cache"))
    config = make_config(args)
    budget_s = 60.0 * args.minutes
    info = {
        "backend": jax.default_backend(),
        "device_kind": jax.devices()[0].device_kind,
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "jax_version": jax.__version__,
        "jaxlib_version": jaxlib.__version__,
        "flax_version": flax.__version__,
        "sacrebleu_version": sacrebleu.__version__,
    }
    log(f"workdir {workdir}; " + ", ".join(f"{k} {v}" for k, v in info.items()))

    try:
        log("timing warm-up: tokenizer, two length buckets, one eval batch and one decode batch")
        timing = measure(config, workdir, args)
        elapsed = time.perf_counter() - t0
        planned = plan_steps(timing, budget_s, elapsed, args.evals)
        if args.steps is None and planned < args.evals:
            raise UserError(
                f"--minutes {args.minutes:g} leaves time for {max(planned, 0)} training steps after the "
                f"warm-up ({elapsed / 60:.1f} min) and {args.evals} evals; give more minutes or --steps N."
            )
        steps = args.steps or planned
        set_schedule(config, steps, args.evals)
        log(
            f"{timing['mean_step_s']:.3f} s/step (batch {config.train.batch_size}); warm-up took "
            f"{elapsed / 60:.1f} min; {planned} steps fit into the {args.minutes:g}-minute budget"
            + ("" if args.steps is None else f"; training {steps} steps (--steps)")
        )

        start = time.perf_counter()
        train_and_evaluate(config, workdir)
        train_s = time.perf_counter() - start
        training_done = time.perf_counter() - t0
        records = read_metrics(workdir)
        history = val_history(records)
        train_lines = [r for r in records if r["split"] == "train"]
        log(f"trained {steps} steps in {train_s / 60:.1f} min; decoding {args.test_split}")
        test = evaluate_test(config, workdir, args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    total_s = time.perf_counter() - t0

    last_val = history[-1] if history else {}
    rows = [
        ("data", f"{args.data} ({SOURCE_LANG} -> {TARGET_LANG})"),
        (
            "device",
            f"{info['backend']} ({info['device_kind']}), {info['cpus_usable']} CPUs usable "
            f"of {info['cpu_count']}, load avg {load_start:.1f} -> {os.getloadavg()[0]:.1f}",
        ),
        (
            "model",
            f"transformer {config.model.num_encoder_layers}+{config.model.num_decoder_layers} layers, "
            f"width {config.model.embed_dim}, mlp {config.model.mlp_dim}, heads {config.model.num_heads}, "
            f"vocab {config.data.vocab_size}",
        ),
        (
            "measured step time",
            f"{timing['mean_step_s']:.3f} s/step at batch {config.train.batch_size} (medians on buckets "
            f"{' and '.join(timing['timed_buckets'])}, weighted by the bucket mix)",
        ),
        (
            "steps",
            f"{steps} trained ({planned} fit the {args.minutes:g}-min budget), "
            f"warm-up {config.train.warmup_steps}, eval every {config.train.eval_every}",
        ),
        ("final train loss", f"{train_lines[-1]['loss']:.3f}" if train_lines else "-"),
        ("val BLEU by step", ", ".join(f"{h['step']}: {h.get('bleu', float('nan')):.2f}" for h in history)),
        ("last val loss", f"{last_val.get('loss', float('nan')):.3f}"),
        (f"{args.test_split} BLEU", f"{test['bleu']:.2f}  ({test['bleu_signature']})"),
        (
            f"{args.test_split} chrF",
            f"{test['chrf']:.2f}  ({test['sentences']} sentences, beam "
            f"{config.decode.beam_size}, checkpoint step {test['checkpoint_step']})",
        ),
        (
            "wall time",
            f"warm-up {timing['warmup_s'] / 60:.1f} min, training {train_s / 60:.1f} min, "
            f"budget used {training_done / 60:.1f} of {args.minutes:g} min, test decoding "
            f"{test['decode_s'] / 60:.1f} min, total {total_s / 60:.1f} min",
        ),
    ]
    print()
    print(format_table(rows))
    for example in test["examples"]:
        print(
            f"\n  source:     {example['source']}\n  reference:  {example['reference']}\n"
            f"  prediction: {example['prediction']}"
        )

    out = args.out or ROOT / "benchmarks" / "results" / "multi30k.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "benchmark": "multi30k",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join([pathlib.Path(sys.executable).name, *sys.argv]),
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},  # others sharing the CPU
        **info,
        "data": str(args.data),
        "budget_minutes": args.minutes,
        "steps": steps,
        "steps_fitting_budget": planned,
        "timing": timing,
        "val": history,
        "final_train_loss": train_lines[-1]["loss"] if train_lines else None,
        "test": test,
        "wall_s": {
            "warmup": timing["warmup_s"],
            "train": train_s,
            "budgeted_part": training_done,
            "test_decode": test["decode_s"],
            "total": total_s,
        },
        "workdir": str(workdir),
        "config": config.to_dict(),
    }
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
