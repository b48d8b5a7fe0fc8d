"""``calgateway import`` of a calendar export, timed as an admin runs it.

    .venv/bin/python -m bench.import_calendar                 # 5,000 events
    .venv/bin/python -m bench.import_calendar --events 1000 5000 20000

For each size: writes the export of ``bench.exports`` (years of appointments
with a VTIMEZONE, folded descriptions, alarms, weekly series, and some
appointments booked twice into one hour), then runs the real command as a
subprocess on a fresh SQLite file: a dry run, the import, and the same
import again. Each run's report is checked against the export's truth (what
is stored, what is refused as a double booking); a difference exits
non-zero. Prints wall time, objects per second and the command's peak RSS.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.exports import Export, calendar_export

RESOURCES = """\
resources:
  - id: anna
    name: Anna
    email: anna@example.com
    timezone: Europe/Berlin
"""


def _settings(folder: Path) -> Path:
    config = folder / "gateway.yaml"
    config.write_text(
        f"storage:\n  url: sqlite:///{folder / 'gateway.sqlite3'}\n{RESOURCES}",
        encoding="utf-8",
    )
    return config


def _run(args: list[str]) -> tuple[float, int, str]:
    """Seconds, peak RSS in MiB and stdout of the command."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = process.communicate(timeout=600)
    seconds = time.perf_counter() - started
    # The largest peak of the commands run so far (they run one by one).
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
    if process.returncode not in (0, 1):
        raise SystemExit(f"calgateway {' '.join(args)} failed ({process.returncode}):\n{err}")
    return seconds, peak, out


def _check(export: Export, out: str, stored_as: str) -> None:
    verdicts: dict[str, str] = {}
    for line in out.splitlines():
        match = re.match(r"(\S+)\s+line \d+ (\S+?)(?::|$)", line)
        if match:
            verdicts[match.group(2)] = match.group(1)
    want = {uid: stored_as for uid in export.stored}
    want |= {uid: "double-booking" for uid in export.double_booked}
    if verdicts != want:
        wrong = sorted(
            uid for uid in want.keys() | verdicts.keys() if want.get(uid) != verdicts.get(uid)
        )
        raise SystemExit(
            f"report differs from the export's truth for {len(wrong)} objects, e.g. "
            + ", ".join(f"{u}: {verdicts.get(u)} (want {want.get(u)})" for u in wrong[:5])
        )


def measure(events: int) -> list[tuple[str, float, int]]:
    export = calendar_export(events)
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        config = _settings(folder)
        file = folder / "export.ics"
        file.write_bytes(export.text.encode("utf-8"))
        rows = []
        for label, extra, stored_as in (
            ("dry run", ["--dry-run"], "stored"),
            ("import", [], "stored"),
            ("again (idempotent)", [], "unchanged"),
        ):
            seconds, peak, out = _run(
                ["import", "anna", str(file), "--config", str(config), *extra]
            )
            _check(export, out, stored_as)
            rows.append((label, seconds, peak))
        size = os.path.getsize(file) / 2**20
    print(
        f"\n{events} events ({export.objects} objects, {len(export.double_booked)} double-booked, "
        f"{size:.1f} MiB)\n"
    )
    print("| run | seconds | objects/s | peak RSS so far (MiB) |")
    print("| --- | ---: | ---: | ---: |")
    for label, seconds, peak in rows:
        print(f"| {label} | {seconds:.1f} | {export.objects / seconds:.0f} | {peak} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, nargs="+", default=[5000])
    args = parser.parse_args()
    for events in args.events:
        measure(events)


if __name__ == "__main__":
    main()
