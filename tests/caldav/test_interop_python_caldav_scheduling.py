"""python-caldav's RFC 6638 free-busy request (``Principal.freebusy_request``)
against the gateway on a real loopback port: the client finds the outbox and
the calendar user address from the principal, POSTs a VFREEBUSY request and
reads the schedule-response back, as a Python user of the library sees it."""

from __future__ import annotations

from typing import Any

from tests.caldav.dav import event
from tests.caldav.servers import GatewayServer
from tests.caldav.test_interop_python_caldav import connect, in_thread, utc
from tests.conftest import READER_PASSWORD


def _periods(freebusy: Any) -> list[tuple[str, str]]:
    component = freebusy.icalendar_instance.walk("VFREEBUSY")[0]
    values = component.get("FREEBUSY", [])
    values = values if isinstance(values, list) else [values]
    return [
        (f"{v.dt[0]:%H:%M}-{v.dt[1]:%H:%M}", str(v.params.get("FBTYPE", "BUSY"))) for v in values
    ]


async def test_freebusy_request_shows_busy_time_of_readable_resources(
    gateway: GatewayServer,
) -> None:
    def scenario() -> dict[str, Any]:
        admin = connect(f"{gateway.url}/dav/")
        anna = admin.calendar(url=gateway.calendar_url("anna"))
        anna.save_event(event("a", "20261201T090000Z", "20261201T100000Z"))
        room = admin.calendar(url=gateway.calendar_url("room"))
        room.save_event(event("r", "20261201T140000Z", "20261201T153000Z"))
        reader = connect(f"{gateway.url}/dav/", "reader", READER_PASSWORD).principal()
        answer: dict[str, Any] = reader.freebusy_request(
            utc(2026, 12, 1, 0, 0),
            utc(2026, 12, 2, 0, 0),
            ["mailto:anna@example.com", "mailto:room1@example.com"],
        )
        return answer

    answer = await in_thread(scenario)
    # reader may read anna only; room is busy, yet answers as no resource.
    assert _periods(answer["mailto:anna@example.com"]) == [("09:00-10:00", "BUSY")]
    assert "mailto:room1@example.com" not in answer
    assert set(answer["errors"]) == {"mailto:room1@example.com"}
    assert str(answer["errors"]["mailto:room1@example.com"]).startswith("3.7")


async def test_the_client_finds_outbox_and_address(gateway: GatewayServer) -> None:
    def scenario() -> tuple[str, list[str | None]]:
        principal = connect(f"{gateway.url}/dav/").principal()
        return str(principal.schedule_outbox().url), principal.calendar_user_address_set()

    outbox, addresses = await in_thread(scenario)
    assert outbox == f"{gateway.url}/dav/principals/admin/outbox/"
    assert addresses == ["/dav/principals/admin/"]
