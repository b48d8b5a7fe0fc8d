"""The ``calgateway`` command."""

from __future__ import annotations

import argparse
import asyncio
import codecs
import getpass
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from pydantic import ValidationError

from gateway import __version__, demo, healthcheck
from gateway.admin import (
    StorageSecretMissing,
    build_booking_service,
    open_admin_actions,
    open_mirror_admin,
    open_repository,
    storage_password,
)
from gateway.core.admin_actions import ActionRefused, AdminActions, OutboxEntry
from gateway.core.calendar_import import ImportReport, UnsplittableFile, counts_line, describe
from gateway.core.errors import NotFound, StorageFull
from gateway.core.mirror import ConnectionStatus, Direction
from gateway.core.mirror_admin import MirrorAdmin, MirrorDisabled, ResourceStatus
from gateway.core.model import FailedOutboxItem
from gateway.core.text import UnknownCharset, UnreadableText, decode
from gateway.serve import CannotListen, serve
from gateway.settings import (
    ResourceSettings,
    Settings,
    SettingsError,
    StorageSettings,
    load_settings,
    new_token,
)
from gateway.store import SchemaError
from gateway.store.copy import CopyFailed, CopyRefused, StoreAddress, copy_store
from gateway.web.auth import hash_password
from gateway.web.observability import configure_logging

T = TypeVar("T")

log = logging.getLogger("calgateway")


def _load(path: str) -> Settings:
    try:
        settings = load_settings(path)
        demo.check(path, settings)  # refused like a bad file: before anything starts
        return settings
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    configure_logging(settings.server.log_format)
    try:
        asyncio.run(serve(args.config, settings))
    except CannotListen as exc:
        log.error(str(exc))
        return 1
    return 0


