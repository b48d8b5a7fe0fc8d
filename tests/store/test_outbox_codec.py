"""Outbox payloads as stored (``gateway.store.outbox_codec``): every payload
type comes back equal from its text, and text that does not fit its kind
comes back as an ``UnreadablePayload`` naming the problem."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.outbox_payloads import (
    PAYLOAD_TYPES,
    InvitationPayload,
    InviteAction,
    MailPayload,
    Payload,
    UnreadablePayload,
    kind_of,
)
from gateway.store.outbox_codec import decode_payload, encode_payload

# Every registered payload type, with any values its fields allow.
PAYLOADS = st.one_of(
    *(
        st.builds(t, subject=st.text(min_size=1, max_size=20)) if t is MailPayload else st.builds(t)
        for t in PAYLOAD_TYPES.values()
    )
)


@given(PAYLOADS)
def test_every_payload_comes_back_equal(payload: Payload) -> None:
    stored = encode_payload(payload)
    assert decode_payload(kind_of(payload), stored) == payload
    assert isinstance(json.loads(stored), dict)


def test_fields_at_their_default_are_not_stored() -> None:
    payload = InvitationPayload(InviteAction.CREATED, 0, "zoe@example.com")
    assert json.loads(encode_payload(payload)) == {
        "action": "created",
        "sequence": 0,
        "attendee": "zoe@example.com",
    }


@pytest.mark.parametrize(
    ("kind", "stored", "problem"),
    [
        ("teleport", "{}", "unknown outbox kind 'teleport'"),
        ("invitation", "[]", "not a JSON object"),
        ("invitation", "{", "not JSON"),
        ("invitation", '{"action": "created", "sequence": 1}', "attendee: Field required"),
        ("invitation", '{"action": "created", "sequence": 1.5, "attendee": "z"}', "sequence"),
        ("invitation", '{"action": "created", "sequence": 1, "attendee": 7}', "attendee"),
        ("google_push", '{"force": "yes"}', "force"),
        ("google_push", '{"uid": "u", "colour": "red"}', "no field 'colour'"),
        ("mail", '{"to": "a@example.com", "values": {"x": 1}}', "values.x"),
        ("mail", '{"to": "a@example.com"}', "needs a notice or a subject"),
    ],
)
def test_what_does_not_fit_is_named(kind: str, stored: str, problem: str) -> None:
    payload = decode_payload(kind, stored)
    assert isinstance(payload, UnreadablePayload)
    assert (payload.kind, payload.text) == (kind, stored)
    assert problem in payload.problem


def test_an_unreadable_payload_is_never_written() -> None:
    with pytest.raises(ValueError, match="never written back"):
        encode_payload(UnreadablePayload("teleport", "{}", "unknown"))
