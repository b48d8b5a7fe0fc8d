"""The console's Google tests use the Google suite's fixtures (the fake
Google, an SMTP server): imported, not copied."""

from tests.google.conftest import fake, mail  # noqa: F401 - fixtures
