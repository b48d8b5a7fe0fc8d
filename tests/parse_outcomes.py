"""What ``ICalCodec.parse`` makes of a text, as a value tests compare: the
``ParsedObject``, or the refusal (its type, precondition and message). For
the tests that show a shortcut of ``gateway.ical.parse`` changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

import gateway.ical.parse as parse_module
from gateway.core.errors import InvalidCalendarData
from gateway.core.model import ParsedObject
from gateway.ical import ICalCodec

CODEC = ICalCodec()

Outcome = ParsedObject | tuple[str, str, str]


def parse_outcome(text: str) -> Outcome:
    try:
        return CODEC.parse(text, "Europe/Berlin")
    except InvalidCalendarData as exc:
        return (type(exc).__name__, exc.precondition, exc.message)


def outcome_without(
    text: str, monkeypatch: pytest.MonkeyPatch, shortcut: str, instead: Any
) -> Outcome:
    """``parse_outcome`` with ``gateway.ical.parse``'s ``shortcut`` replaced
    by ``instead`` (the step that does nothing)."""
    with monkeypatch.context() as patch:
        patch.setattr(parse_module, shortcut, instead)
        return parse_outcome(text)
