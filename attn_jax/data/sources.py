"""Data sources named by one string: ``builtin:NAME`` (generated offline), later ``tfds:`` and ``files:``."""

from __future__ import annotations

from attn_jax.errors import UserError


def parse_source(source: str, supported: dict[str, tuple[str, ...]]) -> tuple[str, str]:
    """Split ``'kind:name'`` and check it against ``supported`` (kind -> valid names, empty = any)."""
    kind, sep, name = source.partition(":")
    if not sep or kind not in supported:
        kinds = ", ".join(f"{k}:" for k in supported)
        raise UserError(f"Unknown data source {source!r}; use one of {kinds}")
    if not name:
        raise UserError(f"Data source {source!r} names nothing after '{kind}:'; e.g. '{kind}:NAME_OR_PATH'.")
    valid = supported[kind]
    if valid and name not in valid:
        raise UserError(
            f"Unknown {kind} data set {name!r}; valid: {', '.join(f'{kind}:{n}' for n in valid)}."
        )
    return kind, name
