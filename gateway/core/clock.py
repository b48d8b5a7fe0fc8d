"""The gateway's notion of now.

Every component that reads the time takes a ``Clock`` (``create_app``
passes one to all of them), so that a test can run the server at another
date and no behaviour depends on the day the tests run. The default is the
wall clock in UTC. A clock given instead must advance with real time (an
offset, not a frozen instant): the outbox and the Google worker sleep until
moments it names.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)
