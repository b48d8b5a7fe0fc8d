"""Google Calendar mirror: the connect flow (OAuth consent, calendar choice),
gateway -> Google pushes from the outbox, Google -> gateway incremental sync,
push-notification channels and the loop that drives them.

``build_bridge`` makes the parts from the settings; ``create_google_app`` is
the ``/google/`` sub-application; ``GOOGLE_BRIDGE`` is the AppKey holding the
bridge. Nothing here imports ``caldav_backend`` (DESIGN.md).

The names are loaded on first use (PEP 562): importing a light submodule
such as ``google_bridge.tokens`` (the CLI does) must not pull in
google-api-python-client and httplib2 through this package's ``__init__``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from google_bridge.bridge import GoogleBridge, build_bridge
    from google_bridge.web import GOOGLE_BRIDGE, create_google_app

_HOMES = {
    "GoogleBridge": "google_bridge.bridge",
    "build_bridge": "google_bridge.bridge",
    "GOOGLE_BRIDGE": "google_bridge.web",
    "create_google_app": "google_bridge.web",
}

__all__ = ["GOOGLE_BRIDGE", "GoogleBridge", "build_bridge", "create_google_app"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
