"""Errors as RFC 9457 ``application/problem+json`` answers naming the field."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import ValidationError

from gateway.core.admin_actions import ActionRefused
from gateway.core.errors import (
    BookingConflict,
    BusyTimeUnverified,
    ExpansionLimit,
    IdempotencyKeyReused,
    ImportedObject,
    InvalidBooking,
    NotFound,
    StorageFull,
    UidConflict,
)
from gateway.core.mirror_admin import MirrorDisabled
from gateway.web.keys import METRICS
from gateway.web.responses import UID_CONFLICT_REASON, conflict_reason

from .schemas import FieldError, Problem, SpanOut

PROBLEM_JSON = "application/problem+json"


class ApiProblem(Exception):
    """Raised by handlers to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        errors: Sequence[FieldError] = (),
        conflicts: Sequence[SpanOut] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.problem = Problem(
            title=title,
            status=status,
            detail=detail,
            errors=list(errors),
            conflicts=list(conflicts),
        )
        self.headers = headers or {}


def invalid(field: str, message: str, status: int = 422) -> ApiProblem:
    return ApiProblem(
        status, "Invalid request", f"{field}: {message}", [FieldError(field=field, message=message)]
    )


def from_validation_error(exc: ValidationError, prefix: str = "") -> ApiProblem:
    errors = [
        FieldError(field=_field_path(prefix, err["loc"]), message=_message(err))
        for err in exc.errors()
    ]
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return ApiProblem(422, "Invalid request", detail, errors)


def _field_path(prefix: str, loc: Sequence[int | str]) -> str:
    parts = [prefix] if prefix else []
    parts += [str(p) for p in loc]
    return ".".join(parts) or "body"


def _message(err: Any) -> str:
    kind = err.get("type")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "timezone_aware":
        return "needs a UTC offset or zone (naive times are ambiguous)"
    if kind == "missing":
        return "is required"
    return str(err.get("msg", "is invalid"))


def _respond(
    problem: Problem, headers: dict[str, str] | None = None, reason: str | None = None
) -> web.Response:
    return web.json_response(
        problem.model_dump(mode="json", exclude_defaults=False),
        status=problem.status,
        reason=reason,
        content_type=PROBLEM_JSON,
        headers=headers,
    )


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Maps core errors and aiohttp's own errors to problem documents."""
    try:
        return await handler(request)
    except ApiProblem as exc:
        return _respond(exc.problem, exc.headers)
    except InvalidBooking as exc:
        return _respond(invalid(exc.field, exc.message).problem)
    except NotFound as exc:
        return _respond(Problem(title="Not found", status=404, detail=str(exc)))
    except BookingConflict as exc:
        request.config_dict[METRICS].conflicts.inc()
        return _respond(
            Problem(
                title="Booking conflict",
                status=409,
                detail=str(exc),
                conflicts=[SpanOut.of(s) for s in exc.conflicts],
            ),
            # As CalDAV's 409: the first span in the status line as well.
            reason=conflict_reason(exc),
        )
    except IdempotencyKeyReused as exc:
        return _respond(
            Problem(
                title="Idempotency key reused",
                status=422,
                detail=str(exc),
                errors=[FieldError(field="Idempotency-Key", message="used for another request")],
            )
        )
    except UidConflict as exc:
        # UIDs are unique across the gateway; the message names no object of
        # a calendar the caller may not see.
        return _respond(
            Problem(title="UID conflict", status=409, detail=str(exc)), reason=UID_CONFLICT_REASON
        )
    except StorageFull as exc:
        # 503, not 507: the API is no WebDAV, and the condition passes once
        # space is freed (RFC 9110 15.6.4: Retry-After says when to come back).
        return _respond(
            Problem(title="Storage full", status=503, detail=exc.message),
            {"Retry-After": str(exc.retry_after)},
        )
    except BusyTimeUnverified as exc:
        # The resource's busy time from Google could not be brought up to
        # date and its when_stale is refuse: temporary (RFC 9110 15.6.4).
        return _respond(
            Problem(title="Busy time from Google not current", status=503, detail=exc.message),
            {"Retry-After": str(exc.retry_after)},
        )
    except ExpansionLimit as exc:
        # A stored recurring event too large to expand within the limits
        # (settings limits): the answer cannot be given, and guessing it
        # could double-book. 507 as CalDAV says it (RFC 4918 11.5).
        return _respond(Problem(title="Calendar too large to check", status=507, detail=str(exc)))
    except ImportedObject as exc:
        # The busy block mirrors a Google event: it changes there, or the next
        # sync would undo the change (403: understood, not allowed here).
        return _respond(Problem(title="Imported from Google", status=403, detail=str(exc)))
    except ActionRefused as exc:
        # The item or booking is not in a state the action applies to (an
        # item done already, a cancelled booking, mail switched off).
        return _respond(Problem(title="Not possible now", status=409, detail=exc.message))
    except MirrorDisabled as exc:
        # A state of the settings, not of the request: 409, with the reason
        # (no google section, or the resource's direction is off).
        return _respond(Problem(title="Google mirror disabled", status=409, detail=str(exc)))
    except web.HTTPRequestEntityTooLarge as exc:
        return _respond(Problem(title="Request too large", status=413, detail=exc.text or ""))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _respond(
            Problem(title=exc.reason, status=exc.status, detail=exc.text or exc.reason),
            {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")},
        )
