"""The one JSON body reader (gateway.web.json_body): hostile documents are a
``JsonRefused`` naming the problem, never a crash."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.web.json_body import MAX_DEPTH, MAX_NUMBER_LENGTH, JsonRefused, parse_json


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b'{"a": 1}', {"a": 1}),
        (b'{"a": [1, 2.5, -3e2, true, null, "x"]}', {"a": [1, 2.5, -300.0, True, None, "x"]}),
        ('{"t": "caf\u00e9"}'.encode("utf-16"), {"t": "café"}),
        (b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, json.loads(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)),
        (b"9" * MAX_NUMBER_LENGTH, int("9" * MAX_NUMBER_LENGTH)),
        (b'"\\ud800"', "\ud800"),  # valid JSON; the fields' own rules refuse it
    ],
)
def test_reads_json(raw: bytes, value: Any) -> None:
    assert parse_json(raw) == value


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, f"is nested deeper than {MAX_DEPTH} levels"),
        (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), f"nested deeper than {MAX_DEPTH}"),
        # Other encodings count their brackets as well (a shortcut reads bytes).
        (
            ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)).encode("utf-16"),
            f"nested deeper than {MAX_DEPTH}",
        ),
        (
            ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)).encode("utf-32"),
            f"nested deeper than {MAX_DEPTH}",
        ),
        (
            ('{"a":' * (MAX_DEPTH + 1) + "1" + "}" * (MAX_DEPTH + 1)).encode("utf-16-le"),
            f"nested deeper than {MAX_DEPTH}",
        ),
        (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested deeper"),
        (b'{"n": ' + b"1" * 5000 + b"}", "has a number of 5000 characters"),
        (b'{"n": 0.' + b"1" * 5000 + b"}", "has a number of 5002 characters"),
        (b'{"n": 1e999}', "has the number 1e999, too large"),
        (b'{"n": NaN}', "NaN is no JSON value"),
        (b'{"n": -Infinity}', "-Infinity is no JSON value"),
        (b"caf\xe9", "is not UTF-8"),
        (b'{"a": }', "is not valid JSON (Expecting value at line 1 column 7)"),
        (b"", "is not valid JSON"),
    ],
)
def test_refuses_hostile_json(raw: bytes, message: str) -> None:
    with pytest.raises(JsonRefused) as caught:
        parse_json(raw)
    assert message in str(caught.value)


@given(st.binary(max_size=200))
def test_any_bytes_give_a_value_or_json_refused(raw: bytes) -> None:
    with contextlib.suppress(JsonRefused):
        parse_json(raw)
