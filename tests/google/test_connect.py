"""Connecting a resource's Google calendar: invitation, OAuth consent with
PKCE and state, calendar choice, confirmation, takeover."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

import pytest

from fake_google import oauth as fake_oauth
from fake_google.calendar import FakeGoogle
from gateway.core.mirror import ConnectionStatus
from gateway.core.mirror_admin import InviteInvalid, InviteProblem, hash_invite_token
from gateway.store.rows import utc_text
from google_bridge.client import EventMissing
from google_bridge.errors import (
    GoogleRequestError,
    GoogleUnavailable,
    QuotaExceeded,
    ReconnectNeeded,
)
from google_bridge.oauth import CodeRefused, NoRefreshToken, TokenEndpointUnavailable
from google_bridge.tokens import TokenKeyMismatch
from google_bridge.web import Step, failure_of
from tests.backends import Store
from tests.dbcheck import write_directly
from tests.google.harness import Gateway, running_gateway
from tests.google.test_mirror import ANNA
from tests.smtp import Recorder


async def test_invite_consent_choose_and_import(gateway: Gateway) -> None:
    fake = gateway.fake
    fake.add_account("anna.google@example.com", time_zone="Europe/Berlin")
    second = fake.add_calendar("anna.google@example.com", "Work")
    assert await gateway.status("anna") is ConnectionStatus.NOT_INVITED

    page = await gateway.consent("anna", "anna.google@example.com")
    assert await gateway.status("anna") is ConnectionStatus.INVITED
    assert "anna.google@example.com" in page
    assert second in page and "Work" in page

    done = await gateway.choose(page, second)
    assert "connected" in done
    await gateway.settle()
    assert await gateway.status("anna") is ConnectionStatus.SYNCED
    status = await gateway.admin.status("anna")
    assert status.connection.calendar_id == second
    assert status.connection.account == "anna.google@example.com"
    subjects = [str(m["Subject"]) for m in gateway.mail.to("anna@example.com")]
    assert subjects == ["Connect your Google Calendar", "Google Calendar connected"]


# --- every way the flow can fail ends on a page that says what to do ----------------


class Page(NamedTuple):
    status: int
    text: str
    retry_after: str | None


async def fetch(gateway: Gateway, url: str, form: dict[str, str] | None = None) -> Page:
    method = "POST" if form is not None else "GET"
    async with gateway.http.request(method, url, data=form) as response:
        return Page(response.status, await response.text(), response.headers.get("Retry-After"))


async def to_callback(
    gateway: Gateway, resource: str, account: str, scopes: list[str] | None = None
) -> str:
    """Open a fresh invitation link and consent at Google as ``account``;
    returns the callback address Google sends the browser to, not yet opened."""
    if account not in gateway.fake.store.accounts:
        gateway.fake.add_account(account, time_zone="Europe/Berlin")
    gateway.fake.consent_as(account, scopes=scopes)
    link = await gateway.invite_url(resource)
    async with gateway.http.get(link, allow_redirects=False) as to_google:
        assert to_google.status == 302
        consent = to_google.headers["Location"]
    async with gateway.http.get(consent, allow_redirects=False) as back:
        assert back.status == 302
        return back.headers["Location"]


async def choose(gateway: Gateway, page: str, calendar_id: str) -> Page:
    state = re.search(r'name="state" value="([^"]+)"', page)
    assert state is not None, page
    form = {"state": state[1], "calendar_id": calendar_id}
    return await fetch(gateway, f"{gateway.url}/google/choose", form)


def says(page: Page, status: int, *words: str) -> None:
    """A clear page: the expected status (never a 500), each word in it."""
    assert page.status == status, (page.status, page.text)
    assert "<h1>" in page.text and "Traceback" not in page.text
    for word in words:
        assert word in page.text, (word, page.text)
    if status == 503:
        assert page.retry_after is not None and int(page.retry_after) > 0


async def expire(gateway: Gateway, *, link: str = "", callback: str = "") -> None:
    """Let the invitation of a link (or of a consent under way) run out. The
    store never changes an invitation's expiry, so its row is edited."""
    if link:
        invite = await gateway.repo.get_invite(hash_invite_token(link.rsplit("/", 1)[1]))
    else:
        state = parse_qs(urlsplit(callback).query)["state"][0]
        invite = await gateway.repo.invite_by_state(state)
    assert invite is not None
    past = utc_text(datetime.now(UTC) - timedelta(minutes=1))

    await write_directly(
        gateway.store,
        "UPDATE google_invites SET expires_at = ? WHERE token_hash = ?",
        (past, invite.token_hash),
    )


