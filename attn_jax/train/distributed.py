"""Joining a multi-process (multi-host) run before JAX touches any device."""

from __future__ import annotations

import logging

import jax

_LOG = logging.getLogger(__name__)


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
) -> None:
    """Call ``jax.distributed.initialize`` when asked; afterwards every process sees all devices.

    With ``coordinator_address`` (``host:port`` of process 0) the process count and this process's id are
    explicit, e.g. several CPU processes on one machine; with ``auto`` JAX detects them from the cluster
    (Cloud TPU pods, SLURM, ...). CPU processes exchange data through Gloo collectives.
    """
    if coordinator_address is None and not auto:
        return
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes, process_id)
    _LOG.info(
        "Process %d of %d; %d local of %d devices.",
        jax.process_index(), jax.process_count(), jax.local_device_count(), jax.device_count(),
    )
