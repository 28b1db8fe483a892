"""Train an attention model: ``python train.py --config configs/<task>.py[:variant] --workdir DIR``.

With no ``--config`` it trains the default sentiment model on built-in generated data (no download).
Any config field can be overridden, e.g. ``--config.train.steps=2000 --config.model.num_heads=8``.
``--mode=train`` resumes from the newest checkpoint in the workdir; ``--mode=eval`` evaluates the best
checkpoint; ``--mode=predict --input "some text"`` prints a prediction and what the model attended to.
"""

import pathlib
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from attn_jax.errors import UserError
from attn_jax.train import NonFiniteLossError, distributed, evaluate_checkpoint, predict, train_and_evaluate

_DEFAULT_CONFIG = str(pathlib.Path(__file__).resolve().parent / "configs" / "sentiment.py")

config_flags.DEFINE_config_file("config", _DEFAULT_CONFIG, "Config file, optionally ':variant'.")
flags.DEFINE_string("workdir", "runs/default", "Directory for config.json, metrics.jsonl and checkpoints.")
flags.DEFINE_enum("mode", "train", ["train", "eval", "predict"], "What to do with the workdir.")
flags.DEFINE_string("input", None, "Text to classify with --mode=predict.")
flags.DEFINE_string("coordinator_address", None, "Multi-process run: host:port of process 0.")
flags.DEFINE_integer("num_processes", None, "Multi-process run: number of processes.")
flags.DEFINE_integer("process_id", None, "Multi-process run: this process's index.")
flags.DEFINE_bool("multihost", False, "Join a multi-host run detected from the cluster (TPU pod, SLURM).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.INFO)
    config, workdir, mode = flags.FLAGS.config, flags.FLAGS.workdir, flags.FLAGS.mode
    distributed.initialize(
        flags.FLAGS.coordinator_address, flags.FLAGS.num_processes, flags.FLAGS.process_id,
        auto=flags.FLAGS.multihost,
    )
    try:
        if mode == "train":
            train_and_evaluate(config, workdir)
        elif mode == "eval":
            metrics = evaluate_checkpoint(config, workdir)
            print(" ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))
        else:
            if not flags.FLAGS.input:
                raise UserError('--mode=predict needs --input "text to classify".')
            print(predict(config, workdir, flags.FLAGS.input))
    except (UserError, NonFiniteLossError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main)