FAILURES: list[tuple[BaseException, Step, int, str]] = [
    (
        InviteInvalid("expired", InviteProblem.EXPIRED, "anna"),
        Step.CALLBACK,
        400,
        "This link has expired; ask for a new invitation.",
    ),
    (
        CodeRefused("Google refused the authorization code: 400 invalid_grant", "invalid_grant"),
        Step.CALLBACK,
        400,
        "open the invitation link again",
    ),
    (NoRefreshToken("Google sent no refresh token; remove ..."), Step.CALLBACK, 400, "Remove"),
    (TokenEndpointUnavailable("timed out"), Step.CALLBACK, 503, "open the invitation link again"),
    (GoogleUnavailable("calendarList.list: 503"), Step.CALLBACK, 503, "in a few minutes"),
    (GoogleUnavailable("calendarList.list: 503"), Step.CHOOSE, 503, "calendar choice"),
    (QuotaExceeded("quota"), Step.CALLBACK, 503, "in an hour"),
    (ReconnectNeeded("invalid_grant"), Step.CALLBACK, 400, "open the invitation link again"),
    (TokenKeyMismatch("no key"), Step.CHOOSE, 400, "open the invitation link again"),
    (
        GoogleRequestError(403, "insufficientPermissions", "Request had insufficient scopes"),
        Step.CALLBACK,
        400,
        "allow every calendar permission",
    ),
    (GoogleRequestError(400, "invalid", "Invalid value"), Step.CALLBACK, 503, "administrator"),
    (EventMissing(404), Step.CHOOSE, 503, "administrator"),
]


@pytest.mark.parametrize(("error", "step", "status", "words"), FAILURES)
def test_failure_of_every_error_is_a_clear_page(
    error: BaseException, step: Step, status: int, words: str
) -> None:
    failure = failure_of(error, step)
    assert (failure.status, words in failure.text) == (status, True), failure
    assert failure.text.endswith(".") and failure.title
    assert (failure.retry_after is not None) == (status == 503)


async def test_expired_invitation_link(gateway: Gateway) -> None:
    link = await gateway.invite_url("anna")
    await expire(gateway, link=link)
    says(await fetch(gateway, link), 410, "expired", "ask for a new invitation")


async def test_invitation_expires_during_consent(gateway: Gateway) -> None:
    back = await to_callback(gateway, "anna", ANNA)
    await expire(gateway, callback=back)
    says(await fetch(gateway, back), 400, "expired", "ask for a new invitation")


async def test_unknown_state_on_the_callback(gateway: Gateway) -> None:
    says(
        await fetch(gateway, f"{gateway.url}/google/callback?state=forged&code=4/0Ax"),
        400,
        "not valid",
        "ask for a new invitation",
    )


async def test_google_errors_instead_of_a_code(gateway: Gateway) -> None:
    back = await to_callback(gateway, "anna", ANNA)
    state = parse_qs(urlsplit(back).query)["state"][0]
    callback = f"{gateway.url}/google/callback?state={state}"
    says(await fetch(gateway, callback + "&error=temporarily_unavailable"), 503, "few minutes")
    says(await fetch(gateway, callback + "&error=invalid_scope"), 400, "invitation link again")


async def test_reloaded_callback_says_start_again(gateway: Gateway) -> None:
    back = await to_callback(gateway, "anna", ANNA)
    says(await fetch(gateway, back), 200, "Choose a calendar")
    says(await fetch(gateway, back), 400, "Start again", "invitation link again")


