"""``fast_jit``: ``jax.jit`` with XLA options that compile small CPU test programs several times faster.

Tests that compile many small programs whose run time is negligible are dominated by compilation.
"""

from __future__ import annotations

import functools

import jax


@functools.cache
def fast_compile_options() -> dict:
    """The options this XLA knows, out of a lower backend optimisation level and no fusion emitters."""
    options = {}
    for name, value in (("xla_backend_optimization_level", 0), ("xla_cpu_use_fusion_emitters", False)):
        try:
            jax.jit(lambda x: x + 1, compiler_options={name: value}).lower(1.0).compile()
            options[name] = value
        except Exception:  # an option this version of XLA does not have
            pass
    return options


def fast_jit(fn):
    """``jax.jit`` with :func:`fast_compile_options`."""
    return jax.jit(fn, compiler_options=fast_compile_options())
