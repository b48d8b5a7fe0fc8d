"""Sending mail over SMTP with aiosmtplib, and telling the outbox worker
whether a failure is worth a retry.

``classify`` is the one rule for that, a pure function of the exception:

* RFC 5321 4.2.1: a 4yz reply is a transient negative completion (the same
  command may succeed later), a 5yz reply a permanent one;
* connection trouble (refused, reset, timed out, TLS handshake) is transient:
  the server or the network may be back later, and a configuration problem
  shows in the retry log until someone fixes it;
* what no later attempt can change is permanent: the server lacks an
  extension the message needs (STARTTLS, AUTH, or SMTPUTF8 for a non-ASCII
  address, RFC 6531), or the message or an address cannot be written at all.

Timeouts (RFC 5321 4.5.3.2): ``timeout`` bounds the connection and each
command; the server's answer to the end of the data gets ``data_timeout``
(the RFC allows it 10 minutes), because a slow final acknowledgement
usually means the message was accepted: treating it as a failure would
send it again. ``send`` calls ``accepted`` right after that acknowledgement,
before saying goodbye (QUIT), so the outbox records "done" as early as
possible. A timeout at the end of data is still transient (retried with the
same Message-ID), and its message says the mail may have gone out.

This module does not retry, queue or build messages.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Literal

import aiosmtplib
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import Default

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
    data_timeout: float = 60.0
    from_address: str = ""
    from_name: str = ""
    tls_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.security not in ("starttls", "tls", "none"):
            raise ValueError(f"security must be starttls, tls or none, not {self.security!r}")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port} is out of range")
        if self.timeout <= 0 or self.data_timeout <= 0:
            raise ValueError("timeout and data_timeout must be positive")
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


Accepted = Callable[[], Awaitable[None]]


class SmtpSender:
    """Sends each message on its own connection: invitations are few, and a
    connection held open between them would only time out on the server."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    async def send(self, message: EmailMessage, accepted: Accepted | None = None) -> None:
        """Deliver ``message`` to its To/Cc/Bcc recipients; raises
        ``MailDeliveryError``. ``accepted`` runs once the server has taken
        the message for every recipient, before the connection is closed;
        what it raises propagates unchanged. A message accepted for only some
        recipients counts as a permanent failure: sending it again would
        duplicate it for the others."""
        config = self.config
        client = _Client(
            data_timeout=config.data_timeout,
            hostname=config.host,
            port=config.port,
            username=config.username,
            password=config.password,
            timeout=config.timeout,
            use_tls=config.security == "tls",
            start_tls=config.security == "starttls",
            tls_context=config.tls_context,
        )
        try:
            await client.connect()
            refused, _reply = await client.send_message(message, sender=config.from_address or None)
        except Exception as exc:
            client.close()
            failure = classify(exc, in_data=client.in_data, data_timeout=config.data_timeout)
            if failure is None:
                raise
            raise failure from exc
        try:
            if refused:
                detail = "; ".join(f"{rcpt}: {r.code} {r.message}" for rcpt, r in refused.items())
                log.warning(
                    "message %s refused for some recipients: %s", message["Message-ID"], detail
                )
                raise MailDeliveryError(
                    f"accepted for some recipients only, refused for {detail}",
                    transient=False,
                    code=min(r.code for r in refused.values()),
                )
            if accepted is not None:
                await accepted()
        finally:
            await _goodbye(client)


class _Client(aiosmtplib.SMTP):
    """aiosmtplib's client with its own timeout for DATA (see the module
    docstring); ``sendmail`` and ``send_message`` call ``data`` for it."""

    def __init__(self, *, data_timeout: float, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.data_timeout = data_timeout
        self.in_data = False

    async def data(
        self,
        message: str | bytes,
        /,
        *,
        # aiosmtplib's signature, overridden: the parameter is ignored.
        timeout: float | Literal[Default.token] | None = Default.token,  # noqa: ASYNC109
    ) -> SMTPResponse:
        self.in_data = True
        return await super().data(message, timeout=self.data_timeout)


async def _goodbye(client: _Client) -> None:
    # QUIT is a courtesy once the message is accepted: its failure changes
    # nothing about the delivery.
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        pass
    finally:
        client.close()


def classify(
    exc: BaseException, *, in_data: bool = False, data_timeout: float = 60.0
) -> MailDeliveryError | None:
    """The delivery failure ``exc`` means, transient or permanent (see the
    module docstring), or None when it is no mail failure at all (a bug, a
    database error): the caller lets those propagate. ``in_data``: it
    happened during DATA, where a timeout may hide a delivered message."""
    if isinstance(exc, MailDeliveryError):
        return exc
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        # Nothing was delivered; a retry can help if any refusal was 4yz.
        detail = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        return MailDeliveryError(
            f"all recipients refused ({detail})",
            transient=any(_is_transient_code(c) for c in codes),
            code=min(codes, default=None),
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        # Sender refused, DATA refused, authentication failed, HELO refused.
        return MailDeliveryError(
            f"SMTP server answered {exc.code} {exc.message}",
            transient=_is_transient_code(exc.code),
            code=exc.code,
        )
    if isinstance(exc, TimeoutError) and in_data:
        return MailDeliveryError(
            f"the SMTP server did not acknowledge the end of the message within "
            f"{data_timeout:g} s (mail.data_timeout); it may have been delivered, and is "
            "sent again with the same Message-ID",
            transient=True,
        )
    if isinstance(exc, OSError):
        # Refused, reset or dropped connections, timeouts, TLS handshake
        # and certificate failures (aiosmtplib's connection errors are
        # OSErrors too).
        return MailDeliveryError(f"cannot reach the SMTP server: {exc}", transient=True)
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        # The server lacks what the configuration or the message needs
        # (STARTTLS, AUTH, SMTPUTF8 for a non-ASCII address), which it will
        # not grow by itself.
        return MailDeliveryError(f"the SMTP server cannot take this: {exc}", transient=False)
    if isinstance(exc, aiosmtplib.SMTPException):
        return MailDeliveryError(f"SMTP session failed: {exc}", transient=False)
    if isinstance(exc, ValueError):
        # The message or an address cannot be written as SMTP requires
        # (email's header defects and UnicodeError are ValueErrors): the same
        # message fails the same way every time.
        return MailDeliveryError(f"the message cannot be sent as written: {exc}", transient=False)
    return None


def _is_transient_code(code: int) -> bool:
    # RFC 5321 4.2.1: 4yz transient, 5yz permanent. Anything else from a
    # server that reports an error is unexpected; a retry costs little.
    return not 500 <= code < 600