async def test_code_refused_by_google(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    """Google answers invalid_grant for a code older than its lifetime (the
    person left the consent page open): here every code is too old."""
    back = await to_callback(gateway, "anna", ANNA)
    monkeypatch.setattr(fake_oauth, "CODE_LIFETIME", -1)
    says(await fetch(gateway, back), 400, "Sign-in expired", "open the invitation link again")
    assert await gateway.status("anna") is ConnectionStatus.INVITED


async def test_token_endpoint_failing_is_a_503(gateway: Gateway) -> None:
    back = await to_callback(gateway, "anna", ANNA)
    gateway.fake.fail_next(1, 503, "backendError", target="token")
    says(await fetch(gateway, back), 503, "could not be reached", "invitation link again")
    assert await gateway.status("anna") is ConnectionStatus.INVITED


async def test_calendar_list_failing_is_a_503(gateway: Gateway) -> None:
    back = await to_callback(gateway, "anna", ANNA)
    gateway.fake.fail_next(3, 503, "backendError", method="GET")  # every retry
    says(await fetch(gateway, back), 503, "could not be reached")

    back = await to_callback(gateway, "anna", ANNA)
    gateway.fake.fail_next(1, 403, "quotaExceeded", method="GET")
    says(await fetch(gateway, back), 503, "quota", "in an hour")
    assert await gateway.status("anna") is ConnectionStatus.INVITED


async def test_calendar_permissions_unticked(gateway: Gateway) -> None:
    # The person unticked "see your calendar list" on Google's page.
    events_only = ["https://www.googleapis.com/auth/calendar.events"]
    back = await to_callback(gateway, "anna", ANNA, scopes=events_only)
    says(await fetch(gateway, back), 400, "allow every calendar permission")


async def test_chosen_calendar_deleted_before_the_choice(gateway: Gateway) -> None:
    fake = gateway.fake
    fake.add_account(ANNA, time_zone="Europe/Berlin")
    work = fake.add_calendar(ANNA, "Work")
    choice = await fetch(gateway, await to_callback(gateway, "anna", ANNA))
    assert work in choice.text
    fake.delete_calendar(work)  # in another tab, while the choice page is open

    again = await choose(gateway, choice.text, work)
    says(again, 409, "no longer in your Google account", "Choose another one", ANNA)
    assert work not in again.text  # the choice offered now is what exists now
    assert await gateway.status("anna") is ConnectionStatus.INVITED

    done = await choose(gateway, again.text, ANNA)
    says(done, 200, "is connected")
    gateway.calendars["anna"] = ANNA
    await gateway.settle()
    assert await gateway.status("anna") is ConnectionStatus.SYNCED


async def test_chosen_calendar_no_longer_writable(gateway: Gateway) -> None:
    fake = gateway.fake
    fake.add_account("owner@example.com")
    shared = fake.add_calendar("owner@example.com", "Salon")
    fake.add_account(ANNA, time_zone="Europe/Berlin")
    fake.share_calendar(shared, ANNA, "writer")
    choice = await fetch(gateway, await to_callback(gateway, "anna", ANNA))
    assert "Salon" in choice.text
    fake.share_calendar(shared, ANNA, "reader")  # the owner takes the right back

    says(await choose(gateway, choice.text, shared), 409, "no longer make changes", "Salon")
    assert await gateway.status("anna") is ConnectionStatus.INVITED


async def test_choice_sent_twice(gateway: Gateway) -> None:
    choice = await fetch(gateway, await to_callback(gateway, "anna", ANNA))
    says(await choose(gateway, choice.text, ANNA), 200, "is connected")
    says(await choose(gateway, choice.text, ANNA), 400, "already used", "new invitation")


async def test_google_unreachable_at_each_step(
    tmp_path: Path, store: Store, fake: FakeGoogle, mail: tuple[Recorder, int]
) -> None:
    """Google answers slower than google.request_timeout: at the code
    exchange, and when the choice is sent."""
    async with running_gateway(
        tmp_path, store, fake, mail, google="  request_timeout: 0.3\n"
    ) as gw:
        back = await to_callback(gw, "anna", ANNA)
        fake.latency = 1.0
        says(await fetch(gw, back), 503, "could not be reached", "invitation link again")

        fake.latency = 0.0
        choice = await fetch(gw, await to_callback(gw, "anna", ANNA))
        fake.latency = 1.0
        says(await choose(gw, choice.text, ANNA), 503, "could not be reached", "calendar choice")
        fake.latency = 0.0
        says(await choose(gw, choice.text, ANNA), 200, "is connected")
