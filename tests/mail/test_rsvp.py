"""Signed accept/decline tokens: round trip, tampering, and the same rule as
iTIP replies."""

from __future__ import annotations

import base64
import contextlib
import json
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.invitations import reply_applies
from gateway.core.model import PartStat
from gateway.links import tokens as rsvp
from gateway.links.tokens import (
    InvalidRsvpToken,
    RsvpClaim,
    attendee_tag,
    rsvp_url,
    sign_rsvp,
    verify_rsvp,
)
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
    assert claim == RsvpClaim("b1", attendee_tag(KEY, "zoe@example.com"), 2, partstat)


def test_unicode_values_round_trip() -> None:
    made = sign_rsvp(KEY, "buchung/ä 1", "zoë@exämple.com", 0, PartStat.DECLINED)
    assert verify_rsvp(KEY, made) == RsvpClaim(
        "buchung/ä 1", attendee_tag(KEY, "zoë@exämple.com"), 0, PartStat.DECLINED
    )


def test_token_is_one_url_path_segment_without_secrets() -> None:
    made = token()
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", made)
    assert KEY.decode() not in made
    body = made.split(".")[0]
    claim = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert set(claim) == {"v", "b", "t", "s", "p"}  # no address ("a" in version 1)
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
    reply = claim.as_reply(booking.uid, "ZOE@example.com", now)
    assert (reply.partstat, reply.sequence, reply.dtstamp) == (PartStat.ACCEPTED, 2, now)
    assert reply_applies(booking, reply) == (True, "applies")
    # A link from the invitation before the last reschedule is stale.
    old = verify_rsvp(KEY, token(sequence=1)).as_reply(booking.uid, "zoe@example.com", now)
    ok, why = reply_applies(booking, old)
    assert not ok and "stale" in why


# -- opacity (issue 15): no token reveals the address ------------------------------------


def _decodings(made: str) -> list[bytes]:
    """Every way a reader could decode a token: as it is, each dot-separated
    part and each string inside its JSON claim, base64url-decoded."""
    found = [made.encode()]
    for part in made.split("."):
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        found.append(raw)
        try:
            claim = json.loads(raw)
        except ValueError:
            continue
        for value in claim.values():
            found.append(str(value).encode())
            if isinstance(value, str):
                with contextlib.suppress(ValueError):
                    found.append(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
    return found


@settings(max_examples=150, deadline=None)
@given(address=st.emails(), sequence=st.integers(0, 10_000))
def test_no_token_contains_the_address_in_any_decoding(address: str, sequence: int) -> None:
    made = sign_rsvp(KEY, "b1", address, sequence, PartStat.ACCEPTED)
    local = address.split("@")[0]
    for decoded in _decodings(made):
        for spelling in {address, address.lower()}:
            assert spelling.encode() not in decoded.lower()
        if len(local) >= 4:  # shorter local parts turn up in random bytes by chance
            assert local.lower().encode() not in decoded.lower()
    # ...and yet it names exactly that attendee, in every spelling of the mailbox.
    claim = verify_rsvp(KEY, made)
    assert claim.attendee_tag == attendee_tag(KEY, f"  {address.upper()} ")
    assert claim.attendee_tag != attendee_tag(KEY, "x" + address)
    assert claim.attendee_tag != attendee_tag(OTHER_KEY, address)


def _version_1(key: bytes, claim: dict[str, object]) -> str:
    """A token as gateways before issue 15 signed it (address in the claim)."""
    body = rsvp._b64(json.dumps(claim, separators=(",", ":")).encode())
    return f"{body}.{rsvp._b64(rsvp._mac(key, body))}"


def test_version_1_tokens_in_sent_mails_still_name_their_attendee() -> None:
    old = _version_1(KEY, {"v": 1, "b": "b1", "a": "Zoe@example.com", "s": 2, "p": "DECLINED"})
    assert verify_rsvp(KEY, old) == RsvpClaim(
        "b1", attendee_tag(KEY, "zoe@example.com"), 2, PartStat.DECLINED
    )
    with pytest.raises(InvalidRsvpToken, match="signature"):
        verify_rsvp(OTHER_KEY, old)
    with pytest.raises(InvalidRsvpToken, match="version"):
        verify_rsvp(KEY, _version_1(KEY, {"v": 3, "b": "b1", "t": "", "s": 2, "p": "DECLINED"}))
