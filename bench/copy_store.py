"""How long ``calgateway copy-store`` takes: a SQLite store of N calendar
objects (each with its change-log row and an outbox item) copied into a
PostgreSQL database the bench starts itself (``tests.pgserver``), and back
into a new SQLite file.

    .venv/bin/python -m bench.copy_store --objects 10000

Prints rows per second for each direction, including the read-back
verification inside the target's transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from gateway.store import open_sqlite_repository
from gateway.store.copy import StoreAddress, copy_store
from tests.pgserver import _start, _stop, find_binaries
from tests.store.contract import effect, make_object, rich_object

BATCH = 500


async def fill(path: Path, objects: int) -> None:
    repo = await open_sqlite_repository(path)
    try:
        ics = rich_object().ics
        for first in range(0, objects, BATCH):
            async with repo.transaction() as tx:
                for n in range(first, min(first + BATCH, objects)):
                    await tx.save(make_object(f"u{n}", ics=ics.replace("rich-ü", f"u{n}")))
                    await tx.enqueue(effect(n))
    finally:
        await repo.close()


async def run(objects: int, show_report: bool) -> None:
    bin_dir = find_binaries()
    if bin_dir is None:
        raise SystemExit("PostgreSQL's initdb/pg_ctl not found: apt-get install postgresql")
    server = _start(bin_dir)
    try:
        with tempfile.TemporaryDirectory() as folder:
            source, back = Path(folder) / "source.sqlite3", Path(folder) / "back.sqlite3"
            started = time.monotonic()
            await fill(source, objects)
            print(f"filled {objects} objects in {time.monotonic() - started:.1f} s")
            url = server.url(server.create_database())
            lite = StoreAddress("sqlite", str(source), str(source))
            pg = StoreAddress("postgresql", url, url)
            again = StoreAddress("sqlite", str(back), str(back))
            directions = (("SQLite -> PostgreSQL", lite, pg), ("PostgreSQL -> SQLite", pg, again))
            for name, a, b in directions:
                report = await copy_store(a, b)
                rows = sum(t.rows for t in report.tables)
                if show_report:
                    print("\n".join(report.lines()))
                print(
                    f"{name}: {rows} rows in {report.seconds:.2f} s "
                    f"({rows / report.seconds:,.0f} rows/s, verified)"
                )
    finally:
        _stop(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--report", action="store_true", help="print copy-store's reports too")
    args = parser.parse_args()
    asyncio.run(run(args.objects, args.report))


if __name__ == "__main__":
    main()
