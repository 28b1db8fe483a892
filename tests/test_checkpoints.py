"""Checkpointer: exact round trip (state, RNG, data position), retention, and fallback from corrupt steps."""

import logging
import os
import shutil

import flax.linen as nn
import grain
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax.training import train_state
from jax.sharding import NamedSharding, PartitionSpec

from attn_jax.errors import UserError
from attn_jax.train.checkpoints import Checkpointer, UnreadableCheckpointError


class _MLP(nn.Module):
    @nn.compact
    def __call__(self, x):
        # A logically partitioned kernel, as the trainer's models have.
        kernel_init = nn.with_logical_partitioning(nn.initializers.lecun_normal(), ("embed", "mlp"))
        x = nn.relu(nn.Dense(8, kernel_init=kernel_init)(x))
        return nn.Dense(2)(x)


def _create_state(rng):
    model = _MLP()
    params = model.init(rng, jnp.ones((1, 4)))["params"]
    return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=optax.adamw(1e-2))


@jax.jit
def _train_step(state, x):
    loss = lambda params: jnp.mean(state.apply_fn({"params": params}, x) ** 2)
    return state.apply_gradients(grads=jax.grad(loss)(state.params))


def _iterator():
    ds = grain.MapDataset.source(list(range(100))).shuffle(seed=0).repeat(None).batch(4)
    return iter(ds.to_iter_dataset())


@pytest.fixture(scope="module")
def states():
    """Train states after 1, 2 and 3 optimizer steps (distinct params and optimizer moments)."""
    mesh = jax.make_mesh((1,), ("data",))
    replicated = NamedSharding(mesh, PartitionSpec())
    state = jax.jit(_create_state, out_shardings=replicated)(jax.random.key(0))
    out = {}
    for step in (1, 2, 3):
        state = _train_step(state, jax.random.normal(jax.random.key(step), (4, 4)))
        out[step] = state
    return out


def _abstract(state):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)


