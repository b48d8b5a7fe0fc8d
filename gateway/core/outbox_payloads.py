"""What the outbox holds: one kind per effect type, one payload type per kind.

Every side effect queued in a change's transaction (``gateway.core.effects``,
``mirror``, ``mirror_admin``) is one of the payloads below, and its outbox
kind follows from the payload's type (``kind_of``), so a kind can never be
queued with another kind's fields. The store writes a payload as a JSON
object and checks it against its type when it reads it back
(``gateway.store.outbox_codec``): a record that does not fit (a field
missing or of the wrong type, a field no type has, a kind this gateway does
not know, say one queued by a newer version) comes back as an
``UnreadablePayload`` naming the problem, which the worker closes as failed
for the admin to see, instead of a handler tripping over it half-way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class OutboxKind(StrEnum):
    """The stored kinds (the ``kind`` column): names, never renamed."""

    INVITATION = "invitation"
    GOOGLE_PUSH = "google_push"
    GOOGLE_REMOVE = "google_remove"
    GOOGLE_STOP_CHANNEL = "google_stop_channel"
    MAIL = "mail"
    RESOURCE_REPLY = "resource_reply"


class InviteAction(StrEnum):
    """Why an attendee gets a message (``gateway.core.outbox_words`` words it)."""

    CREATED = "created"
    RESCHEDULED = "rescheduled"
    UPDATED = "updated"
    CANCELLED = "cancelled"
    # An admin's "send the invitation again" (gateway.core.admin_actions):
    # no change, the same REQUEST in a message of its own.
    RESENT = "resent"


@dataclass(frozen=True, slots=True)
class InvitationPayload:
    """One iMIP message to one attendee of the item's booking. ``sequence``:
    the booking's SEQUENCE when queued (an older one is skipped, a newer
    item says it all); ``deleted``: the text of a deleted object, its
    CANCEL's only source; ``by``: who asked for a resend;
    ``recurrence_id``: the one occurrence of a series a CANCEL is about
    (RFC 5546 3.2.5, ISO text as ``Override.recurrence_id``), "" for the
    whole object."""

    action: InviteAction
    sequence: int
    attendee: str
    deleted: str = ""
    by: str = ""
    recurrence_id: str = ""


@dataclass(frozen=True, slots=True)
class GooglePushPayload:
    """Bring the booking's Google event in line with the booking as it is
    when the item runs. ``force``: write even though the gateway's last write
    is unchanged (Google's copy was edited); ``reason``: for the log."""

    uid: str = ""
    sequence: int = 0
    reason: str = ""
    force: bool = False


@dataclass(frozen=True, slots=True)
class GoogleRemovePayload:
    """Delete an event another resource wrote from a calendar this resource
    took over."""

    calendar_id: str
    event_id: str


@dataclass(frozen=True, slots=True)
class StopChannelPayload:
    """Stop a push-notification channel Google may still hold, with the
    credentials that opened it (sealed)."""

    channel_id: str
    channel_resource: str
    refresh_token: str


@dataclass(frozen=True, slots=True)
class MailPayload:
    """A plain notice e-mail to a resource's owner: either ``notice`` (a
    ``gateway.core.mirror.Notice`` value) with its ``values``, worded when
    sent in the resource's language, or a ready ``subject`` and ``text``."""

    to: str
    to_name: str = ""
    notice: str = ""
    values: Mapping[str, str] = field(default_factory=dict)
    subject: str = ""
    text: str = ""

    def __post_init__(self) -> None:
        if not self.notice and not self.subject:
            raise ValueError("a notice e-mail needs a notice or a subject")


@dataclass(frozen=True, slots=True)
class ResourceReplyPayload:
    """A resource's iMIP REPLY (RFC 5546 3.2.3) to the external organizer
    of the item's booking, which invited it (``gateway.core.
    resource_invitations``): the answer as given, so the mail says it even
    after later changes. ``partstat``: ACCEPTED or DECLINED; ``statuses``:
    the REQUEST-STATUS values; ``start``/``end``: the span asked for (ISO
    8601, UTC)."""

    uid: str
    sequence: int
    organizer: str
    attendee: str
    partstat: str
    statuses: tuple[str, ...]
    title: str
    start: str
    end: str


@dataclass(frozen=True, slots=True)
class UnreadablePayload:
    """A stored record that fits no payload type: ``kind`` and ``text`` as
    stored, ``problem`` what does not fit. Only the store makes these."""

    kind: str
    text: str
    problem: str


Payload = (
    InvitationPayload
    | GooglePushPayload
    | GoogleRemovePayload
    | StopChannelPayload
    | MailPayload
    | ResourceReplyPayload
    | UnreadablePayload
)

PAYLOAD_TYPES: Mapping[OutboxKind, type[Payload]] = {
    OutboxKind.INVITATION: InvitationPayload,
    OutboxKind.GOOGLE_PUSH: GooglePushPayload,
    OutboxKind.GOOGLE_REMOVE: GoogleRemovePayload,
    OutboxKind.GOOGLE_STOP_CHANNEL: StopChannelPayload,
    OutboxKind.MAIL: MailPayload,
    OutboxKind.RESOURCE_REPLY: ResourceReplyPayload,
}
_KINDS: Mapping[type[Payload], OutboxKind] = {t: k for k, t in PAYLOAD_TYPES.items()}


def kind_of(payload: Payload) -> str:
    """The outbox kind a payload is stored under."""
    if isinstance(payload, UnreadablePayload):
        return payload.kind
    return _KINDS[type(payload)].value
