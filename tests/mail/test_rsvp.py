"""Signed accept/decline tokens: round trip, tampering, and the same rule as
iTIP replies."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime

import pytest

from gateway.core.invitations import reply_applies
from gateway.core.model import PartStat
from gateway.links import tokens as rsvp
from gateway.links.tokens import InvalidRsvpToken, RsvpClaim, rsvp_url, sign_rsvp, verify_rsvp
from tests.mail import make_booking

KEY = b"k" * 32
OTHER_KEY = b"o" * 32


def token(**changes: object) -> str:
    values: dict[str, object] = {
        "booking_id": "b1",
        "attendee_email": "zoe@example.com",
        "sequence": 2,
        "partstat": PartStat.ACCEPTED,
    }
    values.update(changes)
    return sign_rsvp(KEY, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("partstat", [PartStat.ACCEPTED, PartStat.DECLINED, PartStat.TENTATIVE])
def test_round_trip(partstat: PartStat) -> None:
    claim = verify_rsvp(KEY, token(partstat=partstat))
    assert claim == RsvpClaim("b1", "zoe@example.com", 2, partstat)


def test_unicode_values_round_trip() -> None:
    made = sign_rsvp(KEY, "buchung/ä 1", "zoë@exämple.com", 0, PartStat.DECLINED)
    assert verify_rsvp(KEY, made) == RsvpClaim(
        "buchung/ä 1", "zoë@exämple.com", 0, PartStat.DECLINED
    )


def test_token_is_one_url_path_segment_without_secrets() -> None:
    made = token()
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", made)
    assert KEY.decode() not in made
    body = made.split(".")[0]
    claim = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert set(claim) == {"v", "b", "a", "s", "p"}
    assert rsvp_url("https://gateway.example/", made) == f"https://gateway.example/rsvp/{made}"
    assert rsvp_url("https://gateway.example", made) == f"https://gateway.example/rsvp/{made}"


def test_tokens_differ_by_answer_and_sequence() -> None:
    made = {
        token(),
        token(partstat=PartStat.DECLINED),
        token(sequence=3),
        token(attendee_email="bob@example.org"),
    }
    assert len(made) == 4


def test_every_altered_character_is_caught() -> None:
    made = token()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for index, char in enumerate(made):
        if char == ".":
            continue
        for replacement in (
            alphabet[(alphabet.index(char) + 1) % 64],
            alphabet[(alphabet.index(char) + 32) % 64],
        ):
            altered = made[:index] + replacement + made[index + 1 :]
            with pytest.raises(InvalidRsvpToken):
                verify_rsvp(KEY, altered)


def test_a_forged_claim_is_caught() -> None:
    made = token(partstat=PartStat.DECLINED)
    body, signature = made.split(".")
    claim = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claim["p"] = "ACCEPTED"
    forged = base64.urlsafe_b64encode(json.dumps(claim).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidRsvpToken, match="signature"):
        verify_rsvp(KEY, f"{forged}.{signature}")


def test_another_key_is_refused() -> None:
    with pytest.raises(InvalidRsvpToken, match="signature"):
        verify_rsvp(OTHER_KEY, token())


@pytest.mark.parametrize(
    "bad",
    ["", ".", "abc", "abc.", ".abc", "a.b.c", "äöü.xyz", "ab+/.cd==", "a b.c"],
)
def test_malformed_tokens(bad: str) -> None:
    with pytest.raises(InvalidRsvpToken):
        verify_rsvp(KEY, bad)
    assert issubclass(InvalidRsvpToken, ValueError)


def test_mac_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = rsvp.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(rsvp.hmac, "compare_digest", spy)
    verify_rsvp(KEY, token())
    assert len(calls) == 1


def test_signing_refuses_what_a_link_cannot_say() -> None:
    with pytest.raises(ValueError, match="NEEDS-ACTION"):
        token(partstat=PartStat.NEEDS_ACTION)
    with pytest.raises(ValueError, match="DELEGATED"):
        token(partstat=PartStat.DELEGATED)
    with pytest.raises(ValueError, match="negative"):
        token(sequence=-1)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        sign_rsvp(b"short", "b1", "zoe@example.com", 0, PartStat.ACCEPTED)
    with pytest.raises(ValueError, match="32 bytes"):
        verify_rsvp(b"short", token())


def test_a_claim_is_judged_like_an_itip_reply() -> None:
    now = datetime(2026, 11, 5, 12, tzinfo=UTC)
    booking = make_booking(sequence=2)
    claim = verify_rsvp(KEY, token(attendee_email="ZOE@example.com"))
    reply = claim.as_reply(booking.uid, now)
    assert (reply.partstat, reply.sequence, reply.dtstamp) == (PartStat.ACCEPTED, 2, now)
    assert reply_applies(booking, reply) == (True, "applies")
    # A link from the invitation before the last reschedule is stale.
    old = verify_rsvp(KEY, token(sequence=1)).as_reply(booking.uid, now)
    ok, why = reply_applies(booking, old)
    assert not ok and "stale" in why
