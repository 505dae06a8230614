"""A `./m4 batch` process whose pairs take a fixed time instead of a server run (test helper).

    python tests/host/batch_worker.py LOG PEER_URL SECONDS LEASE SKETCH... --reference REF

It runs cli.batch.run_batch for real (claims, leases, the log) with cli.run_cmd.run_one replaced by a
stand-in that writes a log row, sleeps SECONDS and finishes it; PEER_URL answers GET /queue. It prints
one JSON line: the sketch names this process ran.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO)]

import cli.run_cmd  # noqa: E402
from cli.batch import run_batch  # noqa: E402
from cli.run_cmd import ServerTarget  # noqa: E402


def main() -> None:
    args = sys.argv[1:]
    ref = Path(args[args.index("--reference") + 1])
    log_path, url, seconds, lease = Path(args[0]), args[1], float(args[2]), float(args[3])
    sketches = [Path(a) for a in args[4:args.index("--reference")]]
    ran: list[str] = []

    def run_one(target: Any, *, sketch: Path, reference: Path, log: Any, batch_id: str | None = None,
                **_: Any) -> tuple[Any, None]:
        run_id = log.start_run(sketch=sketch, reference=reference, server=target.url, batch_id=batch_id)
        ran.append(sketch.name)
        time.sleep(seconds)
        log.record(run_id, accepted=True)
        log.finish(run_id, status="done")
        return SimpleNamespace(final_passed=True, attempts=[{}], run_ids=[run_id]), None

    cli.run_cmd.run_one = run_one  # type: ignore[assignment]
    outcome = run_batch([(s, ref) for s in sketches], [ServerTarget(url)], log_path=log_path,
                        out_root=log_path.parent / "out", template=None, per_server=1, report=False,
                        lease_s=lease, say=lambda text: print(text, file=sys.stderr, flush=True))
    print(json.dumps({"ran": ran, "skipped": len(outcome.skipped), "left": len(outcome.left)}), flush=True)


if __name__ == "__main__":
    main()
