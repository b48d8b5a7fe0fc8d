"""Google Calendar mirror: the connect flow (OAuth consent, calendar choice),
gateway -> Google pushes from the outbox, Google -> gateway incremental sync,
push-notification channels and the loop that drives them.

``build_bridge`` makes the parts from the settings; ``create_google_app`` is
the ``/google/`` sub-application; ``GOOGLE_BRIDGE`` is the AppKey holding the
bridge. Nothing here imports ``caldav_backend`` (DESIGN.md).
"""

from google_bridge.bridge import GoogleBridge, build_bridge
from google_bridge.web import GOOGLE_BRIDGE, create_google_app

__all__ = ["GOOGLE_BRIDGE", "GoogleBridge", "build_bridge", "create_google_app"]
