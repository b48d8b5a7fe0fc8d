"""The ``calgateway`` command."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import signal
import sys
from collections.abc import Sequence

from aiohttp import web

from gateway import __version__
from gateway.app import create_app
from gateway.settings import Settings, SettingsError, load_settings, new_token
from gateway.web.auth import hash_password
from gateway.web.observability import ACCESS_LOGGER, AccessLogger, configure_logging

log = logging.getLogger("calgateway")


def _load(path: str) -> Settings:
    try:
        return load_settings(path)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None


async def _serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then stop taking connections, let running
    requests finish (up to ``server.shutdown_timeout``) and close storage."""
    runner = web.AppRunner(
        create_app(settings),
        access_log_class=AccessLogger,
        access_log=ACCESS_LOGGER,
        shutdown_timeout=settings.server.shutdown_timeout,
        handle_signals=False,
    )
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        site = web.TCPSite(runner, settings.server.host, settings.server.port)
        await site.start()
        for address in runner.addresses:
            host, port = address[0], address[1]
            log.info("listening", extra={"url": f"http://{host}:{port}", "port": port})
        await stop.wait()
        log.info("shutting down")
    finally:
        await runner.cleanup()
        log.info("stopped")


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _load(args.config)
    configure_logging(settings.server.log_format)
    asyncio.run(_serve(settings))
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    settings = _load(args.file)
    print(
        f"{args.file}: OK ({len(settings.resources)} resources, {len(settings.users)} users, "
        f"{len(settings.api_tokens)} API tokens; storage {settings.storage.sqlite_path})"
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="calgateway", description="CalDAV/ICS booking gateway")
    parser.add_argument("--version", action="version", version=f"calgateway {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--config", required=True, type=str, help="YAML settings file")
    serve.set_defaults(run=cmd_serve)

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