def _assert_same(a, b):
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(leaves_a, leaves_b, strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.fixture(scope="module")
def _three_steps(tmp_path_factory, states):
    directory = tmp_path_factory.mktemp("three_steps")
    it = _iterator()
    with Checkpointer(directory, max_to_keep=5) as ckpt:
        for step in (1, 2, 3):
            next(it)  # one batch drawn per step
            assert ckpt.save(step, states[step], jax.random.key(10 + step), it)
    return directory


@pytest.fixture
def three_steps(_three_steps, tmp_path):
    """A fresh copy of a directory holding steps 1-3, saved with iterator positions 1-3 and RNG keys 11-13."""
    directory = tmp_path / "checkpoints"
    shutil.copytree(_three_steps, directory)
    return directory


def test_round_trip_is_exact(tmp_path, states):
    it = _iterator()
    ckpt = Checkpointer(tmp_path, max_to_keep=5)
    for step in (1, 2, 3):
        next(it)
        assert ckpt.save(step, states[step], jax.random.key(10 + step), it)
    # The save is asynchronous, but the iterator position is taken when save() returns.
    expected_batches = [next(it) for _ in range(30)]
    ckpt.close()

    fresh = _iterator()
    ckpt = Checkpointer(tmp_path, max_to_keep=5)
    assert ckpt.latest_step() == 3
    target = _abstract(states[3])
    restored = ckpt.restore_latest(target, fresh)
    assert restored.step == 3
    assert isinstance(restored.state, train_state.TrainState)
    assert int(restored.state.step) == 3
    _assert_same(restored.state, states[3])
    for got, want in zip(jax.tree.leaves(restored.state), jax.tree.leaves(target), strict=True):
        assert got.sharding == want.sharding
    assert jax.random.key_impl(restored.rng) == jax.random.key_impl(jax.random.key(13))
    np.testing.assert_array_equal(jax.random.key_data(restored.rng), jax.random.key_data(jax.random.key(13)))
    for want in expected_batches:
        np.testing.assert_array_equal(next(fresh), want)
    ckpt.close()


def test_restore_into_concrete_target_without_iterator(three_steps, states):
    with Checkpointer(three_steps, max_to_keep=5) as ckpt:
        restored = ckpt.restore_latest(states[1])  # arrays give structure and shardings
    _assert_same(restored.state, states[3])


def test_no_checkpoint_restores_none(tmp_path, states):
    with Checkpointer(tmp_path / "checkpoints", max_to_keep=2) as ckpt:
        assert ckpt.latest_step() is None
        assert ckpt.restore_latest(_abstract(states[1]), _iterator()) is None
        assert ckpt.restore_best(_abstract(states[1])) is None


def test_save_skips_steps_already_saved(tmp_path, states):
    with Checkpointer(tmp_path, max_to_keep=5) as ckpt:
        assert ckpt.save(2, states[2], jax.random.key(0))
        assert not ckpt.save(2, states[2], jax.random.key(0))
        assert not ckpt.save(1, states[1], jax.random.key(0))
        ckpt.wait_until_finished()
        assert ckpt.all_steps() == [2]


def test_keeps_the_newest(tmp_path, states):
    with Checkpointer(tmp_path, max_to_keep=2) as ckpt:
        for step in range(1, 6):
            ckpt.save(step, states[1], jax.random.key(0), _iterator())
        ckpt.wait_until_finished()
        assert ckpt.all_steps() == [4, 5]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["4", "5"]


@pytest.mark.parametrize("higher_is_better", [False, True])
def test_keeps_the_newest_and_the_best(tmp_path, states, higher_is_better):
    sign = 1.0 if higher_is_better else -1.0
    scores = {1: 0.5, 2: 0.9, 3: 0.1, 4: None, 5: 0.6}  # step 2 is best either way round
    kept_after = {1: [1], 2: [2], 3: [2, 3], 4: [2, 4], 5: [2, 5]}
    ckpt = Checkpointer(tmp_path, max_to_keep=1, best_metric="m", higher_is_better=higher_is_better)
    for step, score in scores.items():
        metrics = None if score is None else {"m": sign * score, "other": 1.0}
        assert ckpt.save(step, states[1], jax.random.key(step), metrics=metrics)
        ckpt.wait_until_finished()
        # The newest step is kept even without metrics (step 4) or with a poor score (step 3).
        assert ckpt.all_steps() == kept_after[step]
    assert ckpt.best_step() == 2
    ckpt.close()

    with Checkpointer(tmp_path, max_to_keep=1, best_metric="m", higher_is_better=higher_is_better) as ckpt:
        assert ckpt.best_step() == 2  # metrics are read back from disk
        restored = ckpt.restore_best(_abstract(states[1]))
        assert restored.step == 2
        np.testing.assert_array_equal(
            jax.random.key_data(restored.rng), jax.random.key_data(jax.random.key(2))
        )


def _delete_arrays(step_dir):
    for path in step_dir.rglob("*"):
        if path.is_file() and path.parent.name == "d":
            path.unlink()


def _truncate_all(step_dir):
    for path in step_dir.rglob("*"):
        if path.is_file():
            os.truncate(path, 0)


def _delete_iterator_state(step_dir):
    for path in (step_dir / "data_iterator").glob("process_*.json"):
        path.unlink()


# Orbax leaves reads of the broken arrays running after the failure; they complain to a closed event loop.
_IGNORE_ORBAX_LOOP_NOISE = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@_IGNORE_ORBAX_LOOP_NOISE
@pytest.mark.parametrize("corrupt", [_delete_arrays, _truncate_all, _delete_iterator_state])
def test_corrupt_newest_falls_back_loudly(three_steps, states, caplog, corrupt):
    expected_it = _iterator()
    next(expected_it), next(expected_it)  # the position saved with step 2
    corrupt(three_steps / "3")

    fresh = _iterator()
    with caplog.at_level(logging.WARNING, logger="attn_jax.train.checkpoints"):
        ckpt = Checkpointer(three_steps, max_to_keep=5)
        restored = ckpt.restore_latest(_abstract(states[3]), fresh)
    assert restored.step == 2
    _assert_same(restored.state, states[2])
    for _ in range(5):
        np.testing.assert_array_equal(next(fresh), next(expected_it))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("step 3" in w and "unreadable" in w and "Error" in w for w in warnings), warnings

    # The resumed run saves step 3 again, replacing the unreadable one.
    assert ckpt.save(3, states[3], jax.random.key(13), fresh)
    ckpt.close()
    with Checkpointer(three_steps, max_to_keep=5) as ckpt:
        _assert_same(ckpt.restore_latest(_abstract(states[3])).state, states[3])


@_IGNORE_ORBAX_LOOP_NOISE
def test_all_corrupt_is_a_user_error(three_steps, states, caplog):
    for step in (1, 2, 3):
        _delete_arrays(three_steps / str(step))
    shutil.rmtree(three_steps / "2" / "meta")
    with Checkpointer(three_steps, max_to_keep=5) as ckpt, caplog.at_level(logging.WARNING):
        with pytest.raises(UnreadableCheckpointError) as info:
            ckpt.restore_latest(_abstract(states[3]), _iterator())
    assert isinstance(info.value, UserError)
    message = str(info.value)
    assert str(three_steps) in message and "new workdir" in message and "\n" not in message
    for step in (1, 2, 3):
        assert f"step {step}:" in message
