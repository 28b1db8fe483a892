"""Translation: a Transformer encoder-decoder, or an RNN sequence-to-sequence model with a chosen attention.

Variants (``--config configs/translation.py:VARIANT``):
  tiny      Transformer (2+2 layers, width 128) on builtin:translation, a generated language pair that
            needs reordering, agreement and context-dependent word choice; no download. Run:
              python train.py --config configs/translation.py:tiny --workdir runs/translation
            Expected: eval BLEU about 77 at step 500 and 92 at step 1000 (about 4 minutes on 2 CPU cores).
  rnn_tiny  the same data, an RNN encoder-decoder; pick its attention with --config.model.attention=
            (bahdanau, luong_dot, luong_general, luong_concat, local_m, local_p, location, hard, none):
              python train.py --config configs/translation.py:rnn_tiny \\
                --config.model.attention=luong_general --workdir runs/translation_rnn
            Expected with bahdanau (bidirectional GRU encoder, GRU decoder, 500 steps, about 3 minutes):
            eval BLEU about 84; with none, far lower.
  multi30k  English -> German on line-aligned files (Multi30k: train / val / test_2016_flickr), e.g.
              python train.py --config configs/translation.py:multi30k \\
                --config.data.source=files:../shared/data/translation/multi30k --workdir runs/multi30k
            Expected (3400 steps, about 51 minutes on an idle 2-core CPU): val BLEU about 37;
            benchmarks/multi30k.py, which decodes test_2016_flickr, measured SacreBLEU 36.8 there.
  wmt14     tfds:wmt14_translate/de-en, English -> German, Transformer base-like.
  wmt17     tfds:wmt17_translate/de-en, English -> German, Transformer base-like.
wmt14 and wmt17 need TFDS prepared on a machine with network (tfds build ... --file_format array_record).
"""

import ml_collections


