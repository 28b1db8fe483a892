"""Device mesh and sharding by logical-axis rules (no sharding by hand)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import ml_collections
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from attn_jax.errors import UserError

MESH_AXES = ("data", "fsdp", "tensor")
# Batches are split over both data-parallel axes.
BATCH_SPEC = PartitionSpec(("data", "fsdp"))


def make_mesh(mesh_config: ml_collections.ConfigDict, devices: Sequence[Any] | None = None) -> Mesh:
    """A ``data x fsdp x tensor`` mesh; one size may be -1 to take the remaining devices."""
    devices = list(jax.devices() if devices is None else devices)
    sizes = [int(mesh_config[axis]) for axis in MESH_AXES]
    if sizes.count(-1) > 1:
        raise UserError("At most one of mesh.data, mesh.fsdp, mesh.tensor may be -1.")
    if -1 in sizes:
        known = math.prod(s for s in sizes if s != -1)
        if len(devices) % known:
            raise UserError(f"{len(devices)} devices do not divide by the fixed mesh sizes {sizes}.")
        sizes[sizes.index(-1)] = len(devices) // known
    total = sizes[0] * sizes[1] * sizes[2]
    if total != len(devices):
        raise UserError(
            f"mesh data={sizes[0]} x fsdp={sizes[1]} x tensor={sizes[2]} needs {total} devices but "
            f"{len(devices)} are available; set --config.mesh.data=-1 to use them all."
        )
    # Automatic axes: XLA propagates shardings from the annotated parameters and batches (GSPMD).
    auto = (jax.sharding.AxisType.Auto,) * len(MESH_AXES)
    return jax.make_mesh(tuple(sizes), MESH_AXES, axis_types=auto, devices=devices)


def logical_rules(config: ml_collections.ConfigDict) -> tuple[tuple[str, Any], ...]:
    """``config.sharding_rules``: logical axis name -> mesh axis (or None to replicate)."""
    return tuple((name, axis) for name, axis in config.sharding_rules)


def tree_sharding(abstract_tree: Any, mesh: Mesh, rules: Sequence[tuple[str, Any]]) -> Any:
    """Shardings for a pytree whose leaves carry logical partitioning metadata."""
    return nn.logical_to_mesh_sharding(nn.get_partition_spec(abstract_tree), mesh, rules)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, BATCH_SPEC)


def put_batch(batch: dict[str, Any], mesh: Mesh) -> dict[str, jax.Array]:
    """Assemble the global batch from every process's local rows, split over the data axes."""
    sharding = batch_sharding(mesh)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), batch)
