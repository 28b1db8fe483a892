"""Summarization with a pointer-generator network and coverage (See et al., 2017).

Variants (``--config configs/summarization.py:VARIANT``):
  tiny           builtin:summarization, generated news stories whose headlines copy rare names and
                 numbers; no download. Run:
                   python train.py --config configs/summarization.py:tiny --workdir runs/summarization
                 Expected: eval ROUGE-L 99.8 at step 150 and 99.9 at step 300 (a few CPU minutes).
                 Without copying (--config.model.copy=False) a model of this kind stays near 62: it
                 writes <unk> where the names and numbers should be.
  aeslc          e-mail body -> subject line, from JSONL files (fields email / subject), e.g.
                   python train.py --config configs/summarization.py:aeslc \\
                     --config.data.source=files:../shared/data/summarization/aeslc --workdir runs/aeslc
                 (or --config.data.source=tfds:aeslc with TFDS prepared). Expected (python
                 benchmarks/aeslc.py, 18 CPU minutes of training on 2 cores): dev ROUGE-1/2/L
                 23.3 / 8.1 / 22.9; published test figures of a pointer-generator-class model are
                 23.7 / 10.3 / 23.4.
  cnn_dailymail  tfds:cnn_dailymail article -> highlights, the paper's setting (400 / 100 words, 50k
                 vocabulary, hidden 256); needs TFDS prepared on a machine with network access.
"""

import ml_collections


def get_config(variant: str = "tiny") -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.task = "summarization"
    config.dtype = "float32"  # computation dtype; parameters stay float32
    config.parallelism = "jit"

    config.data = ml_collections.ConfigDict()
    config.data.source = "builtin:summarization"  # builtin:summarization | files:PATH | tfds:NAME
    config.data.source_field = ml_collections.config_dict.placeholder(str)  # None: a common field name
    config.data.target_field = ml_collections.config_dict.placeholder(str)
    config.data.eval_split = "validation"
    config.data.vocab_size = 2000  # words, incl. <pad> <unk> <s> </s>; the rest are copied or <unk>
    config.data.max_source_len = 128  # words incl. EOS; longer sources are truncated
    config.data.max_target_len = 20  # longer training targets are dropped
    # Training batches group documents of similar length (one compiled step per bucket); () for none.
    config.data.bucket_boundaries = (64, 96)
    config.data.tfds_data_dir = ml_collections.config_dict.placeholder(str)
    config.data.train_size = ml_collections.config_dict.placeholder(int)  # None: the whole split
    config.data.eval_size = ml_collections.config_dict.placeholder(int)

    config.model = ml_collections.ConfigDict()
    config.model.name = "pointer_generator"
    config.model.embed_dim = 64
    config.model.hidden_dim = 128
    config.model.attention_units = ml_collections.config_dict.placeholder(int)  # None: 2 * hidden_dim
    config.model.max_oovs = 32  # per-example out-of-vocabulary source words that can be copied
    config.model.copy = True  # False: no pointer, the ablation that shows what copying buys
    config.model.coverage = True  # feed the coverage vector to the attention (Tu et al., 2016)
    config.model.coverage_loss_weight = 1.0  # lambda of See et al., eq. 13
    config.model.dropout_rate = 0.0

    config.train = ml_collections.ConfigDict()
    config.train.steps = 300
    config.train.batch_size = 32
    config.train.learning_rate = 2e-3
    config.train.warmup_steps = 50
    config.train.schedule = "cosine"
    config.train.weight_decay = 0.0
    config.train.grad_clip_norm = 2.0
    config.train.grad_accum_steps = 1
    config.train.label_smoothing = 0.0  # no mass on the copy slots an example does not use
    config.train.log_every = 50
    config.train.eval_every = 150
    config.train.checkpoint_every = 150
    config.train.keep_checkpoints = 3  # newest kept, plus the best by eval ROUGE-L

    config.decode = ml_collections.ConfigDict()
    config.decode.beam_size = 4  # 1: greedy
    config.decode.alpha = 0.0  # no length penalty: headlines are short
    config.decode.max_len = 20
    config.decode.batch_size = 64
    config.decode.num_examples = 300  # eval pairs decoded and scored at each eval (None: all)

    config.mesh = ml_collections.ConfigDict()
    config.mesh.data = -1  # all remaining devices
    config.mesh.fsdp = 1
    config.mesh.tensor = 1
    # Logical parameter axes -> mesh axes (None: replicated).
    config.sharding_rules = (("embed", "fsdp"), ("vocab", "tensor"))

    if variant == "tiny":
        return config
    config.decode.num_examples = None
    if variant == "aeslc":
        # 3.5 epochs of the 14k e-mails: 18 minutes on an idle 2-core CPU (benchmarks/aeslc.py).
        config.data.source = "files:"  # give the path: --config.data.source=files:PATH
        config.data.eval_split = "dev"
        config.data.vocab_size = 10_000
        config.data.max_source_len = 160
        config.data.max_target_len = 16
        config.data.bucket_boundaries = (48, 96)
        config.model.embed_dim = 96
        config.model.hidden_dim = 128
        config.model.dropout_rate = 0.2
        config.train.steps = 1600
        config.train.learning_rate = 2e-3
        config.train.warmup_steps = 100
        config.train.eval_every = 800
        config.train.checkpoint_every = 800
        config.decode.max_len = 16
        config.decode.alpha = 0.6
        config.decode.num_examples = 500  # dev e-mails decoded at each eval; the benchmark decodes all
        return config
    if variant == "cnn_dailymail":
        config.data.source = "tfds:cnn_dailymail"
        config.data.eval_split = "validation"
        config.data.vocab_size = 50_000
        config.data.max_source_len = 400
        config.data.max_target_len = 100
        config.data.bucket_boundaries = ()
        config.model.embed_dim = 128
        config.model.hidden_dim = 256
        config.model.max_oovs = 200
        config.train.batch_size = 16
        config.train.steps = 230_000
        config.train.learning_rate = 1e-3
        config.train.warmup_steps = 2000
        config.train.eval_every = 10_000
        config.train.checkpoint_every = 5000
        config.decode.max_len = 120
        config.decode.alpha = 1.0
        return config
    raise ValueError(f"Unknown summarization config variant {variant!r}; valid: tiny, aeslc, cnn_dailymail.")
