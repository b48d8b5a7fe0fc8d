"""Bad characters and bad input against a real ``calgateway serve`` (issue
12, items 2 and 11).

    .venv/bin/python -m bench.attacks.bad_input
    .venv/bin/python -m bench.attacks.bad_input --json out.json

A fresh server and database; two good events in anna's calendar. Then each
hostile input is sent once (through the JSON API, CalDAV PUT, iTIP POST and
sync-collection) and its status printed: every one must be a 4xx. Then the
calendar must still answer PROPFIND Depth 1, calendar-query,
sync-collection and calendar-multiget with 207. Last, an object is given
NUL, ESC, VT, U+FFFE and U+FFFF behind the server's back (straight into the
SQLite file, as old data or a hand edit could), and the same four reports,
a GET of the object (byte-identical to what is stored) and the ICS feed are
asked again.

Talks only to 127.0.0.1; every request has a timeout (30 s); the run takes a
few seconds. Exits 1 if any answer is a 5xx or a report is not a 207.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.caldav.dav import ADMIN, event, multiget_body, sync_body, time_range_query
from tests.conftest import API_TOKEN, settings_yaml
from tests.serving import serving

TIMEOUT = aiohttp.ClientTimeout(total=30)
CALENDAR = "/dav/calendars/anna/"
API = {"Authorization": f"Bearer {API_TOKEN}"}
JSON = {**API, "Content-Type": "application/json"}
FEED = "/feeds/anna.ics?token=anna-feed-token-0123456789abcdef"
SLOT = {
    "resource": "anna",
    "start": "2026-12-03T09:00:00+01:00",
    "end": "2026-12-03T10:00:00+01:00",
    "title": "Haircut",
}


@dataclass(frozen=True)
class Attack:
    kind: str
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] | None = None


def _booking(**changes: Any) -> bytes:
    # json.dumps escapes what is not ASCII: a lone surrogate goes as "\ud800".
    return json.dumps({**SLOT, **changes}).encode()


def _put(kind: str, name: str, ics: bytes, charset: str = "utf-8") -> Attack:
    headers = {**ADMIN, "Content-Type": f"text/calendar; charset={charset}"}
    return Attack(kind, "PUT", f"{CALENDAR}{name}.ics", ics, headers)


def _itip(kind: str, body: bytes, charset: str = "utf-8") -> Attack:
    headers = {**API, "Content-Type": f"text/calendar; charset={charset}"}
    return Attack(kind, "POST", "/api/v1/itip", body, headers)


REPLY = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nMETHOD:REPLY\r\nBEGIN:VEVENT\r\n"
    "UID:x@gateway.test\r\nDTSTAMP:20261120T100000Z\r\nCOMMENT:{}\r\n"
    "ATTENDEE;PARTSTAT=ACCEPTED:mailto:zoe@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def attacks(booking_id: str) -> list[Attack]:
    chars = {"NUL": "\x00", "ESC": "\x1b", "VT": "\x0b", "U+FFFE": "\ufffe", "U+D800": "\ud800"}
    found: list[Attack] = []
    for name, char in chars.items():
        found.append(
            Attack(
                f"API title {name}", "POST", "/api/v1/bookings", _booking(title=f"a{char}b"), JSON
            )
        )
    found += [
        Attack(
            "API description NUL", "POST", "/api/v1/bookings", _booking(description="\x00"), JSON
        ),
        Attack("API location ESC", "POST", "/api/v1/bookings", _booking(location="\x1b"), JSON),
        Attack(
            "API booker name VT",
            "POST",
            "/api/v1/bookings",
            _booking(booker={"name": "\x0b", "email": "zoe@example.com"}),
            JSON,
        ),
        Attack(
            "API PATCH title NUL",
            "PATCH",
            f"/api/v1/bookings/{booking_id}",
            json.dumps({"title": "x\x00"}).encode(),
            JSON,
        ),
    ]
    for name, char in list(chars.items())[:4]:
        ics = event(f"bad-{name}", summary=f"Hair{char}cut").encode("utf-8")
        found.append(_put(f"PUT SUMMARY {name}", f"bad-{name}", ics))
    found += [
        _put("PUT utf-7 lone surrogate", "u7", event("u7", summary="+2D8-").encode(), "utf-7"),
        _itip("iTIP COMMENT NUL", REPLY.format("see you\x00").encode()),
        Attack(
            "API year 1 (+05:00)",
            "POST",
            "/api/v1/bookings",
            _booking(start="0001-01-01T00:00:00+05:00", end="0001-01-01T01:00:00+05:00"),
            JSON,
        ),
        Attack(
            "API year 9999 (-05:00)",
            "POST",
            "/api/v1/bookings",
            _booking(start="9999-12-31T22:00:00-05:00", end="9999-12-31T23:00:00-05:00"),
            JSON,
        ),
        Attack(
            "API PATCH to year 9999",
            "PATCH",
            f"/api/v1/bookings/{booking_id}",
            json.dumps({"end": "9999-12-31T23:00:00-05:00"}).encode(),
            JSON,
        ),
        Attack(
            "API list window in 9999",
            "GET",
            "/api/v1/bookings?resource=anna&start=9999-12-31T00:00-12:00&end=9999-12-31T10:00-12:00",
            headers=API,
        ),
        Attack(
            "API availability in year 1",
            "GET",
            "/api/v1/resources/anna/availability?start=0001-01-01T10:00%2B14:00&end=0001-01-02T00:00Z",
            headers=API,
        ),
        Attack(
            "JSON 5,000-digit number",
            "POST",
            "/api/v1/bookings",
            b'{"resource": "anna", "start": ' + b"1" * 5000 + b"}",
            JSON,
        ),
        Attack(
            "JSON 100,000 nested arrays",
            "POST",
            "/api/v1/bookings",
            b"[" * 100_000 + b"]" * 100_000,
            JSON,
        ),
        Attack(
            "JSON 100,000 nested objects",
            "POST",
            "/api/v1/bookings",
            b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
            JSON,
        ),
        Attack("JSON NaN", "POST", "/api/v1/bookings", b'{"resource": "anna", "start": NaN}', JSON),
        Attack(
            "API non-ASCII e-mail",
            "POST",
            "/api/v1/bookings",
            _booking(booker={"name": "Jörg", "email": "jörg@exämple.de"}),
            JSON,
        ),
    ]
    for charset in ("punycode", "foo", "base64", "idna"):
        found.append(_put(f"PUT charset={charset}", f"cs-{charset}", event("cs").encode(), charset))
        found.append(_itip(f"iTIP charset={charset}", REPLY.format("hi").encode(), charset))
    for revision in ("99999999999999999999", "9" * 5000, "\u00b2"):
        token = f"urn:calgateway:sync:anna:{revision}"
        found.append(
            Attack(
                f"sync-token revision {revision[:12]!a}",
                "REPORT",
                CALENDAR,
                sync_body(token).encode(),
                {**ADMIN, "Content-Type": "application/xml; charset=utf-8"},
            )
        )
    return found


async def send(http: aiohttp.ClientSession, base: str, attack: Attack) -> tuple[int, str]:
    async with http.request(
        attack.method, base + attack.path, data=attack.body or None, headers=attack.headers
    ) as response:
        text = await response.text(errors="replace")
        return response.status, text


async def reports(http: aiohttp.ClientSession, base: str) -> dict[str, tuple[int, bytes]]:
    """What every client asks of the calendar, by name: (status, body)."""
    xml = {**ADMIN, "Content-Type": "application/xml; charset=utf-8"}
    answers: dict[str, tuple[int, bytes]] = {}
    propfind = (
        '<D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
        "<D:prop><D:getetag/></D:prop></D:propfind>"
    )
    query = time_range_query(
        "20200101T000000Z", "20300101T000000Z", extra_props="<C:calendar-data/>"
    )
    hrefs = [f"{CALENDAR}good-1.ics", f"{CALENDAR}good-2.ics"]
    for name, method, body, depth in (
        ("propfind", "PROPFIND", propfind, "1"),
        ("calendar-query", "REPORT", query, "1"),
        ("sync-collection", "REPORT", sync_body("", data=True), "0"),
        ("calendar-multiget", "REPORT", multiget_body(*hrefs), "0"),
    ):
        async with http.request(
            method, base + CALENDAR, data=body.encode(), headers={**xml, "Depth": depth}
        ) as response:
            answers[name] = (response.status, await response.read())
    return answers


def tamper(db_path: Path, uid: str, old: str, new: str) -> str:
    with sqlite3.connect(db_path) as conn:
        (ics,) = conn.execute("SELECT ics FROM objects WHERE uid = ?", (uid,)).fetchone()
        changed = str(ics).replace(old, new)
        conn.execute("UPDATE objects SET ics = ? WHERE uid = ?", (changed, uid))
    return changed


async def run(base: str, db_path: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"attacks": [], "reports_after_attacks": {}, "stored_bad": {}}
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        for n, day in ((1, "20261201"), (2, "20261202")):
            ics = event(f"good-{n}", f"{day}T090000Z", f"{day}T100000Z", summary=f"Good {n}")
            status, _ = await send(http, base, _put("seed", f"good-{n}", ics.encode()))
            assert status == 201, status
        async with http.post(f"{base}/api/v1/bookings", json=SLOT, headers=API) as response:
            assert response.status == 201, await response.text()
            booking_id = (await response.json())["id"]

        started = time.monotonic()
        for attack in attacks(booking_id):
            status, text = await send(http, base, attack)
            results["attacks"].append(
                {"kind": attack.kind, "status": status, "answer": _gist(text)}
            )
        results["attack_seconds"] = round(time.monotonic() - started, 2)
        results["reports_after_attacks"] = {k: v[0] for k, v in (await reports(http, base)).items()}

        raw = tamper(db_path, "good-2", "Good 2", "Good\x00 2 \x1b\x0b\ufffe\uffff")
        answers = await reports(http, base)
        stored: dict[str, Any] = {k: v[0] for k, v in answers.items()}
        stored["U+FFFD in calendar-query data"] = (
            "Good\ufffd 2 ".encode() in answers["calendar-query"][1]
        )
        async with http.get(f"{base}{CALENDAR}good-2.ics", headers=ADMIN) as response:
            stored["GET"] = response.status
            stored["GET byte-identical"] = await response.read() == raw.encode("utf-8")
        async with http.get(base + FEED) as response:
            stored["feed"] = response.status
        async with http.get(f"{base}/healthz") as response:
            stored["healthz"] = response.status
        results["stored_bad"] = stored
    return results


def _gist(text: str) -> str:
    try:
        document = json.loads(text)
        return str(document.get("detail", ""))[:110]
    except ValueError:
        marker = "message>"
        if marker in text:
            return text.split(marker)[1].split("<")[0][:110]
        return text[:110].replace("\n", " ")


def ok(value: Any) -> bool:
    return value in (200, 207, True)


def failures(results: dict[str, Any]) -> list[str]:
    bad = [f"{a['kind']}: {a['status']}" for a in results["attacks"] if a["status"] >= 500]
    bad += [
        f"{a['kind']}: {a['status']} (not a 4xx)" for a in results["attacks"] if a["status"] < 400
    ]
    bad += [
        f"after attacks, {k}: {v}" for k, v in results["reports_after_attacks"].items() if not ok(v)
    ]
    bad += [f"stored bad object, {k}: {v}" for k, v in results["stored_bad"].items() if not ok(v)]
    return bad


async def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "gateway.sqlite3"
        config = Path(tmp) / "gateway.yaml"
        config.write_text(settings_yaml(db_path), encoding="utf-8")
        async with serving(config) as server:
            results = await run(server.url, db_path)
            await server.stop()
            results["server_errors_logged"] = sum(
                1 for e in server.entries if str(e.get("level", "")).upper() == "ERROR"
            )
    width = max(len(a["kind"]) for a in results["attacks"])
    for a in results["attacks"]:
        print(f"{a['kind']:<{width}}  {a['status']}  {a['answer']}")
    print(f"{len(results['attacks'])} hostile requests in {results['attack_seconds']} s")
    print("calendar after the attacks:", results["reports_after_attacks"])
    print("calendar with a bad object stored directly:", results["stored_bad"])
    print("ERROR lines in the server log:", results["server_errors_logged"])
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json")
    options = parser.parse_args()
    summary = asyncio.run(main(options))
    if options.json:
        Path(options.json).write_text(json.dumps(summary, indent=2), "utf-8")
    problems = failures(summary)
    for problem in problems:
        print("FAIL", problem)
    sys.exit(1 if problems else 0)
