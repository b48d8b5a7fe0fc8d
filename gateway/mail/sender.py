"""Sending mail over SMTP with aiosmtplib, and telling the outbox worker
whether a failure is worth a retry.

RFC 5321 4.2.1: a 4yz reply is a transient negative completion (the same
command may succeed later), a 5yz reply a permanent one. Connection trouble
(refused, reset, timed out, TLS handshake) is transient as well: the server
or the network may be back later, and a configuration problem shows in the
retry log until someone fixes it.
"""

from __future__ import annotations

import logging
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal

import aiosmtplib

log = logging.getLogger(__name__)

Security = Literal["starttls", "tls", "none"]


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """How to reach the outgoing mail server.

    ``security``: "starttls" (submission, port 587: plain connection upgraded
    with STARTTLS, RFC 3207, and refused if the server does not offer it),
    "tls" (implicit TLS, port 465, RFC 8314) or "none" (plain, e.g. a relay
    on localhost; no opportunistic upgrade either). ``from_address`` is the
    envelope sender (MAIL FROM, where bounces go). ``tls_context`` replaces
    the default verifying context (a private CA, tests)."""

    host: str
    port: int
    security: Security = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    from_address: str = ""
    from_name: str = ""
    tls_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.security not in ("starttls", "tls", "none"):
            raise ValueError(f"security must be starttls, tls or none, not {self.security!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is out of range")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")


class MailDeliveryError(Exception):
    """Sending failed. ``transient``: a later attempt may succeed (retry with
    backoff); otherwise the server refused for good. ``code`` is the SMTP
    reply code when the server gave one."""

    def __init__(self, message: str, *, transient: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code


class SmtpSender:
    """Sends each message on its own connection: invitations are few, and a
    connection held open between them would only time out on the server."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` to its To/Cc/Bcc recipients; raises
        ``MailDeliveryError``. A message accepted for only some recipients
        counts as a permanent failure: sending it again would duplicate it for
        the others."""
        config = self.config
        try:
            refused, _reply = await aiosmtplib.send(
                message,
                sender=config.from_address or None,
                hostname=config.host,
                port=config.port,
                username=config.username,
                password=config.password,
                timeout=config.timeout,
                use_tls=config.security == "tls",
                start_tls=config.security == "starttls",
                tls_context=config.tls_context,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            # Nothing was delivered; a retry can help if any refusal was 4yz.
            transient = any(_is_transient_code(c) for c in codes)
            detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            raise MailDeliveryError(
                f"all recipients refused ({detail})", transient=transient, code=min(codes)
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # Sender refused, DATA refused, authentication failed, HELO refused.
            raise MailDeliveryError(
                f"SMTP server answered {exc.code} {exc.message}",
                transient=_is_transient_code(exc.code),
                code=exc.code,
            ) from exc
        except OSError as exc:
            # Refused, reset or dropped connections, timeouts, TLS handshake
            # and certificate failures (aiosmtplib's connection errors are
            # OSErrors too).
            raise MailDeliveryError(f"cannot reach the SMTP server: {exc}", transient=True) from exc
        except aiosmtplib.SMTPException as exc:
            # No reply code and no network trouble: the server lacks what the
            # configuration asks for (STARTTLS, AUTH), which it will not grow
            # by itself.
            raise MailDeliveryError(f"SMTP session failed: {exc}", transient=False) from exc
        if refused:
            detail = "; ".join(f"{rcpt}: {r.code} {r.message}" for rcpt, r in refused.items())
            log.warning("message %s refused for some recipients: %s", message["Message-ID"], detail)
            raise MailDeliveryError(
                f"accepted for some recipients only, refused for {detail}",
                transient=False,
                code=min(r.code for r in refused.values()),
            )


def _is_transient_code(code: int) -> bool:
    # RFC 5321 4.2.1: 4yz transient, 5yz permanent. Anything else from a
    # server that reports an error is unexpected; a retry costs little.
    return not 500 <= code < 600
