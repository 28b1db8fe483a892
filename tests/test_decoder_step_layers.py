"""The decoder-step ("classic") attention modules against the formulas of their papers.

Additive (Bahdanau et al., 2015), Luong dot/general/concat and local-m/local-p (Luong et al., 2015),
location-aware (Chorowski et al., 2015), coverage (See et al., 2017) and hard attention (Xu et al., 2015).
Each numpy reference below is written from the paper's formula and uses the module's own parameters.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attn_jax.layers.additive import AdditiveAttention
from attn_jax.layers.coverage import CoverageAttention
from attn_jax.layers.hard import HardAttention, HardAttentionOutput
from attn_jax.layers.local import LocalAttention
from attn_jax.layers.location_aware import LocationAwareAttention
from attn_jax.layers.luong import LuongAttention

BATCH, KV_LEN, Q_FEATURES, FEATURES, UNITS, HALF_WIDTH = 2, 7, 6, 5, 8, 2
LENGTHS = np.array([7, 4])  # real source positions per example
STEPS = np.array([1, 5])  # decoder steps (local-m)


# --- numpy references, one formula each ---------------------------------------------------------------


def np_softmax(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Softmax over the allowed positions; zeros elsewhere and for rows with nothing allowed."""
    x = np.where(allowed, logits, -np.finfo(np.float64).max)
    e = np.exp(x - x.max(-1, keepdims=True)) * allowed
    total = e.sum(-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def np_additive(q, m, w_q, w_m, v, extra=0.0):
    """v^T tanh(W q + U h_j + extra_j): q [B, dq], m [B, S, f] -> [B, S]."""
    return np.tanh((q @ w_q)[:, None, :] + m @ w_m + extra) @ v


def np_correlate_same(x: np.ndarray, filters: np.ndarray) -> np.ndarray:
    """'SAME' 1-D cross-correlation of x [S] with filters [width, C] -> [S, C]."""
    width = filters.shape[0]
    left = (width - 1) // 2
    padded = np.pad(x, (left, width - 1 - left))
    return np.stack([padded[j : j + width] @ filters for j in range(x.shape[0])])


def ref_additive(p, q, m, allowed, **_):
    e = np_additive(q, m, p["query_proj"]["kernel"], p["memory_proj"]["kernel"], p["v"])
    return np_softmax(e, allowed)


def ref_dot(p, q, m, allowed, **_):
    return np_softmax(np.einsum("bd,bsd->bs", q, m), allowed)


def ref_general(p, q, m, allowed, **_):
    w_a = p["memory_proj"]["kernel"].T  # score = h_t^T W_a h_s with W_a [units = q_features, features]
    return np_softmax(np.einsum("bd,de,bse->bs", q, w_a, m), allowed)


def ref_location(p, q, m, allowed, state, **_):
    f = np.stack([np_correlate_same(a, p["location_filters"]) for a in state])  # [B, S, k]
    extra = p["memory_proj"]["bias"] + f @ p["location_proj"]["kernel"]
    e = np_additive(q, m, p["query_proj"]["kernel"], p["memory_proj"]["kernel"], p["v"], extra)
    return np_softmax(e, allowed)


def ref_coverage(p, q, m, allowed, state, **_):
    extra = p["memory_proj"]["bias"] + state[..., None] * p["coverage_weight"]
    e = np_additive(q, m, p["query_proj"]["kernel"], p["memory_proj"]["kernel"], p["v"], extra)
    return np_softmax(e, allowed)


def ref_local_m(p, q, m, allowed, step, **_):
    center = np.clip(step, 0, allowed.sum(-1) - 1)  # p_t = t inside the source
    window = np.abs(np.arange(KV_LEN) - center[:, None]) <= HALF_WIDTH
    return ref_additive(p, q, m, allowed & window)


def ref_local_p(p, q, m, allowed, **_):
    source_length = allowed.sum(-1)
    logit = np.tanh(q @ p["position_proj"]["kernel"]) @ p["position_v"]
    center = source_length / (1.0 + np.exp(-logit))  # p_t = S sigmoid(v_p^T tanh(W_p h_t))
    s = np.arange(KV_LEN)
    window = np.abs(s - center[:, None]) <= HALF_WIDTH
    sigma = HALF_WIDTH / 2
    return ref_general(p, q, m, allowed & window) * np.exp(-((s - center[:, None]) ** 2) / (2 * sigma**2))


# --- the cases ----------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    make: Callable[..., nn.Module]  # module fields -> module
    reference: Callable[..., np.ndarray]  # (params, q, m, allowed, state=, step=) -> weights
    q_features: int = Q_FEATURES
    state: bool = False  # takes a [batch..., kv_len] state: previous weights or coverage
    step: bool = False  # takes step= (local-m)
    hard: bool = False


CASES = {
    "additive": Case(functools.partial(AdditiveAttention, units=UNITS), ref_additive),
    "luong_dot": Case(functools.partial(LuongAttention, score="dot"), ref_dot, q_features=FEATURES),
    "luong_general": Case(functools.partial(LuongAttention, score="general", units=Q_FEATURES), ref_general),
    "luong_concat": Case(functools.partial(LuongAttention, score="concat", units=UNITS), ref_additive),
    "local_m": Case(
        functools.partial(
            LocalAttention, mode="monotonic", score="concat", units=UNITS, half_width=HALF_WIDTH
        ),
        ref_local_m,
        step=True,
    ),
    "local_p": Case(
        functools.partial(
            LocalAttention, mode="predictive", score="general", units=Q_FEATURES, half_width=HALF_WIDTH
        ),
        ref_local_p,
    ),
    "location_aware": Case(
        functools.partial(LocationAwareAttention, units=UNITS, num_filters=3, filter_width=5),
        ref_location,
        state=True,
    ),
    "coverage": Case(functools.partial(CoverageAttention, units=UNITS), ref_coverage, state=True),
    "hard": Case(functools.partial(HardAttention, units=UNITS, deterministic=True), ref_additive, hard=True),
}


def inputs(case: Case, batch_shape=(BATCH,), dtype=jnp.float32, seed: int = 0) -> dict[str, Any]:
    """Random query, memory, padding mask, state and step for a case, with leading dims batch_shape."""
    rng = np.random.default_rng(seed)
    per_example = (BATCH,) + (1,) * (len(batch_shape) - 1)  # LENGTHS and STEPS along the first axis
    lengths = np.broadcast_to(LENGTHS.reshape(per_example), batch_shape)
    state = rng.dirichlet(np.ones(KV_LEN), size=batch_shape).astype(np.float32)
    return {
        "query": jnp.asarray(rng.normal(size=(*batch_shape, case.q_features)), dtype),
        "memory": jnp.asarray(rng.normal(size=(*batch_shape, KV_LEN, FEATURES)), dtype),
        "mask": jnp.asarray(np.arange(KV_LEN) < lengths[..., None]),
        "state": jnp.asarray(state) if case.state else None,
        "step": jnp.asarray(np.broadcast_to(STEPS.reshape(per_example), batch_shape)) if case.step else None,
    }


@functools.partial(jax.jit, static_argnums=(0, 1), static_argnames=("method", "mutable"))
def call(case: Case, module: nn.Module, variables, x: dict[str, Any], method=None, **kwargs):
    """Run a case's module on inputs x (jitted) -> (context, weights, rest), or a method's output.

    ``rest`` is the collections dict when ``mutable`` is given, else the outputs beyond the first two.
    """
    args = (x["query"], x["memory"]) + ((x["state"],) if case.state else ()) + (x["mask"],)
    if case.step:
        kwargs["step"] = x["step"]
    out = module.apply(variables, *args, method=method, **kwargs)
    if method is not None:
        return out
    if "mutable" in kwargs:
        out, collections = out
        return (*unpack(out)[:2], collections)
    return unpack(out)


def unpack(out) -> tuple:
    if isinstance(out, HardAttentionOutput):
        return out.context, out.weights, out
    return out[0], out[1], out[2:]


@functools.cache
def init(name: str) -> tuple[nn.Module, Any]:
    """The case's module and parameters: shapes from the module's own init, values random normal.

    (Drawing the values with numpy avoids compiling every initialiser; the modules' real initialisers
    run in the nn.scan and hard-attention tests.)
    """
    case = CASES[name]
    module = case.make()
    x = inputs(case)
    args = (x["query"], x["memory"]) + ((x["state"],) if case.state else ()) + (x["mask"],)
    kwargs = {"step": x["step"]} if case.step else {}
    shapes = jax.eval_shape(functools.partial(module.init, **kwargs), jax.random.key(1), *args)
    rng = np.random.default_rng(sum(map(ord, name)))
    return module, jax.tree.map(lambda s: jnp.asarray(0.5 * rng.normal(size=s.shape), s.dtype), shapes)


def np_params(variables) -> dict:
    return jax.tree.map(lambda a: np.asarray(a, np.float64), variables["params"]) if variables else {}


names = pytest.mark.parametrize("name", list(CASES))


# --- tests --------------------------------------------------------------------------------------------


@names
def test_matches_paper_formula_with_module_params(name):
    case = CASES[name]
    module, variables = init(name)
    x = inputs(case, seed=2)
    context, weights, extra = call(case, module, variables, x)
    q, m = np.asarray(x["query"], np.float64), np.asarray(x["memory"], np.float64)
    allowed = np.asarray(x["mask"])
    state = None if x["state"] is None else np.asarray(x["state"], np.float64)
    step = None if x["step"] is None else np.asarray(x["step"])
    expected = case.reference(np_params(variables), q, m, allowed, state=state, step=step)
    assert weights.dtype == jnp.float32 and weights.shape == (BATCH, KV_LEN)
    np.testing.assert_allclose(weights, expected, rtol=2e-5, atol=1e-6)
    assert np.all(np.asarray(weights)[~allowed] == 0.0)
    if case.hard:
        index = np.argmax(expected, -1)
        np.testing.assert_allclose(context, m[np.arange(BATCH), index], rtol=1e-6)
    else:
        np.testing.assert_allclose(context, np.einsum("bs,bsf->bf", expected, m), rtol=2e-5, atol=1e-6)
    if name == "coverage":
        np.testing.assert_allclose(extra[0], state + expected, rtol=2e-5, atol=1e-6)


def test_local_m_window_is_centred_on_step():
    case = CASES["local_m"]
    module, variables = init("local_m")
    x = inputs(case)
    _, weights, _ = call(case, module, variables, x)
    # Example 0: step 1 -> window {0..3}; example 1: step 5 clipped to its last real position 3 -> {1..3}.
    support = np.asarray(weights) > 0
    np.testing.assert_array_equal(support[0], np.arange(KV_LEN) <= 3)
    np.testing.assert_array_equal(support[1], (np.arange(KV_LEN) >= 1) & (np.arange(KV_LEN) <= 3))
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    center = call(case, module, variables, x, method="aligned_position")
    np.testing.assert_array_equal(center, [1.0, 3.0])


def test_local_p_is_windowed_softmax_times_gaussian_at_predicted_position():
    case = CASES["local_p"]
    module, variables = init("local_p")
    x = inputs(case, seed=5)
    _, weights, _ = call(case, module, variables, x)
    center = call(case, module, variables, x, method="aligned_position")
    assert np.all((center >= 0) & (center <= LENGTHS))
    s = np.arange(KV_LEN)
    window = (np.abs(s - np.asarray(center)[:, None]) <= HALF_WIDTH) & np.asarray(x["mask"])
    keys = module.apply(variables, x["memory"], method="project_memory")
    logits = np.einsum("bd,bsd->bs", np.asarray(x["query"]), np.asarray(keys))
    gauss = np.exp(-((s - np.asarray(center)[:, None]) ** 2) / (2 * (HALF_WIDTH / 2) ** 2))
    np.testing.assert_allclose(weights, np_softmax(logits, window) * gauss, rtol=2e-5, atol=1e-6)
    assert np.all(np.asarray(weights)[~window] == 0.0)
    assert np.all(np.asarray(weights).sum(-1) <= 1.0 + 1e-6)


@names
def test_precomputed_keys_give_the_same_result(name):
    case = CASES[name]
    module, variables = init(name)
    x = inputs(case, seed=3)

    @jax.jit
    def both(variables, x):
        keys = module.apply(variables, x["memory"], method="project_memory")
        precomputed = call(case, module, variables, x, projected_memory=keys)
        return call(case, module, variables, x)[:2], precomputed[:2]

    expected, got = both(variables, x)
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@names
def test_many_queries_at_once_equal_a_loop_over_steps(name):
    case = CASES[name]
    module, variables = init(name)
    steps = 3
    x = inputs(case, batch_shape=(BATCH, steps), seed=4)  # query [B, T, d], state [B, T, S], step [B, T]
    x["memory"] = x["memory"][:, :1]  # [B, 1, S, f]: the same memory for every step
    x["mask"] = x["mask"][:, :1]  # [B, 1, S]
    if case.step:
        x["step"] = x["step"] + jnp.arange(steps)  # step t of a monotonic decoder
    context, weights, _ = call(case, module, variables, x)
    assert context.shape == (BATCH, steps, FEATURES) and weights.shape == (BATCH, steps, KV_LEN)
    for t in range(steps):
        x_t = {k: None if v is None else v[:, 0 if k in ("memory", "mask") else t] for k, v in x.items()}
        c_t, w_t, _ = call(case, module, variables, x_t)
        np.testing.assert_allclose(weights[:, t], w_t, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(context[:, t], c_t, rtol=1e-5, atol=1e-6)


@names
def test_fully_masked_row_gives_zeros_and_finite_gradients(name):
    case = CASES[name]
    module, variables = init(name)
    x = inputs(case, seed=6)
    x["mask"] = x["mask"].at[1].set(False)
    context, weights, _ = call(case, module, variables, x)
    np.testing.assert_array_equal(weights[1], np.zeros(KV_LEN))
    np.testing.assert_array_equal(context[1], np.zeros(FEATURES))

    def loss(variables, query, memory):
        c, w, _ = call(case, module, variables, {**x, "query": query, "memory": memory})
        return jnp.sum(c**2) + jnp.sum(w * jnp.arange(KV_LEN))

    grads = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))(variables, x["query"], x["memory"])
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(grads))