def get_config(variant: str = "tiny") -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.task = "translation"
    config.dtype = "float32"  # computation dtype; parameters stay float32
    config.parallelism = "jit"

    config.data = ml_collections.ConfigDict()
    config.data.source = "builtin:translation"  # builtin:translation | files:DIR | tfds:NAME
    config.data.source_lang = "en"
    config.data.target_lang = "de"
    config.data.eval_split = "validation"
    config.data.vocab_size = 1000  # shared source/target SentencePiece vocabulary (an upper bound)
    config.data.spm_sentences = ml_collections.config_dict.placeholder(int)  # None: every training text
    config.data.max_source_len = 48  # tokens incl. EOS; longer training pairs are dropped
    config.data.max_target_len = 48
    # Training batches group sentences of similar length (one compiled step per bucket); () for none.
    config.data.bucket_boundaries = (16, 24, 32)
    config.data.tfds_data_dir = ml_collections.config_dict.placeholder(str)
    config.data.train_size = ml_collections.config_dict.placeholder(int)  # None: the whole split
    config.data.eval_size = ml_collections.config_dict.placeholder(int)

    config.model = ml_collections.ConfigDict()
    config.model.name = "transformer"
    config.model.embed_dim = 128
    config.model.num_encoder_layers = 2
    config.model.num_decoder_layers = 2
    config.model.num_heads = 4
    config.model.num_kv_heads = ml_collections.config_dict.placeholder(int)  # None: num_heads
    config.model.mlp_dim = 256
    config.model.dropout_rate = 0.1
    config.model.position = "sinusoidal"  # sinusoidal | rotary
    config.model.share_embeddings = True
    config.model.tie_output = True
    config.model.scan_layers = False  # nn.scan over layers: one compiled layer
    config.model.remat = "none"  # none | full | dots | dots_with_no_batch_dims
    config.model.implementation = ml_collections.config_dict.placeholder(str)  # None: fastest valid kernel
    # rnn: bidirectional encoder + attentional decoder (rnn_tiny).
    config.model.cell = "lstm"  # lstm | gru
    config.model.hidden_dim = 128
    config.model.attention = "bahdanau"  # bahdanau | luong_dot | luong_general | luong_concat | local_m |
    #                                      local_p | location | hard | none
    config.model.attention_units = 128
    config.model.window = 8  # local_m / local_p half-width
    config.model.hard_reward = "likelihood"  # likelihood | token_likelihood | bleu (REINFORCE reward)
    config.model.hard_reward_weight = 1.0
    config.model.hard_entropy_weight = 0.0

    config.train = ml_collections.ConfigDict()
    config.train.steps = 1500
    config.train.batch_size = 64
    config.train.learning_rate = 2e-3
    config.train.warmup_steps = 100
    config.train.schedule = "cosine"
    config.train.weight_decay = 0.01
    config.train.grad_clip_norm = 1.0
    config.train.grad_accum_steps = 1
    config.train.label_smoothing = 0.1
    config.train.log_every = 50
    config.train.eval_every = 500
    config.train.checkpoint_every = 500
    config.train.keep_checkpoints = 3  # newest kept, plus the best by eval BLEU

    config.decode = ml_collections.ConfigDict()
    config.decode.beam_size = 4  # 1: greedy
    config.decode.alpha = 0.6  # length penalty ((5 + len) / 6) ** alpha (Wu et al., 2016)
    config.decode.max_len = 48
    config.decode.batch_size = 64
    config.decode.num_examples = 500  # eval pairs decoded and scored at each eval (None: all)

    config.mesh = ml_collections.ConfigDict()
    config.mesh.data = -1  # all remaining devices
    config.mesh.fsdp = 1
    config.mesh.tensor = 1
    # Logical parameter axes -> mesh axes (None: replicated).
    config.sharding_rules = (
        ("embed", "fsdp"),
        ("mlp", "tensor"),
        ("heads", "tensor"),
        ("kv_heads", "tensor"),
        ("head_dim", None),
        ("vocab", "tensor"),
        ("layers", None),
    )

    if variant in ("tiny", "rnn_tiny"):
        # 1.6 epochs of 40k generated pairs: no dropout needed.
        config.model.dropout_rate = 0.0
        config.train.steps = 1000
    if variant == "tiny":
        return config
    if variant == "rnn_tiny":
        config.model.name = "rnn"
        config.model.cell = "gru"
        config.model.embed_dim = 64
        config.train.steps = 500
        config.train.learning_rate = 3e-3
        return config
    config.data.max_source_len = 64
    config.data.max_target_len = 64
    config.decode.max_len = 80
    config.decode.num_examples = None
    if variant == "multi30k":
        # Sized for about 55 minutes of training on a 2-core CPU (benchmarks/multi30k.py): 3+3 layers of
        # width 256 with a narrow MLP (Trevett's small Multi30k Transformer), light dropout for a run of a
        # few epochs, and fine length buckets (about 11% padding instead of 23%).
        config.data.source = "files:"  # give the path: --config.data.source=files:DIR
        config.data.vocab_size = 8000
        config.data.bucket_boundaries = (12, 16, 20, 24, 32, 40)
        config.model.embed_dim = 256
        config.model.num_encoder_layers = 3
        config.model.num_decoder_layers = 3
        config.model.mlp_dim = 512
        config.model.dropout_rate = 0.1
        config.train.steps = 3400
        config.train.learning_rate = 2e-3
        config.train.warmup_steps = 340
        config.train.eval_every = 850
        config.train.checkpoint_every = 850
        config.decode.num_examples = 256  # val pairs decoded at each eval (beam search is the slow part)
        return config
    if variant in ("wmt14", "wmt17"):
        config.data.source = f"tfds:{variant}_translate/de-en"
        config.data.vocab_size = 32000
        config.data.spm_sentences = 2_000_000
        config.data.max_source_len = 128
        config.data.max_target_len = 128
        config.decode.max_len = 160
        config.model.embed_dim = 512
        config.model.num_encoder_layers = 6
        config.model.num_decoder_layers = 6
        config.model.num_heads = 8
        config.model.mlp_dim = 2048
        config.model.scan_layers = True
        config.model.remat = "dots_with_no_batch_dims"
        config.dtype = "bfloat16"
        config.train.batch_size = 256
        config.train.steps = 100_000
        config.train.learning_rate = 1e-3
        config.train.warmup_steps = 4000
        config.train.schedule = "rsqrt"
        config.train.eval_every = 5000
        config.train.checkpoint_every = 5000
        config.train.log_every = 200
        return config
    raise ValueError(
        f"Unknown translation config variant {variant!r}; valid: tiny, rnn_tiny, multi30k, wmt14, wmt17."
    )
