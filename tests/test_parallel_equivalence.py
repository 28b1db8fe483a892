"""Every way of spreading a step over devices gives the single-device loss curve.

Each configuration trains 20 steps in a subprocess with four forced host devices (or one, for the
reference), without dropout, and the per-step training losses are compared.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]

PROGRAM = r"""
import json, sys, tempfile
from attn_jax.train import train_and_evaluate
from configs import sentiment

results = {}
for name, overrides in json.loads(sys.argv[1]).items():
    config = sentiment.get_config("tiny")
    config.data.train_size, config.data.eval_size = 512, 32
    config.model.update(num_layers=1, embed_dim=32, mlp_dim=64, pooling_units=32, dropout_rate=0.0)
    config.train.update(batch_size=16, steps=20, log_every=1, eval_every=20, warmup_steps=5)
    for key, value in overrides.items():
        section, _, field = key.rpartition(".")
        (config[section] if section else config)[field] = value
    with tempfile.TemporaryDirectory() as workdir:
        train_and_evaluate(config, workdir)
        lines = [json.loads(l) for l in open(f"{workdir}/metrics.jsonl")]
    results[name] = [l["loss"] for l in lines if l["split"] == "train"]
print("RESULTS" + json.dumps(results))
"""

SHARDED = {
    "data=4": {"mesh.data": 4},
    "data=2,fsdp=2": {"mesh.data": 2, "mesh.fsdp": 2},
    "data=2,tensor=2": {"mesh.data": 2, "mesh.tensor": 2},
    "pmap": {"parallelism": "pmap"},
}


def _run(configs: dict, devices: int) -> dict[str, list[float]]:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, json.dumps(configs)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULTS"))
    return json.loads(line[len("RESULTS"):])


def test_sharded_and_pmap_losses_match_single_device():
    reference = _run({"single": {"mesh.data": 1}}, devices=1)["single"]
    assert len(reference) == 20 and np.all(np.isfinite(reference)) and len(set(reference)) > 1
    for name, losses in _run(SHARDED, devices=4).items():
        np.testing.assert_allclose(losses, reference, rtol=1e-5, err_msg=name)
