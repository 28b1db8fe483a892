"""The built-in tiny config learns: held-out accuracy clears a threshold within a bounded run."""

import pytest

from attn_jax.train import train_and_evaluate
from configs import sentiment


@pytest.mark.slow
def test_sentiment_tiny_reaches_90_percent(tmp_path):
    config = sentiment.get_config("tiny")  # 600 steps: about 1 minute on 2 CPU cores
    final = train_and_evaluate(config, tmp_path)
    # Held-out generated reviews; a bag-of-words model gets 0.62 on them.
    assert final["accuracy"] >= 0.90, final
