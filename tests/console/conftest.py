"""The console's Google tests use the Google suite's fixtures (the fake
Google, an SMTP server, a gateway running against both): imported, not
copied."""

from tests.google.conftest import fake, gateway, mail  # noqa: F401 - fixtures
