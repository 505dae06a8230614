"""`./m4 rate RUN good|bad [--note ...]`: a person's verdict on one logged run, kept apart from the automatic one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.runs_cmd import DEFAULT_LOG


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./m4 rate", description=__doc__.splitlines()[0])
    parser.add_argument("run", help="the run id (./m4 runs lists them)")
    parser.add_argument("rating", choices=("good", "bad"), help="your verdict on the run's final image")
    parser.add_argument("--note", help="why (kept with the rating)")
    parser.add_argument("--log", default=str(DEFAULT_LOG),
                        help=f"SQLite run log (default: $M4_RUN_LOG or ./{DEFAULT_LOG})")
    args = parser.parse_args(argv)
    try:
        run_id = int(args.run)
    except ValueError:
        print(f"error: RUN: expected a run id (an integer), got {args.run!r}", file=sys.stderr)
        return 2
    log_path = Path(args.log).expanduser()
    if not log_path.is_file():
        print(f"error: --log: no run log at {log_path.resolve()} (./m4 run or ./m4 batch creates it)", file=sys.stderr)
        return 2
    from agents.runtime.run_log import RunLog, RunLogError

    with RunLog(log_path) as log:
        try:
            log.rate(run_id, args.rating, note=args.note, source="cli")
        except RunLogError as exc:
            print(f"error: RUN: {exc}", file=sys.stderr)
            return 2
        row = log.get(run_id)
    verdict = row.get("verdict") if isinstance(row.get("verdict"), dict) else {}
    judged = verdict.get("passed", row.get("accepted"))
    auto = {True: "pass", False: "fail", None: "not judged"}[None if judged is None else bool(judged)]
    print(f"[m4 rate] run {run_id} rated {args.rating} (automatic verdict: {auto})")
    return 0
