"""Batch requests: multipart/mixed of application/http parts, in and out.

Format: "Sending batch requests" (https://developers.google.com/calendar/api/guides/batch).
Each part is one HTTP request; each answer part carries ``Content-ID: <response-ID>``
for the request part ``Content-ID: <ID>``, which is how googleapiclient's
BatchHttpRequest maps answers back to callbacks.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import Message
from email.parser import Parser
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

from multidict import CIMultiDict

from fake_google.errors import GoogleApiError

MAX_PARTS = 1000  # "You're limited to 1000 calls in a single batch request."


@dataclass
class BatchPart:
    content_id: str | None
    method: str
    path: str
    query: dict[str, list[str]]
    headers: CIMultiDict[str]
    body: bytes


def _bad(message: str) -> GoogleApiError:
    return GoogleApiError(400, "badRequest", message)


def parse_batch(body: bytes, content_type: str) -> list[BatchPart]:
    text = body.decode("utf-8")
    outer = Parser().parsestr(f"Content-Type: {content_type}\r\n\r\n{text}")
    if not outer.is_multipart():
        raise _bad("Batch request is not multipart/mixed.")
    payload = outer.get_payload()
    assert isinstance(payload, list)
    if len(payload) > MAX_PARTS:
        raise _bad(f"A batch request may hold at most {MAX_PARTS} calls.")
    parts = []
    for part in payload:
        if not isinstance(part, Message):
            raise _bad("Malformed batch part.")
        parts.append(_parse_part(part))
    return parts


def _parse_part(part: Message) -> BatchPart:
    if part.get_content_type() != "application/http":
        raise _bad("Each batch part must be application/http.")
    raw = part.get_payload()
    if not isinstance(raw, str):
        raise _bad("Malformed batch part.")
    request_line, _, rest = raw.lstrip("\r\n").partition("\n")
    pieces = request_line.strip().split(" ")
    if len(pieces) < 2:
        raise _bad("Malformed request line in batch part.")
    method, target = pieces[0].upper(), pieces[1]
    inner = Parser().parsestr(rest)
    headers: CIMultiDict[str] = CIMultiDict((k, str(v)) for k, v in inner.items())
    inner_body = inner.get_payload()
    url = urlsplit(target)
    return BatchPart(
        content_id=part.get("Content-ID"),
        method=method,
        path=url.path,
        query=parse_qs(url.query, keep_blank_values=True),
        headers=headers,
        body=inner_body.encode("utf-8") if isinstance(inner_body, str) else b"",
    )


def response_content_id(request_content_id: str | None, index: int) -> str:
    inner = (request_content_id or f"item{index}").strip()
    if inner.startswith("<") and inner.endswith(">"):
        inner = inner[1:-1]
    return f"<response-{inner}>"


def render_batch(
    answers: Iterable[tuple[str, int, dict[str, str], bytes]],
) -> tuple[bytes, str]:
    """(content-id, status, headers, body) per part -> multipart body and boundary."""
    boundary = "batch_" + secrets.token_hex(12)
    out: list[bytes] = []
    for content_id, status, headers, body in answers:
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        head = [
            f"--{boundary}",
            "Content-Type: application/http",
            f"Content-ID: {content_id}",
            "",
            f"HTTP/1.1 {status} {reason}",
            *(f"{k}: {v}" for k, v in headers.items()),
            f"Content-Length: {len(body)}",
            "",
            "",
        ]
        out.append("\r\n".join(head).encode("utf-8") + body + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return b"".join(out), boundary