@names
def test_sow_weights(name):
    case = CASES[name]
    module, variables = init(name)
    sowing = case.make(sow_weights=True)
    x = inputs(case, seed=7)
    _, weights, collections = call(case, sowing, variables, x, mutable="intermediates")
    (sown,) = collections["intermediates"]["attention_weights"]
    np.testing.assert_array_equal(sown, weights)
    # Without sow_weights nothing is recorded.
    *_, collections = jax.eval_shape(
        functools.partial(call, case, module, mutable="intermediates"), variables, x
    )
    assert "intermediates" not in collections or not collections["intermediates"]


@names
def test_jit_and_bfloat16(name):
    case = CASES[name]
    module, variables = init(name)
    x = inputs(case, dtype=jnp.bfloat16, seed=8)
    # bfloat16 inputs, with the computation dtype inferred (None) and set to bfloat16.
    outs = jax.jit(lambda v, x: [call(case, m, v, x)[:2] for m in (module, case.make(dtype=jnp.bfloat16))])(
        variables, x
    )
    for context, weights in outs:
        assert weights.dtype == jnp.float32 and context.dtype == jnp.bfloat16
        assert np.all(np.isfinite(np.asarray(weights)))
        assert np.all(np.isfinite(np.asarray(context, np.float32)))
        if name == "local_p":  # the Gaussian factor is not renormalised
            assert np.all((np.asarray(weights).sum(-1) > 0) & (np.asarray(weights).sum(-1) <= 1 + 1e-6))
        else:
            np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(outs[0][1], outs[1][1], atol=0.05)  # the two agree to bfloat16 precision


