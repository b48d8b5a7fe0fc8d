"""The outbox page: side effects not done yet and those that failed, what
each is, its attempts and last error; "retry now" and "give up" are
``AdminActions.retry_outbox_now`` and ``give_up_outbox``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.core.admin_actions import ActionRefused, AdminActions, OutboxEntry
from gateway.core.errors import NotFound
from gateway.web.keys import ADMIN_ACTIONS, CLOCK, SETTINGS

from .. import guard
from ..guard import Flash
from ..wording import utc_text
from .render import console_page, done, not_found

OUTBOX_PATH = f"{guard.HOME}outbox"
SHOWN = 200


def _row(entry: OutboxEntry, names: dict[str, str], now_text: str) -> dict[str, object]:
    return {
        "id": entry.id,
        "description": entry.description,
        "resource": names.get(entry.resource_id, entry.resource_id),
        "resource_id": entry.resource_id,
        "state": entry.state,
        "attempts": entry.attempts,
        "last_error": entry.last_error or "",
        "created": utc_text(entry.created),
        "next_attempt": utc_text(entry.next_attempt) if entry.next_attempt else now_text,
        "failed_at": utc_text(entry.failed_at),
        "can_give_up": entry.state == "pending",
    }


async def outbox_page(request: web.Request) -> web.StreamResponse:
    actions = request.config_dict[ADMIN_ACTIONS]
    names = {r.id: r.name for r in request.config_dict[SETTINGS].resources}
    now = request.config_dict[CLOCK]()
    pending = await actions.outbox("pending", SHOWN)
    failed = await actions.outbox("failed", SHOWN)
    return await console_page(
        request,
        "outbox.html",
        "Outbox",
        {
            "pending": [_row(e, names, "now") for e in pending],
            "failed": [_row(e, names, "") for e in failed],
            "shown": SHOWN,
            "checked": utc_text(now),
        },
    )


def _item_id(request: web.Request) -> int | None:
    raw = request.match_info["item_id"]
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


async def retry(request: web.Request) -> web.StreamResponse:
    return await _act(
        request,
        lambda actions, item_id, by: actions.retry_outbox_now(item_id, by=by),
        "Item %(id)s (%(what)s) will be tried again now.",
    )


async def give_up(request: web.Request) -> web.StreamResponse:
    return await _act(
        request,
        lambda actions, item_id, by: actions.give_up_outbox(item_id, by=by),
        "Item %(id)s (%(what)s) was given up; it will not run.",
    )


async def _act(
    request: web.Request,
    action: Callable[[AdminActions, int, str], Awaitable[OutboxEntry]],
    said: str,
) -> web.StreamResponse:
    """One action on one item, then back to the outbox with what happened."""
    item_id = _item_id(request)
    if item_id is None:
        return not_found(request, "such outbox item")
    by = guard.session_of(request).user
    try:
        entry = await action(request.config_dict[ADMIN_ACTIONS], item_id, by)
    except NotFound:
        return not_found(request, f"outbox item {item_id}")
    except ActionRefused as refused:
        return await done(request, OUTBOX_PATH, Flash("error", refused.message))
    message = said % {"id": entry.id, "what": entry.description}
    return await done(request, OUTBOX_PATH, Flash("done", message))
