"""Reading a JSON request body without letting it crash or stall the server.

The standard library's ``json.loads`` is correct but not hostile-proof:
100,000 nested brackets raise ``RecursionError``, a 5,000-digit number raises
``ValueError`` (CPython's int ``max_str_digits``, a guard against quadratic
conversion), and ``1e999`` or ``NaN`` (not JSON at all, RFC 8259 6) become
floats no field wants. ``parse_json`` is the one function every JSON
endpoint reads its body with: it bounds the nesting depth and the length of
number literals and turns every failure into one ``JsonRefused`` whose
message says what is wrong. It does not validate shapes: that is the
endpoint's model.
"""

from __future__ import annotations

import json
import math
from typing import Any

# The API's bodies nest three levels (a booking, its booker); 32 leaves room
# for any future shape and is far from the interpreter's recursion limit.
MAX_DEPTH = 32
# Characters of one number literal. No field needs more than an epoch in
# microseconds (16 digits); a long literal is a mistake or an attack.
MAX_NUMBER_LENGTH = 40


class JsonRefused(ValueError):
    """A body that is not JSON this server reads; the message says why."""


def _number_literal(text: str) -> str:
    if len(text) > MAX_NUMBER_LENGTH:
        raise JsonRefused(
            f"has a number of {len(text)} characters; numbers may have at most {MAX_NUMBER_LENGTH}"
        )
    return text


def _int(text: str) -> int:
    return int(_number_literal(text))


def _float(text: str) -> float:
    value = float(_number_literal(text))
    if not math.isfinite(value):
        raise JsonRefused(f"has the number {text}, too large for a double")
    return value


def _constant(name: str) -> Any:
    # json.loads accepts NaN, Infinity and -Infinity, which RFC 8259 does not.
    raise JsonRefused(f"is not valid JSON ({name} is no JSON value)")


def parse_json(raw: bytes) -> Any:
    """The value of the JSON document ``raw`` (UTF-8, or UTF-16/32 as
    RFC 8259 8.1 readers may detect). Raises ``JsonRefused``."""
    try:
        value = json.loads(raw, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise JsonRefused(f"is nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise JsonRefused("is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise JsonRefused(
            f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    # Nesting needs an opening bracket per level, and each one is a byte
    # 0x5B or 0x7B in every encoding read here (UTF-8, -16, -32): a body
    # with no more of those bytes than MAX_DEPTH need not be walked (every
    # booking; a string holding brackets only makes the count larger).
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise JsonRefused(f"is nested deeper than {MAX_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (0 for a scalar),
    walked with an explicit stack: no recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        if level > MAX_DEPTH:
            return level
        deepest = max(deepest, level)
        stack.extend((child, level) for child in children)
    return deepest