# --- state carried across decoder steps in nn.scan ----------------------------------------------------


class ScanDecoder(nn.Module):
    """Runs a stateful attention over T decoder states with nn.scan, projecting the keys once."""

    attention: nn.Module

    @nn.compact
    def __call__(self, queries, memory, mask, state):  # queries [T, B, d], state [B, S]
        keys = self.attention.project_memory(memory)

        def step(attention, state, query):
            out = attention(query, memory, state, mask, projected_memory=keys)
            new_state = out[2] if len(out) == 3 else out[1]  # coverage, or the weights themselves
            return new_state, out[:2]

        scan = nn.scan(step, variable_broadcast="params", split_rngs={"params": False})
        return scan(self.attention, state, queries)


@pytest.mark.parametrize("name", ["location_aware", "coverage"])
def test_state_evolves_inside_nn_scan(name):
    case = CASES[name]
    steps = 4
    x = inputs(case, seed=9)
    queries = jnp.asarray(np.random.default_rng(10).normal(size=(steps, BATCH, Q_FEATURES)), jnp.float32)
    if name == "coverage":
        state0 = jnp.zeros((BATCH, KV_LEN))
    else:
        state0 = jnp.zeros((BATCH, KV_LEN)).at[:, 0].set(1.0)  # all weight on the first position
    decoder = ScanDecoder(case.make())
    variables = jax.jit(decoder.init)(jax.random.key(0), queries, x["memory"], x["mask"], state0)
    final, (contexts, weights) = jax.jit(decoder.apply)(variables, queries, x["memory"], x["mask"], state0)
    assert contexts.shape == (steps, BATCH, FEATURES) and weights.shape == (steps, BATCH, KV_LEN)
    # The same steps unrolled by hand with the same parameters.
    inner = {"params": variables["params"]["attention"]}
    state = state0
    for t in range(steps):
        if name == "coverage":
            np.testing.assert_allclose(state, weights[:t].sum(0), rtol=1e-5, atol=1e-6)  # c = cumsum
        c, w, rest = call(case, case.make(), inner, {**x, "query": queries[t], "state": state})
        state = rest[0] if name == "coverage" else w
        np.testing.assert_allclose(w, weights[t], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(c, contexts[t], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(final, state, rtol=1e-5, atol=1e-6)
    if name == "coverage":
        np.testing.assert_allclose(final.sum(-1), steps, rtol=1e-5)
    # The carried state matters: the last step with the initial state attends differently.
    _, w_without_state, _ = call(case, case.make(), inner, {**x, "query": queries[-1], "state": state0})
    assert not np.allclose(w_without_state, weights[-1], atol=1e-3)


# --- configuration errors -----------------------------------------------------------------------------


def test_configuration_errors():
    q, m = jnp.ones((2, 6)), jnp.ones((2, 7, 5))

    def init_shapes(module):
        return jax.eval_shape(module.init, jax.random.key(0), q, m)

    with pytest.raises(ValueError, match="Unknown Luong score"):
        init_shapes(LuongAttention(score="cosine"))
    with pytest.raises(ValueError, match="needs units"):
        init_shapes(LuongAttention(score="general"))
    with pytest.raises(ValueError, match="query features"):
        init_shapes(LuongAttention(score="dot"))
    with pytest.raises(ValueError, match="needs step"):
        init_shapes(LocalAttention(mode="monotonic", score="concat", units=4))
    with pytest.raises(ValueError, match="Unknown local attention mode"):
        init_shapes(LocalAttention(mode="gaussian", score="concat", units=4))
    with pytest.raises(ValueError, match="half_width"):
        init_shapes(LocalAttention(mode="predictive", score="concat", units=4, half_width=0))
