"""Data sources: TFDS, local files, built-in generated sets, tokenizers and Grain pipelines."""
