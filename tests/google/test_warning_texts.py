"""Every warning the admin reads is a sentence: what happened and what to do,
through the API (``GET /api/v1/sync/status``), the command (``calgateway
sync status``) and the sync log; never a Python repr of an exception (a
refused refresh token once showed google-auth's argument tuple)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest

from gateway.core.mirror import ConnectionStatus, WarningReason
from gateway.core.mirror_admin import warning_sentence
from tests.google.harness import Gateway
from tests.google.test_mirror import ANNA
from tests.test_cli import run

REPR_ARTEFACTS = ("('", "')", "{'", "'}", '{"', "\\n", "Error(")

# What each sentence must tell the admin: what happened, what to do.
SAYS: dict[WarningReason, tuple[str, ...]] = {
    WarningReason.RECONNECT: ("can no longer use its access", "calgateway google invite anna"),
    WarningReason.QUOTA: ("quota", "used up", "resumes by itself", " UTC"),
    WarningReason.CALENDAR_GONE: ("deleted", "calgateway google invite anna", "choose another"),
}


async def revoked(gateway: Gateway) -> None:
    await gateway.connect("anna", ANNA)
    gateway.fake.revoke(ANNA)  # the person removed our access in their Google account
    gateway.fake.expire_access_tokens()


async def quota_used_up(gateway: Gateway) -> None:
    await gateway.connect("anna", ANNA)
    gateway.fake.fail_next(1, 403, "quotaExceeded", method="GET")


async def calendar_deleted(gateway: Gateway) -> None:
    gateway.fake.add_account(ANNA, time_zone="Europe/Berlin")
    work = gateway.fake.add_calendar(ANNA, "Work")
    await gateway.connect("anna", ANNA, work)
    gateway.fake.delete_calendar(work)


CASES: dict[WarningReason, Callable[[Gateway], Awaitable[None]]] = {
    WarningReason.RECONNECT: revoked,
    WarningReason.QUOTA: quota_used_up,
    WarningReason.CALENDAR_GONE: calendar_deleted,
}


def test_every_reason_has_a_case() -> None:
    assert set(CASES) == set(WarningReason) == set(SAYS)


@pytest.mark.parametrize("reason", list(WarningReason))
def test_warning_sentence_is_plain_words(reason: WarningReason) -> None:
    for until in (None, datetime(2030, 1, 2, 3, 4, tzinfo=UTC)):
        text = warning_sentence("anna", reason, until)
        assert text[0].isupper() and text.endswith(".")
        assert "(" not in text and "_" not in text.replace("google.token_keys", "").replace(
            "google.poll_interval", ""
        )


@pytest.mark.parametrize("reason", list(WarningReason))
async def test_warning_reads_as_a_sentence_in_api_cli_and_log(
    gateway: Gateway, reason: WarningReason
) -> None:
    await CASES[reason](gateway)
    await gateway.bridge.worker.sync_now("anna")
    state = await gateway.admin.status("anna")
    assert state.connection.status is ConnectionStatus.WARNING
    assert state.connection.warning is reason

    status = await gateway.api("GET", "/sync/status", expect=200)
    anna = next(r for r in status["resources"] if r["resource"] == "anna")
    message = anna["warning"]["message"]
    summary = anna["summary"]
    assert anna["warning"]["reason"] == reason.value
    for text in (message, summary):
        assert "(" not in text, text
        for part in SAYS[reason]:
            assert part in text, (part, text)
    assert summary == f"warning: {reason.value.replace('_', ' ')}. {message}"

    cli = await asyncio.to_thread(run, "sync", "status", "--config", str(gateway.config))
    assert cli.returncode == 0, cli.stderr
    (row,) = [line for line in cli.stdout.splitlines() if line.startswith("anna ")]
    assert summary in row
    assert not [a for a in REPR_ARTEFACTS if a in row], row

    log = await asyncio.to_thread(run, "sync", "log", "anna", "--config", str(gateway.config))
    warning = next(line for line in log.stdout.splitlines() if "\twarning\t" in line)
    assert message in warning
    assert not [a for a in REPR_ARTEFACTS if a in warning], warning
    if reason is WarningReason.RECONNECT:
        # Google's own words stay available, as words.
        assert "Details: Google refused the refresh token: invalid_grant" in warning