def cmd_healthcheck(args: argparse.Namespace) -> int:
    # Exit 0 or 1 only: Docker reserves a health check's exit code 2.
    try:
        settings = load_settings(args.config)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 1
    problem = healthcheck.check(settings)
    if problem is not None:
        print(f"calgateway: unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _load(args.file)
    print(
        f"{args.file}: OK ({len(settings.resources)} resources, {len(settings.users)} users, "
        f"{len(settings.api_tokens)} API tokens; storage {settings.storage.describe()})"
    )
    return 0


def cmd_resources(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    base = settings.server.public_url
    for r in settings.resources:
        feed = f"{base}/feeds/{r.id}.ics?token=…" if r.feed_tokens else "no feed"
        print(f"{r.id}\t{r.name}\t{r.email}\t{r.timezone}\t{base}/dav/calendars/{r.id}/\t{feed}")
    return 0


def cmd_hash_password(args: argparse.Namespace) -> int:
    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("passwords differ", file=sys.stderr)
            return 1
    if len(password) < 8:
        print("a password needs at least 8 characters", file=sys.stderr)
        return 1
    print(hash_password(password))
    return 0


def cmd_new_token(_: argparse.Namespace) -> int:
    print(new_token())
    return 0


# -- Google mirror administration -----------------------------------------------
# These commands open the database themselves, beside a running server (SQLite
# in WAL mode lets both write). What they queue (e-mails, stopping a Google
# push channel) is run by the server's outbox worker, which polls for items
# other processes queued every outbox.poll_interval seconds.

LOG_LIMIT_MAX = 500


def _fail(message: str) -> SystemExit:
    print(f"calgateway: {message}", file=sys.stderr)
    return SystemExit(2)


def _known_resource(settings: Settings, resource_id: str, config: str) -> ResourceSettings:
    resource = settings.resource(resource_id)
    if resource is None:
        known = ", ".join(r.id for r in settings.resources)
        raise _fail(f"unknown resource {resource_id!r} in {config} (configured: {known})")
    return resource


def _with_admin(settings: Settings, work: Callable[[MirrorAdmin], Awaitable[T]]) -> T:
    async def run() -> T:
        async with open_mirror_admin(settings) as admin:
            return await work(admin)

    try:
        return asyncio.run(run())
    except (MirrorDisabled, NotFound) as exc:
        raise _fail(str(exc)) from None


def _when(value: datetime | None, missing: str = "never") -> str:
    if value is None:
        return missing
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _outbox_note(settings: Settings) -> str:
    return (
        "the running server sends it (its outbox worker looks for new items every "
        f"{settings.outbox.poll_interval:g} s; if no server runs, it goes out when one starts)"
    )


def cmd_google_invite(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    resource = _known_resource(settings, args.resource, args.config)
    if settings.google is None:
        raise _fail(
            f"Google is not configured: {args.config} has no google section (see config/README.md)"
        )
    issued = _with_admin(settings, lambda admin: admin.invite(resource.id))
    print(f"Invitation for {resource.id} ({resource.name}) to connect a Google calendar:")
    print()
    print(f"    {issued.url}")
    print()
    print(f"The link works once, until {_when(issued.expires)}.")
    if issued.mailed:
        print(f"E-mail to {resource.email} queued: {_outbox_note(settings)}.")
    else:
        print(
            "Not mailed (no mail section in the settings): hand the link to "
            f"{resource.name} yourself, privately; whoever opens it chooses the calendar."
        )
    return 0


def cmd_google_disconnect(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    _known_resource(settings, args.resource, args.config)
    before = _with_admin(settings, lambda admin: _disconnect(admin, args.resource))
    c = before.connection
    if c.status in (ConnectionStatus.NOT_INVITED, ConnectionStatus.DISABLED):
        print(f"{args.resource}: nothing to disconnect ({before.summary}).")
        return 0
    print(f"{args.resource}: disconnected from Google (was: {before.summary}).")
    if c.refresh_token:
        print("Its Google refresh token is forgotten; bookings stay in the gateway.")
    if c.channel is not None:
        print(f"Stopping Google's push channel is queued: {_outbox_note(settings)}.")
    return 0


async def _disconnect(admin: MirrorAdmin, resource_id: str) -> ResourceStatus:
    """The status before, then disconnect (the output says what changed)."""
    before = await admin.status(resource_id)
    await admin.disconnect(resource_id)
    return before


def cmd_google_new_key(_: argparse.Namespace) -> int:
    # Imported here, not at the top: google_bridge.tokens loads cryptography,
    # about 6 MiB of a `calgateway serve` that never uses it.
    from google_bridge.tokens import new_key

    print(new_key())
    return 0


def cmd_google_rotate_keys(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    if settings.google is None:
        raise _fail(f"Google is not configured: {args.config} has no google section")
    from google_bridge.tokens import TokenKeyMismatch, TokenVault  # see cmd_google_new_key

    vault = TokenVault([key.get_secret_value() for key in settings.google.token_keys])
    try:
        count = _with_admin(settings, lambda admin: admin.rotate_tokens(vault.rotate))
    except TokenKeyMismatch as exc:
        raise _fail(str(exc)) from None
    print(
        f"{count} stored Google token(s) re-encrypted with the first of google.token_keys; "
        "the other keys can be removed from the settings now."
    )
    return 0


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def cmd_sync_status(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    states = _with_admin(settings, lambda admin: admin.statuses())
    if settings.google is None:
        print(f"Google is not configured ({args.config} has no google section): all off.\n")
    rows = [("RESOURCE", "MODE", "STATUS", "CALENDAR", "LAST SYNC")]
    for state in states:
        c, policy = state.connection, state.policy
        mode = (
            policy.direction.value
            if policy.direction is Direction.OFF  # details mean nothing then
            else f"{policy.direction.value}/{policy.details.value}"
        )
        calendar = c.calendar_name or c.calendar_id or "-"
        if c.account and c.account != calendar:
            calendar += f" ({c.account})"
        rows.append((state.resource_id, mode, state.summary, calendar, _when(c.last_sync_at)))
    print(_table(rows))
    return 0


def cmd_sync_log(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    _known_resource(settings, args.resource, args.config)
    entries = _with_admin(settings, lambda admin: admin.log(args.resource, args.limit))
    if not entries:
        print(f"{args.resource}: the sync log is empty.")
        return 0
    for e in entries:
        refs = "".join(
            f" [{name} {value}]"
            for name, value in (("booking", e.booking_id), ("event", e.event_id))
            if value
        )
        print(f"{e.id}\t{_when(e.at)}\t{e.kind.value}\t{e.message}{refs}")
    return 0


def cmd_outbox_failed(args: argparse.Namespace) -> int:
    settings = _load(args.config)

    async def read() -> list[FailedOutboxItem]:
        repository = await open_repository(settings)
        try:
            return await repository.failed_outbox(args.limit)
        finally:
            await repository.close()

    failed = asyncio.run(read())
    if not failed:
        print("No outbox item has failed for good.")
        return 0
    rows = [("ID", "FAILED", "KIND", "RESOURCE", "BOOKING", "REASON")]
    rows += [
        (str(f.id), _when(f.failed), f.kind, f.resource_id, f.booking_id, f.reason) for f in failed
    ]
    print(_table(rows))
    return 0


# -- the admin's outbox and invitation actions ----------------------------------
# The same service as the console and the API (AdminActions). An item these
# commands make due is run by the running server's outbox worker at its next
# poll: outbox.poll_interval seconds at most.


def _cli_actor() -> str:
    """Who acts, for the log and a given-up item's reason: the login name."""
    try:
        return f"{getpass.getuser()} (command line)"
    except (OSError, KeyError):  # no login name in a bare container
        return "command line"


def _with_actions(settings: Settings, work: Callable[[AdminActions], Awaitable[T]]) -> T:
    async def run() -> T:
        async with open_admin_actions(settings) as actions:
            return await work(actions)

    try:
        return asyncio.run(run())
    except (ActionRefused, NotFound) as exc:
        raise _fail(str(exc)) from None


def _outbox_rows(entries: Sequence[OutboxEntry]) -> str:
    rows = [("ID", "STATE", "ATTEMPTS", "NEXT/FAILED", "RESOURCE", "WHAT", "LAST ERROR")]
    rows += [
        (
            str(e.id),
            e.state,
            str(e.attempts),
            _when(e.failed_at) if e.state == "failed" else _when(e.next_attempt, "now"),
            e.resource_id,
            e.description,
            e.last_error or "",
        )
        for e in entries
    ]
    return _table(rows)


def cmd_outbox_list(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    entries = _with_actions(settings, lambda actions: actions.outbox(args.state, args.limit))
    if not entries:
        print(f"No outbox item is {args.state or 'pending or failed'}.")
        return 0
    print(_outbox_rows(entries))
    return 0


def cmd_outbox_retry(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    entry = _with_actions(
        settings, lambda actions: actions.retry_outbox_now(args.item, _cli_actor())
    )
    print(f"Outbox item {entry.id} is due now: {entry.description}.")
    print(f"The running server runs it at its next look for new items (at most {_poll(settings)}).")
    return 0


def cmd_outbox_give_up(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    entry = _with_actions(settings, lambda actions: actions.give_up_outbox(args.item, _cli_actor()))
    print(f"Outbox item {entry.id} given up, it will not run: {entry.description}.")
    return 0


def cmd_bookings_resend_invitation(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    attendees = _with_actions(
        settings, lambda actions: actions.resend_invitation(args.booking, _cli_actor())
    )
    print(f"Invitation of booking {args.booking} queued again to {', '.join(attendees)}:")
    print(f"{_outbox_note(settings)}.")
    return 0


def _poll(settings: Settings) -> str:
    return f"{settings.outbox.poll_interval:g} s"


def _item_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an outbox item id: {text!r}") from None
    if not 1 <= value < 2**62:
        raise argparse.ArgumentTypeError(f"not an outbox item id: {text!r}")
    return value


# -- importing a calendar file ----------------------------------------------------


def cmd_import(args: argparse.Namespace) -> int:
    """Exit 0 when every object was stored (or already there), 1 when some
    were refused (the report says which and why), 2 when nothing could be
    tried (settings, resource, an unreadable or unsplittable file)."""
    settings = _load(args.config)
    resource = _known_resource(settings, args.resource, args.config)
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise _fail(f"cannot read {args.file}: {exc.strerror}") from None
    # RFC 5545 3.1.4: UTF-8; some exporters write UTF-16 with a byte order mark.
    charset = "utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else None
    try:
        text = decode(data, charset)
    except (UnknownCharset, UnreadableText) as exc:
        raise _fail(f"{args.file}: the file {exc}") from None
    show = _progress_printer() if sys.stderr.isatty() else None

    async def run() -> ImportReport:
        repository = await open_repository(settings)
        try:
            service = build_booking_service(settings, repository)
            return await service.import_calendar(
                resource.id,
                text,
                dry_run=args.dry_run,
                progress=show,
                max_object_bytes=settings.server.max_body_bytes,
            )
        finally:
            await repository.close()

    try:
        report = asyncio.run(run())
    except UnsplittableFile as exc:
        raise _fail(f"{args.file}: nothing imported: {exc.message}") from None
    except StorageFull as exc:
        raise _fail(f"nothing more imported: {exc.message}") from None
    for outcome in report.outcomes:
        if not args.problems_only or outcome.status.refused:
            print(describe(outcome))
    verb = "would be" if report.dry_run else "were"
    print(
        f"{args.file} -> {resource.id}: {len(report.outcomes)} objects {verb} "
        f"{counts_line(report.counts())}"
        + (" (dry run: nothing was written)" if report.dry_run else "")
    )
    return 1 if report.refused else 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Bring the database's schema up to the code's (``serve`` does the same
    at start, under the same lock, so running both at once is safe)."""
    settings = _load(args.config)

    async def run() -> None:
        repository = await open_repository(settings)
        await repository.close()

    try:
        asyncio.run(run())
    except (SchemaError, StorageSecretMissing) as exc:
        raise _fail(str(exc)) from None
    print(f"{settings.storage.describe()}: the schema is up to date")
    return 0


def _store_address(args: argparse.Namespace, side: str) -> StoreAddress:
    """``--from``/``--to`` and their password options, checked as
    storage.url, storage.password_env and storage.password_file are."""
    try:
        storage = StorageSettings.model_validate(
            {
                "url": getattr(args, side),
                "password_env": getattr(args, f"{side}_password_env"),
                "password_file": getattr(args, f"{side}_password_file"),
            }
        )
        password = storage_password(storage)
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise _fail(f"--{side}: {problem}") from None
    except StorageSecretMissing as exc:
        raise _fail(f"--{side}: {exc}") from None
    if storage.backend == "sqlite":
        return StoreAddress("sqlite", str(storage.sqlite_path), storage.describe())
    return StoreAddress("postgresql", storage.url, storage.describe(), password)


def cmd_copy_store(args: argparse.Namespace) -> int:
    """Exit 0 when everything was copied and verified, 2 when the copy was
    refused before writing (non-empty target, versions, URLs, secrets), 1
    when it failed part of the way and was rolled back."""
    source, target = _store_address(args, "from"), _store_address(args, "to")
    try:
        report = asyncio.run(copy_store(source, target))
    except (CopyRefused, SchemaError, StorageSecretMissing) as exc:
        raise _fail(str(exc)) from None
    except CopyFailed as exc:
        print(f"calgateway: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report.lines()))
    return 0


def _progress_printer() -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\rimporting: {done}/{total} objects", end=end, file=sys.stderr, flush=True)

    return show


def _log_limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 1 <= value <= LOG_LIMIT_MAX:
        raise argparse.ArgumentTypeError(f"must be between 1 and {LOG_LIMIT_MAX}")
    return value


def _add_admin_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    google = sub.add_parser("google", help="Google Calendar mirror: invitations, keys")
    google_sub = google.add_subparsers(dest="google_command", required=True)
    invite = google_sub.add_parser(
        "invite", help="make a one-time link to connect a resource's Google calendar"
    )
    invite.add_argument("resource", help="resource id")
    invite.add_argument("--config", required=True, type=str, help="YAML settings file")
    invite.set_defaults(run=cmd_google_invite)
    disconnect = google_sub.add_parser("disconnect", help="disconnect a resource from Google")
    disconnect.add_argument("resource", help="resource id")
    disconnect.add_argument("--config", required=True, type=str, help="YAML settings file")
    disconnect.set_defaults(run=cmd_google_disconnect)
    key = google_sub.add_parser("new-key", help="print a new key for google.token_keys")
    key.set_defaults(run=cmd_google_new_key)
    rotate = google_sub.add_parser(
        "rotate-keys", help="re-encrypt stored Google tokens with the first token key"
    )
    rotate.add_argument("--config", required=True, type=str)
    rotate.set_defaults(run=cmd_google_rotate_keys)

    sync = sub.add_parser("sync", help="Google mirror status and sync log")
    sync_sub = sync.add_subparsers(dest="sync_command", required=True)
    status = sync_sub.add_parser("status", help="the mirror status of every resource")
    status.add_argument("--config", required=True, type=str, help="YAML settings file")
    status.set_defaults(run=cmd_sync_status)
    log_parser = sync_sub.add_parser("log", help="a resource's sync log, newest first")
    log_parser.add_argument("resource", help="resource id")
    log_parser.add_argument("--config", required=True, type=str, help="YAML settings file")
    log_parser.add_argument(
        "--limit", type=_log_limit, default=50, help=f"entries to show (1-{LOG_LIMIT_MAX})"
    )
    log_parser.set_defaults(run=cmd_sync_log)

    outbox = sub.add_parser("outbox", help="the queue of e-mails and Google writes")
    outbox_sub = outbox.add_subparsers(dest="outbox_command", required=True)
    failed = outbox_sub.add_parser(
        "failed", help="items closed for good without their effect, newest first, and why"
    )
    failed.add_argument("--config", required=True, type=str, help="YAML settings file")
    failed.add_argument(
        "--limit", type=_log_limit, default=50, help=f"items to show (1-{LOG_LIMIT_MAX})"
    )
    failed.set_defaults(run=cmd_outbox_failed)
    listing = outbox_sub.add_parser(
        "list", help="items not done (oldest first) and failed ones (newest first), in words"
    )
    listing.add_argument("--config", required=True, type=str, help="YAML settings file")
    listing.add_argument("--state", choices=("pending", "failed"), help="only these items")
    listing.add_argument(
        "--limit", type=_log_limit, default=100, help=f"items to show (1-{LOG_LIMIT_MAX})"
    )
    listing.set_defaults(run=cmd_outbox_list)
    retry = outbox_sub.add_parser(
        "retry", help="run an item now (a failed one is reopened); the server runs it"
    )
    retry.add_argument("item", type=_item_id, help="outbox item id (outbox list)")
    retry.add_argument("--config", required=True, type=str, help="YAML settings file")
    retry.set_defaults(run=cmd_outbox_retry)
    give_up = outbox_sub.add_parser("give-up", help="close a pending item as failed: it never runs")
    give_up.add_argument("item", type=_item_id, help="outbox item id (outbox list)")
    give_up.add_argument("--config", required=True, type=str, help="YAML settings file")
    give_up.set_defaults(run=cmd_outbox_give_up)

    bookings = sub.add_parser("bookings", help="actions on one booking")
    bookings_sub = bookings.add_subparsers(dest="bookings_command", required=True)
    resend = bookings_sub.add_parser(
        "resend-invitation",
        help="queue the booking's invitation again to every attendee who has not declined",
    )
    resend.add_argument("booking", help="booking id")
    resend.add_argument("--config", required=True, type=str, help="YAML settings file")
    resend.set_defaults(run=cmd_bookings_resend_invitation)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calgateway", description="CalDAV/ICS booking gateway")
    parser.add_argument("--version", action="version", version=f"calgateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--config", required=True, type=str, help="YAML settings file")
    serve.set_defaults(run=cmd_serve)

    health = sub.add_parser(
        "healthcheck", help="exit 0 if the server of a settings file answers /healthz, else 1"
    )
    health.add_argument("--config", required=True, type=str, help="YAML settings file")
    health.set_defaults(run=cmd_healthcheck)

    check = sub.add_parser("check-config", help="validate a settings file, print every error")
    check.add_argument("file", type=str)
    check.set_defaults(run=cmd_check_config)

    resources = sub.add_parser("resources", help="list configured resources and their URLs")
    resources.add_argument("--config", required=True, type=str)
    resources.set_defaults(run=cmd_resources)

    hashpw = sub.add_parser("hash-password", help="print an argon2 hash for users[].password_hash")
    hashpw.add_argument("--stdin", action="store_true", help="read the password from stdin")
    hashpw.set_defaults(run=cmd_hash_password)

    token = sub.add_parser("new-token", help="print a random token for feeds or the API")
    token.set_defaults(run=cmd_new_token)

    migrate = sub.add_parser(
        "migrate", help="bring the database schema up to this version (serve does it at start)"
    )
    migrate.add_argument("--config", required=True, type=str, help="YAML settings file")
    migrate.set_defaults(run=cmd_migrate)

    copy = sub.add_parser(
        "copy-store",
        help="copy a whole installation into an empty store (SQLite <-> PostgreSQL)",
        description=(
            "Copy every calendar object, revision, change log, outbox item, Google mirror "
            "state and idempotency key from one store to another, empty one, in one "
            "transaction, and verify row counts and a SHA-256 of every value before it "
            "commits. Stop every server on the source first. URLs as in storage.url; a "
            "PostgreSQL password comes from an environment variable or a file, never the URL."
        ),
    )
    for side in ("from", "to"):
        copy.add_argument(f"--{side}", required=True, metavar="URL", help=f"store to copy {side}")
        secret = copy.add_mutually_exclusive_group()
        secret.add_argument(
            f"--{side}-password-env", metavar="VAR", help="environment variable with the password"
        )
        secret.add_argument(
            f"--{side}-password-file", metavar="FILE", help="file holding the password"
        )
    copy.set_defaults(run=cmd_copy_store)

    importer = sub.add_parser(
        "import",
        help="import a calendar file (.ics export) into a resource's calendar",
        description=(
            "Split FILE by UID and store each object as a CalDAV PUT would: valid data, "
            "a UID of its own, no double booking. Prints what happened to each object. "
            "Running it twice changes nothing. Safe beside a running server."
        ),
    )
    importer.add_argument("resource", help="the resource id (resources[].id)")
    importer.add_argument("file", help="the .ics file")
    importer.add_argument("--config", required=True, type=str, help="YAML settings file")
    importer.add_argument(
        "--dry-run", action="store_true", help="say what would happen, write nothing"
    )
    importer.add_argument(
        "--problems-only", action="store_true", help="list only the objects that were refused"
    )
    importer.set_defaults(run=cmd_import)

    _add_admin_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result: int = args.run(args)
    except BrokenPipeError:
        # The reader went away (`calgateway import ... | head`): stop quietly,
        # as the Python docs advise (also for the flush at exit).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
