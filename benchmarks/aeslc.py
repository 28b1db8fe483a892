"""AESLC e-mail subject lines with the pointer-generator: train on CPU within a step budget, report dev ROUGE.

Run from the repository root (the data lives beside the checkout, in ``../shared/data/summarization/aeslc``)::

    python benchmarks/aeslc.py                       # configs/summarization.py:aeslc, its step budget
    python benchmarks/aeslc.py --steps 300 --out /tmp/aeslc.json      # a quick check that it runs

It trains ``configs/summarization.py:aeslc`` on ``train.jsonl`` (14,436 e-mails, field ``email`` ->
``subject``), keeps the best checkpoint by dev ROUGE-L, decodes the whole dev set (1,960 e-mails) with
beam search from that checkpoint, prints ROUGE-1/2/L F1 (rouge-score, stemmed) and writes JSON (default
``benchmarks/results/aeslc.json``) with the wall time, device and command line. Zhang & Tetreault
(2019) report 23.7 / 10.3 / 23.4 on the test set for their best model (a pointer-generator-class model
with an annotation-based extractor); the test split is not in the shared data, so this reports dev.
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import sys
import tempfile
import time

import jax

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attn_jax.train import evaluate_checkpoint, train_and_evaluate  # noqa: E402
from configs import summarization  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "summarization" / "aeslc"))
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the config's)")
    p.add_argument("--copy", default="yes", choices=["yes", "no"], help="no: the ablation without a pointer")
    p.add_argument("--workdir", default=None, help="keep the run here (default: a temporary folder)")
    p.add_argument("--out", default=None)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    data = pathlib.Path(args.data)
    if not (data / "train.jsonl").is_file() or not (data / "dev.jsonl").is_file():
        print(f"error: no AESLC train.jsonl/dev.jsonl in {data}; pass --data PATH.", file=sys.stderr)
        sys.exit(2)
    config = summarization.get_config("aeslc")
    config.data.source = f"files:{data}"
    config.model.copy = args.copy == "yes"
    if args.steps is not None:
        config.train.update(steps=args.steps, eval_every=args.steps, checkpoint_every=args.steps)
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="aeslc-"))

    start = time.perf_counter()
    train_and_evaluate(config, workdir)
    train_seconds = time.perf_counter() - start
    # A run stopped early (SIGTERM saves and stops) reports the steps it really trained.
    trained = max(json.loads(line)["step"] for line in (workdir / "metrics.jsonl").open())
    config.decode.num_examples = None  # all of dev
    dev = evaluate_checkpoint(config, workdir)  # the best checkpoint by dev ROUGE-L

    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "device": f"{jax.default_backend()} x{jax.device_count()} ({jax.devices()[0].device_kind})",
        "copy": config.model.copy,
        "steps": trained,
        "planned_steps": config.train.steps,
        "batch_size": config.train.batch_size,
        "train_seconds": round(train_seconds, 1),
        "dev": {k: round(dev[k], 2) for k in ("rouge1", "rouge2", "rougeL", "bleu", "accuracy")},
    }
    print(f"{'copy':<5} {'steps':>6} {'train min':>10} {'R-1':>6} {'R-2':>6} {'R-L':>6}")
    print(f"{args.copy:<5} {trained:>6} {train_seconds / 60:>10.1f} {dev['rouge1']:>6.2f} "
          f"{dev['rouge2']:>6.2f} {dev['rougeL']:>6.2f}")  # fmt: skip
    out = pathlib.Path(args.out or ROOT / "benchmarks" / "results" / "aeslc.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
