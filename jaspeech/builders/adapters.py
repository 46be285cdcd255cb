"""Small helpers shared by source adapters: pull typed fields out of untrusted rows."""
from __future__ import annotations

from jaspeech.builders.schema import RowReject


def require_mapping(raw: object) -> dict:
    if not isinstance(raw, dict):
        raise RowReject("malformed", f"row is a {type(raw).__name__}, not an object")
    return raw


def field(raw: dict, name: str) -> object:
    """The value of a required field; absent or null becomes a `missing_<name>` reject."""
    value = raw.get(name)
    if value is None:
        raise RowReject(f"missing_{name}", f"field {name!r} is absent or null")
    return value


def turn_list(raw: dict, name: str) -> list[dict]:
    value = field(raw, name)
    if not isinstance(value, list) or not value:
        raise RowReject("malformed", f"{name!r} must be a non-empty list")
    for i, t in enumerate(value):
        if not isinstance(t, dict):
            raise RowReject("malformed", f"{name}[{i}] is a {type(t).__name__}, not an object")
    return value
