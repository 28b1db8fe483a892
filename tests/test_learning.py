"""The built-in tiny config learns: held-out accuracy clears a threshold within a bounded run."""

import pytest

from attn_jax.train import train_and_evaluate
from configs import sentiment, translation


@pytest.mark.slow
def test_sentiment_tiny_reaches_90_percent(tmp_path):
    config = sentiment.get_config("tiny")  # 600 steps: about 1 minute on 2 CPU cores
    final = train_and_evaluate(config, tmp_path)
    # Held-out generated reviews; a bag-of-words model gets 0.62 on them.
    assert final["accuracy"] >= 0.90, final


@pytest.mark.slow
def test_translation_tiny_transformer_reaches_bleu_90(tmp_path):
    config = translation.get_config("tiny")  # 1000 steps: about 4 minutes on 2 CPU cores
    config.train.eval_every = config.train.steps  # one eval, at the end
    final = train_and_evaluate(config, tmp_path)
    # Beam-search BLEU on 500 held-out generated sentences that need reordering and agreement.
    assert final["bleu"] >= 90.0, final


@pytest.mark.slow
def test_translation_rnn_bahdanau_reaches_bleu_80_and_beats_no_attention(tmp_path):
    """What attention buys (Bahdanau et al., 2015): the same GRU encoder-decoder without it has to squeeze
    each sentence into one vector."""
    finals = {}
    for attention in ("bahdanau", "none"):
        config = translation.get_config("rnn_tiny")  # 500 steps: about a minute on 2 CPU cores
        config.model.attention = attention
        config.train.eval_every = config.train.steps
        finals[attention] = train_and_evaluate(config, tmp_path / attention)
    assert finals["bahdanau"]["bleu"] >= 80.0, finals
    assert finals["bahdanau"]["bleu"] > finals["none"]["bleu"] + 5.0, finals
