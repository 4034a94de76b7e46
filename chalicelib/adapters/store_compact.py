"""A state body without the values still at their default: a write is billed per started KB of
the item (docs/architecture.md, "A warm's writes"), and a conversation that is not mid-turn leaves
most of its fields at their default. Decoding fills them back in (msgspec.convert gives a missing
field its default), so a body written whole before reads the same."""

from __future__ import annotations

import dataclasses
from typing import Any

import msgspec

_NO_DEFAULT = object()


def defaults_of(cls: type) -> dict[str, Any]:
    """The builtins of each field's default, for the fields of dataclass `cls` that have one."""
    defaults: dict[str, Any] = {}
    for spec in dataclasses.fields(cls):
        if spec.default is not dataclasses.MISSING:
            defaults[spec.name] = msgspec.to_builtins(spec.default)
        elif spec.default_factory is not dataclasses.MISSING:
            defaults[spec.name] = msgspec.to_builtins(spec.default_factory())
    return defaults


def compact(data: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """`data` without the values equal to their default, in nested objects too."""
    kept: dict[str, Any] = {}
    for name, value in data.items():
        default = defaults.get(name, _NO_DEFAULT)
        if isinstance(value, dict) and isinstance(default, dict):
            value = compact(value, default)
            if not value:
                continue
        elif value == default:
            continue
        kept[name] = value
    return kept
