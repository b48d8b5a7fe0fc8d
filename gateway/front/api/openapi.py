"""The OpenAPI 3.1 document, built from the same pydantic models the handlers use."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from gateway import __version__
from gateway.core.instants import EARLIEST, LATEST
from gateway.web.json_body import MAX_DEPTH, MAX_NUMBER_LENGTH

from .handlers import (
    CALENDAR_MEDIA_TYPE,
    DEFAULT_LOG_LIMIT,
    DEFAULT_OUTBOX_LIMIT,
    MAX_LOG_LIMIT,
    MAX_OUTBOX_LIMIT,
    MESSAGE_MEDIA_TYPE,
)
from .schemas import (
    Availability,
    BookingCreate,
    BookingList,
    BookingOut,
    BookingPatch,
    GoogleInviteOut,
    ImportReportOut,
    InvitationResent,
    OutboxEntryOut,
    OutboxList,
    Problem,
    ReplyResults,
    ResourceList,
    ResourceOut,
    SyncLog,
    SyncStatusList,
)

_MODELS: list[type[BaseModel]] = [
    Availability,
    BookingCreate,
    BookingList,
    BookingOut,
    BookingPatch,
    GoogleInviteOut,
    ImportReportOut,
    InvitationResent,
    OutboxEntryOut,
    OutboxList,
    Problem,
    ReplyResults,
    ResourceList,
    ResourceOut,
    SyncLog,
    SyncStatusList,
]


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": _ref(model)}}}


def _answer(description: str, model: type[BaseModel]) -> dict[str, Any]:
    return {"description": description, **_json_body(model)}


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": _ref(Problem)}},
    }


def _param(
    name: str,
    where: str,
    description: str,
    required: bool = True,
    schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": required,
        "description": description,
        "schema": schema or {"type": "string", "minLength": 1},
    }


_DATE_TIME = {"type": "string", "format": "date-time"}
_RESOURCE_ID_SCHEMA = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$"}
_WINDOW_PROBLEM = (
    f"Missing or malformed start/end, or outside the years {EARLIEST.year} to {LATEST.year - 1}"
)
_BOOKING_ID = _param("booking_id", "path", "Booking id")
_RESOURCE_ID = _param("resource_id", "path", "Resource id", schema=_RESOURCE_ID_SCHEMA)
_OUTBOX_ID = _param("item_id", "path", "Outbox item id", schema={"type": "integer", "minimum": 1})
_COMMON_ERRORS = {"401": _problem("No or wrong credentials")}
# gateway.core.freshness: a resource whose when_stale is refuse.
_STALE_BUSY_TIME = (
    "The resource's busy time from Google is older than google.freshness_seconds and Google "
    "could not be asked in time; nothing was saved (Retry-After)"
)
# What any request with a JSON body may be refused with before its meaning is read.
_BODY_ERRORS = {
    "400": _problem(
        f"Malformed JSON, not a JSON object, nested deeper than {MAX_DEPTH} levels, or a "
        f"number longer than {MAX_NUMBER_LENGTH} characters"
    ),
    "413": _problem("Body larger than server.max_body_bytes"),
    "415": _problem("Body is not application/json"),
    "422": _problem("Invalid field (named in errors[].field)"),
}


def build_openapi() -> dict[str, Any]:
    _, defs = models_json_schema(
        [(m, "serialization") for m in _MODELS], ref_template="#/components/schemas/{model}"
    )
    window = [
        _param(
            "start",
            "query",
            "ISO 8601 date-time with offset (encode '+' as %2B)",
            schema=_DATE_TIME,
        ),
        _param("end", "query", "ISO 8601 date-time with offset, after start", schema=_DATE_TIME),
    ]
    paths: dict[str, Any] = {
        "/resources": {
            "get": {
                "summary": "Resources the caller may see",
                "responses": {"200": _answer("Resources", ResourceList), **_COMMON_ERRORS},
            }
        },
        "/resources/{resource_id}": {
            "get": {
                "summary": "One resource",
                "parameters": [_RESOURCE_ID],
                "responses": {
                    "200": _answer("The resource", ResourceOut),
                    "404": _problem("Unknown resource"),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/resources/{resource_id}/availability": {
            "get": {
                "summary": "Busy intervals of a resource in a window",
                "parameters": [_RESOURCE_ID, *window],
                "responses": {
                    "200": _answer("Merged busy intervals", Availability),
                    "400": _problem(_WINDOW_PROBLEM),
                    "404": _problem("Unknown resource"),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/resources/{resource_id}/google/invite": {
            "post": {
                "summary": "Invite the resource to connect a Google calendar (one-time link)",
                "description": "Makes a new one-time /google/connect/... link and, when mail "
                "is configured, queues it as an e-mail to the resource's address. A "
                "connected resource may be invited again to reconnect; its connection "
                "stays until the new consent completes. No body.",
                "parameters": [_RESOURCE_ID],
                "responses": {
                    "201": _answer("The invitation link", GoogleInviteOut),
                    "403": _problem("Read-only access"),
                    "404": _problem("Unknown resource"),
                    "409": _problem(
                        "Google is not configured, or the resource's google direction is off"
                    ),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/resources/{resource_id}/google": {
            "delete": {
                "summary": "Disconnect the resource from Google",
                "description": "Forgets the refresh token, stops the push channel and "
                "stops mirroring; the gateway's bookings stay. Succeeds also "
                "when nothing was connected.",
                "parameters": [_RESOURCE_ID],
                "responses": {
                    "204": {"description": "Disconnected (or was not connected)"},
                    "403": _problem("Read-only access"),
                    "404": _problem("Unknown resource"),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/resources/{resource_id}/import": {
            "post": {
                "summary": "Import a calendar file (.ics export) into the resource's calendar",
                "description": "Splits the file by UID and stores each object as a CalDAV "
                "PUT would (valid data, a UID of its own, no double booking), as the file "
                "wrote it. An object whose UID is already in the calendar replaces it, so "
                "sending the same file again changes nothing (every object 'unchanged'). "
                "Nothing is mailed. Needs read-write access. The answer lists every object.",
                "parameters": [
                    _RESOURCE_ID,
                    _param(
                        "dry_run",
                        "query",
                        "true: say what would happen, write nothing",
                        required=False,
                        schema={"type": "boolean", "default": False},
                    ),
                ],
                "requestBody": {
                    "required": True,
                    "content": {
                        CALENDAR_MEDIA_TYPE: {
                            "schema": {"type": "string", "description": "An iCalendar file"}
                        }
                    },
                },
                "responses": {
                    "200": _answer("Dry run: what would happen to each object", ImportReportOut),
                    "201": _answer("What happened to each object", ImportReportOut),
                    "400": _problem("Malformed dry_run, or a body that is not text"),
                    "403": _problem("Read-only access"),
                    "404": _problem("Unknown resource"),
                    "413": _problem("Body larger than server.max_import_bytes"),
                    "415": _problem("Body is not text/calendar"),
                    "422": _problem("No calendar structure to split (nothing was imported)"),
                    "503": _problem("Too many heavy requests at once (Retry-After)"),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/resources/{resource_id}/sync/log": {
            "get": {
                "summary": "The Google sync log of a resource, newest first",
                "parameters": [
                    _RESOURCE_ID,
                    _param(
                        "limit",
                        "query",
                        "Entries per page",
                        required=False,
                        schema={
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_LOG_LIMIT,
                            "default": DEFAULT_LOG_LIMIT,
                        },
                    ),
                    _param(
                        "before",
                        "query",
                        "Only entries with a smaller id (next_before of the previous page)",
                        required=False,
                        schema={"type": "integer", "minimum": 1},
                    ),
                ],
                "responses": {
                    "200": _answer("One page of the log", SyncLog),
                    "400": _problem("limit or before is not an integer in range"),
                    "404": _problem("Unknown resource"),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/sync/status": {
            "get": {
                "summary": "Google mirror status of every resource the caller may see",
                "responses": {
                    "200": _answer("One entry per resource", SyncStatusList),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/bookings": {
            "get": {
                "summary": "Bookings overlapping a window (default: next 30 days)",
                "parameters": [
                    _param(
                        "resource",
                        "query",
                        "Resource id; without it, every resource the caller may see",
                        required=False,
                        schema=_RESOURCE_ID_SCHEMA,
                    ),
                    *[{**p, "required": False} for p in window],
                ],
                "responses": {
                    "200": _answer("Bookings by start time", BookingList),
                    "400": _problem(
                        "Missing or malformed query parameter, or unknown resource; "
                        + _WINDOW_PROBLEM.lower()
                    ),
                    **_COMMON_ERRORS,
                },
            },
            "post": {
                "summary": "Book a resource",
                "parameters": [
                    _param(
                        "Idempotency-Key",
                        "header",
                        "Retries with the same key return the first booking",
                        required=False,
                    )
                ],
                "requestBody": {"required": True, **_json_body(BookingCreate)},
                "responses": {
                    "201": _answer("Booked", BookingOut),
                    **_BODY_ERRORS,
                    "403": _problem("Read-only access"),
                    "409": _problem("The time overlaps a booking or busy block"),
                    "503": _problem(_STALE_BUSY_TIME),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/bookings/{booking_id}": {
            "get": {
                "summary": "One booking",
                "parameters": [_BOOKING_ID],
                "responses": {
                    "200": _answer("The booking", BookingOut),
                    "404": _problem("Unknown booking"),
                    **_COMMON_ERRORS,
                },
            },
            "patch": {
                "summary": "Reschedule or edit a booking (SEQUENCE grows)",
                "parameters": [_BOOKING_ID],
                "requestBody": {"required": True, **_json_body(BookingPatch)},
                "responses": {
                    "200": _answer("The updated booking", BookingOut),
                    **_BODY_ERRORS,
                    "403": _problem("Read-only access, or a busy block imported from Google"),
                    "404": _problem("Unknown booking"),
                    "409": _problem("The new time overlaps a booking or busy block"),
                    "503": _problem(_STALE_BUSY_TIME),
                    **_COMMON_ERRORS,
                },
            },
            "delete": {
                "summary": "Cancel a booking (kept with status cancelled)",
                "parameters": [_BOOKING_ID],
                "responses": {
                    "200": _answer("The cancelled booking", BookingOut),
                    "403": _problem("Read-only access, or a busy block imported from Google"),
                    "404": _problem("Unknown booking"),
                    **_COMMON_ERRORS,
                },
            },
        },
        "/itip": {
            "post": {
                "summary": "Hand over bookers' answers (iTIP REPLY) to invitations",
                "description": "For a mail provider's inbound webhook or a mail relay: "
                "the answers that came back to the organizer address (mail.from_address). "
                f"Send one iTIP REPLY (RFC 5546 3.2.3) as {CALENDAR_MEDIA_TYPE}, or the "
                f"whole e-mail as received as {MESSAGE_MEDIA_TYPE} (iMIP, RFC 6047), whose "
                "calendar parts and attachments are read; other iTIP messages in it (a "
                "quoted REQUEST) are skipped. A reply updates the participation status of "
                "the booking's attendee when it names the booking's UID, one of its "
                "attendees and its current SEQUENCE; anything else (a stale SEQUENCE, an "
                "unknown UID, a cancelled booking) is logged in the resource's sync log "
                "and answered with applied: false and the reason, not as an error. "
                "Needs read-write access to the resource of every booking answered.",
                "requestBody": {
                    "required": True,
                    "content": {
                        CALENDAR_MEDIA_TYPE: {
                            "schema": {"type": "string", "description": "METHOD:REPLY"}
                        },
                        MESSAGE_MEDIA_TYPE: {
                            "schema": {"type": "string", "description": "An RFC 5322 message"}
                        },
                    },
                },
                "responses": {
                    "200": _answer("What became of each reply", ReplyResults),
                    "400": _problem(
                        "No usable REPLY in the body (the problem is named), or text not "
                        "in its declared charset"
                    ),
                    "403": _problem("Read-only access to the resource of an answered booking"),
                    "413": _problem("Body larger than server.max_body_bytes"),
                    "415": _problem(
                        f"Body is neither {CALENDAR_MEDIA_TYPE} nor {MESSAGE_MEDIA_TYPE}"
                    ),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/outbox": {
            "get": {
                "summary": "Queued side effects (e-mails, Google writes) of the caller's resources",
                "description": "Items not done yet (oldest first) and items closed as failed "
                "(newest first), of the resources the caller has read-write access to.",
                "parameters": [
                    _param(
                        "state",
                        "query",
                        "pending: not done yet; failed: closed as failed; both when absent",
                        required=False,
                        schema={"type": "string", "enum": ["pending", "failed"]},
                    ),
                    _param(
                        "limit",
                        "query",
                        "Most items to list",
                        required=False,
                        schema={
                            "type": "integer",
                            "minimum": 1,
                            "maximum": MAX_OUTBOX_LIMIT,
                            "default": DEFAULT_OUTBOX_LIMIT,
                        },
                    ),
                ],
                "responses": {
                    "200": _answer("The items", OutboxList),
                    "400": _problem("state is not pending or failed, or limit out of range"),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/outbox/{item_id}/retry": {
            "post": {
                "summary": "Run an outbox item now",
                "description": "A pending item is made due now; a failed one is reopened "
                "and due now (its attempts and last error kept). The server's outbox "
                "worker runs it at once. No body.",
                "parameters": [_OUTBOX_ID],
                "responses": {
                    "200": _answer("The item after the change", OutboxEntryOut),
                    "403": _problem("Read-only access to the item's resource"),
                    "404": _problem("No such item (or of a resource the caller may not see)"),
                    "409": _problem("The item is done already"),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/outbox/{item_id}/give-up": {
            "post": {
                "summary": "Close a pending outbox item as failed, without its effect",
                "description": "The item never runs; its reason says who gave it up. No body.",
                "parameters": [_OUTBOX_ID],
                "responses": {
                    "200": _answer("The item after the change", OutboxEntryOut),
                    "403": _problem("Read-only access to the item's resource"),
                    "404": _problem("No such item (or of a resource the caller may not see)"),
                    "409": _problem(
                        "The item is done or failed already, or its effect has started "
                        "(it may have happened)"
                    ),
                    **_COMMON_ERRORS,
                },
            }
        },
        "/bookings/{booking_id}/invitation": {
            "post": {
                "summary": "Send the booking's invitation again",
                "description": "Queues the invitation (current SEQUENCE) to every attendee "
                "who has not declined. No body.",
                "parameters": [_BOOKING_ID],
                "responses": {
                    "202": _answer("Queued", InvitationResent),
                    "403": _problem("Read-only access to the booking's resource"),
                    "404": _problem("Unknown booking"),
                    "409": _problem(
                        "Invitations are off (no mail settings), the booking is cancelled, "
                        "or it has no attendee left to invite"
                    ),
                    **_COMMON_ERRORS,
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "calgateway booking API", "version": __version__},
        "servers": [{"url": "/api/v1"}],
        "security": [{"basic": []}, {"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    }
