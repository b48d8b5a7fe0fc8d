"""The Google connect flow's pages in the resource's language (issue 15,
items 5 and 7): a resource whose settings say German gets every page of its
flow in German -- the failures, the calendar choice's notices and the
confirmation -- with the calendar's or Google's words filled in, through the
real app against the fake Google."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from fake_google.calendar import FakeGoogle
from gateway.core.mirror_admin import InviteInvalid, InviteProblem
from gateway.look.i18n import translate
from google_bridge.web import Step, failure_of
from tests.backends import Store
from tests.google.harness import RESOURCES, Gateway, running_gateway
from tests.google.test_connect import Page, choose, expire, fetch, says, to_callback
from tests.google.test_mirror import ANNA
from tests.smtp import Recorder

GERMAN_ANNA = RESOURCES.replace(
    "    timezone: Europe/Berlin\n", "    timezone: Europe/Berlin\n    language: de\n", 1
)


@pytest.fixture
async def gateway(
    tmp_path: Path, store: Store, fake: FakeGoogle, mail: tuple[Recorder, int]
) -> AsyncIterator[Gateway]:
    """Anna's pages in German; the default (and every other resource) English."""
    assert GERMAN_ANNA != RESOURCES
    async with running_gateway(tmp_path, store, fake, mail, resources=GERMAN_ANNA) as gw:
        yield gw


def german(page: Page, status: int, *words: str) -> None:
    says(page, status, *words)
    assert '<html lang="de">' in page.text
    assert "%(" not in page.text  # every placeholder filled


async def test_an_expired_link_of_a_german_resource_reads_german(gateway: Gateway) -> None:
    link = await gateway.invite_url("anna")
    await expire(gateway, link=link)
    german(
        await fetch(gateway, link),
        410,
        "<h1>Link ungültig oder abgelaufen</h1>",
        "Dieser Link ist abgelaufen; bitten Sie um eine neue Einladung.",
    )


async def test_a_link_naming_no_resource_reads_the_default_language(gateway: Gateway) -> None:
    page = await fetch(gateway, f"{gateway.url}/google/connect/no-such-invitation")
    says(page, 410, "This link is not valid; ask for a new invitation.")
    assert '<html lang="en">' in page.text


async def test_consent_refused_and_google_errors_read_german(gateway: Gateway) -> None:
    gateway.fake.add_account(ANNA, time_zone="Europe/Berlin")
    back = await to_callback(gateway, "anna", ANNA)
    state = parse_qs(urlsplit(back).query)["state"][0]
    callback = f"{gateway.url}/google/callback?state={state}"
    german(
        await fetch(gateway, callback + "&error=access_denied"),
        400,
        "<h1>Nicht verbunden</h1>",
        "Der Zugriff auf Google wurde nicht erteilt, daher wurde nichts verbunden.",
    )
    german(
        await fetch(gateway, callback + "&error=invalid_scope"),
        400,
        "Google hat die Anmeldung nicht abgeschlossen (invalid_scope)",
    )
    german(
        await fetch(gateway, callback + "&error=temporarily_unavailable"),
        503,
        "<h1>Google antwortet nicht</h1>",
        "in einigen Minuten erneut",
    )


async def test_google_unreachable_reads_german(gateway: Gateway) -> None:
    back = await to_callback(gateway, "anna", ANNA)
    gateway.fake.fail_next(1, 503, "backendError", target="token")
    german(
        await fetch(gateway, back),
        503,
        "Google war gerade nicht erreichbar, daher wurde nichts verbunden. Bitte öffnen Sie "
        "den Einladungslink in einigen Minuten erneut.",
    )


async def test_a_calendar_gone_then_one_connected_reads_german(gateway: Gateway) -> None:
    fake = gateway.fake
    fake.add_account(ANNA, time_zone="Europe/Berlin")
    work = fake.add_calendar(ANNA, "Arbeit")
    choice = await fetch(gateway, await to_callback(gateway, "anna", ANNA))
    german(choice, 200, "<h1>Kalender auswählen</h1>")
    fake.delete_calendar(work)

    again = await choose(gateway, choice.text, work)
    german(again, 409, "Der gewählte Kalender ist nicht mehr in Ihrem Google Konto")

    salon = fake.add_calendar(ANNA, "Salon")
    choice = await fetch(gateway, await to_callback(gateway, "anna", ANNA))
    done = await choose(gateway, choice.text, salon)
    german(done, 200, "<h1>Verbunden</h1>", "Ihr Kalender \u201eSalon\u201c ist verbunden.")


async def test_a_calendar_made_read_only_is_named_in_german(gateway: Gateway) -> None:
    fake = gateway.fake
    fake.add_account("owner@example.com")
    shared = fake.add_calendar("owner@example.com", "Salon")
    fake.add_account(ANNA, time_zone="Europe/Berlin")
    fake.share_calendar(shared, ANNA, "writer")
    choice = await fetch(gateway, await to_callback(gateway, "anna", ANNA))
    fake.share_calendar(shared, ANNA, "reader")
    german(
        await choose(gateway, choice.text, shared),
        409,
        "Sie dürfen Termine in \u201eSalon\u201c nicht mehr ändern",
    )


@pytest.mark.parametrize("problem", list(InviteProblem))
def test_every_unusable_link_has_a_german_sentence(problem: InviteProblem) -> None:
    failure = failure_of(InviteInvalid("English for the log", problem, "anna"), Step.CALLBACK)
    german_text = translate("de", failure.text)
    assert german_text != failure.text and german_text.endswith(".")
    assert "English for the log" not in failure.text  # the core's words stay in the log
