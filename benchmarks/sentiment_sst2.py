"""SST-2 sentiment from the shared files: train on CPU within a step budget, report dev and test accuracy.

Run from the repository root (the data lives beside the checkout, in ``../shared/data/sentiment/sst2``)::

    python benchmarks/sentiment_sst2.py                      # BiLSTM + additive attention, 3000 steps
    python benchmarks/sentiment_sst2.py --model transformer --steps 3000

It trains ``configs/sentiment.py:files`` on ``train.tsv`` (67,349 phrases and sentences), picks the best
checkpoint by dev accuracy (``dev.tsv``, 872 sentences), evaluates that checkpoint on the labelled
``test.tsv`` (1,821 sentences), prints a table and writes JSON (default
``benchmarks/results/sentiment_sst2-<model>.json``) with the wall time, device and command line.
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
from configs import sentiment  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "sentiment" / "sst2"))
    p.add_argument("--model", default="bilstm", choices=["bilstm", "transformer"])
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workdir", default=None, help="keep the run here (default: a temporary folder)")
    p.add_argument("--out", default=None)
    return p.parse_args()


def main() -> None:
    args = parse_args()
    if not pathlib.Path(args.data).is_dir():
        sys.exit(f"error: no SST-2 folder at {args.data}; pass --data PATH (train.tsv, dev.tsv, test.tsv).")
    config = sentiment.get_config("files")
    config.data.source = f"files:{args.data}"
    config.model.name = args.model
    config.train.update(steps=args.steps, batch_size=args.batch_size, eval_every=max(args.steps // 6, 1))
    config.train.checkpoint_every = config.train.eval_every
    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="sst2-"))

    start = time.perf_counter()
    train_and_evaluate(config, workdir)
    train_seconds = time.perf_counter() - start
    dev = evaluate_checkpoint(config, workdir)  # the best checkpoint by dev accuracy
    config.data.eval_split = "test"
    test = evaluate_checkpoint(config, workdir)

    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "device": f"{jax.default_backend()} x{jax.device_count()} ({jax.devices()[0].device_kind})",
        "model": args.model,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "train_seconds": round(train_seconds, 1),
        "dev_accuracy": dev["accuracy"],
        "test_accuracy": test["accuracy"],
    }
    print(f"{'model':<12} {'steps':>6} {'train min':>10} {'dev acc':>8} {'test acc':>9}")
    print(f"{args.model:<12} {args.steps:>6} {train_seconds / 60:>10.1f} {dev['accuracy']:>8.4f} "
          f"{test['accuracy']:>9.4f}")
    out = pathlib.Path(args.out or ROOT / "benchmarks" / "results" / f"sentiment_sst2-{args.model}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
