"""Log formats: both carry the request fields, JSON for machines, text for people."""

from __future__ import annotations

import json
import logging

from gateway.web.observability import JsonFormatter, TextFormatter


def access_record() -> logging.LogRecord:
    record = logging.makeLogRecord(
        {"name": "calgateway.access", "levelname": "INFO", "levelno": 20, "msg": "request"}
    )
    record.method = "PROPFIND"
    record.path = "/dav/calendars/anna/"
    record.status = 207
    return record


def test_json_lines_carry_the_fields() -> None:
    entry = json.loads(JsonFormatter().format(access_record()))
    assert entry["msg"] == "request"
    assert (entry["method"], entry["path"], entry["status"]) == (
        "PROPFIND",
        "/dav/calendars/anna/",
        207,
    )


def test_text_lines_carry_the_fields_too() -> None:
    line = TextFormatter().format(access_record())
    assert line.endswith("request method=PROPFIND path=/dav/calendars/anna/ status=207")
    assert "\n" not in line
