"""Outbox payloads as stored: a JSON object per record, checked against its
kind's payload type when read back (``gateway.core.outbox_payloads``).

pydantic does the checking, in strict mode (a SEQUENCE stored as "3" is an
error, not a 3); a field no payload type has is refused too, so a typo or a
record of another version never passes for a valid one with a field left
at its default. A record that does not fit is not an exception here: it
comes back as an ``UnreadablePayload`` naming the problem, so that one bad
row cannot stop the worker from claiming the rows behind it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from gateway.core.outbox_payloads import (
    PAYLOAD_TYPES,
    OutboxKind,
    Payload,
    UnreadablePayload,
)

_ADAPTERS: Mapping[str, TypeAdapter[Any]] = {
    kind.value: TypeAdapter(payload_type) for kind, payload_type in PAYLOAD_TYPES.items()
}
_FIELDS: Mapping[str, frozenset[str]] = {
    kind.value: frozenset(f.name for f in dataclasses.fields(payload_type))
    for kind, payload_type in PAYLOAD_TYPES.items()
}


def encode_payload(payload: Payload) -> str:
    """The stored text of a payload. Fields at their default are left out,
    so records stay small and an added field does not change older ones;
    sort_keys: equal payloads give equal text."""
    if isinstance(payload, UnreadablePayload):
        raise ValueError(f"an unreadable {payload.kind!r} record is never written back")
    values = {
        f.name: _plain(getattr(payload, f.name))
        for f in dataclasses.fields(payload)
        if getattr(payload, f.name) != _default(f)
    }
    return json.dumps(values, ensure_ascii=False, sort_keys=True)


def decode_payload(kind: str, text: str) -> Payload:
    """The payload stored as ``text`` under ``kind``, or an
    ``UnreadablePayload`` saying what does not fit."""
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        known = ", ".join(k.value for k in OutboxKind)
        return UnreadablePayload(kind, text, f"unknown outbox kind {kind!r} (known: {known})")
    try:
        values = json.loads(text)
    except ValueError as exc:
        return UnreadablePayload(kind, text, f"the payload is not JSON: {exc}")
    if not isinstance(values, dict):
        return UnreadablePayload(kind, text, "the payload is not a JSON object")
    unknown = sorted(set(values) - _FIELDS[kind])
    if unknown:
        return UnreadablePayload(
            kind, text, f"a {kind!r} payload has no field {', '.join(map(repr, unknown))}"
        )
    try:
        payload: Payload = adapter.validate_json(text, strict=True)
    except ValidationError as exc:
        return UnreadablePayload(kind, text, _problem(kind, exc))
    except ValueError as exc:  # the type's own check (__post_init__)
        return UnreadablePayload(kind, text, f"a {kind!r} payload is not valid: {exc}")
    return payload


def _problem(kind: str, error: ValidationError) -> str:
    parts = [
        f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}"
        for e in error.errors(include_url=False)
    ]
    return f"a {kind!r} payload does not fit: " + "; ".join(parts)


def _default(f: dataclasses.Field[Any]) -> object:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    return value
