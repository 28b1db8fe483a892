"""Train an attention model: ``python train.py --config configs/<task>.py[:variant] --workdir DIR``.

With no ``--config`` it trains the default sentiment model on built-in generated data (no download).
Any config field can be overridden, e.g. ``--config.train.steps=2000 --config.model.num_heads=8``.
"""

import pathlib
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from attn_jax.errors import UserError
from attn_jax.train import NonFiniteLossError, train_and_evaluate

_DEFAULT_CONFIG = str(pathlib.Path(__file__).resolve().parent / "configs" / "sentiment.py")

config_flags.DEFINE_config_file("config", _DEFAULT_CONFIG, "Config file, optionally ':variant'.")
flags.DEFINE_string("workdir", "runs/default", "Directory for config.json, metrics.jsonl and checkpoints.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.INFO)
    try:
        train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir)
    except (UserError, NonFiniteLossError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main)
