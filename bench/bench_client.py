"""Client overhead per run: everything `./m4 run` does except the server's own work.

Run from the repository root: `python bench/bench_client.py [runs]`. Starts a headless ComfyUI with the
RANDOM-WEIGHT STAND-IN models (64x64, 3 steps when the steps are literal values), runs
agents.m4_runner.run_pair on a bundled sketch + reference `runs` times after one warm-up, and per run prints:
  wall     run_pair end to end (planning, template apply, upload, submit/wait, download, judge, log; both
           attempts when the judge fails the first)
  server   the server's execution time of the prompts, execution_start -> execution_success from the
           timestamps in each /history entry's status
  queued   submit -> execution_start (the server's queue and its between-prompt housekeeping)
  overhead wall - server - queued (target: < 100 ms), and its parts from the run log's stage timings
  cpu      the client process's own CPU time for the run (what the client itself computes)
`--plan-on-server` lets the server's M4 nodes analyse and plan (run_pair(plan_on_server=True)).
ComfyUI runs gc.collect() in its worker thread between prompts at most every 10 s; an HTTP request that
lands during it waits (a few hundred ms here), which shows up in "running - server" of some runs.
The per-run HTML report is not part of run_pair and is timed on its own line.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.m4_runner import run_pair  # noqa: E402
from agents.run_log import RunLog  # noqa: E402
from cli.run_cmd import (  # noqa: E402
    RecordingClient,
    connect,
    pair_report,
    server_seconds,
    start_local_servers,
    status_stamps,
)

REPO = Path(__file__).resolve().parents[1]
SKETCH = REPO / "tests" / "fixtures" / "sketches" / "house_line.png"
REFERENCE = REPO / "tests" / "fixtures" / "references" / "saber.png"
STAGES = ("planning", "uploading", "applying", "running", "downloading", "judging")


def main(runs: int = 5, plan_on_server: bool = False) -> None:
    logging.getLogger("m4.template_run").setLevel(logging.ERROR)  # the stand-in swap is listed once below
    [server] = start_local_servers(1)
    try:
        target = connect(server.url, standins=True, template=None)
        with tempfile.TemporaryDirectory(prefix="m4-bench-client-") as tmp, RunLog(Path(tmp) / "runs.db") as log:
            rows = []
            for i in range(runs + 1):
                client = RecordingClient(server.url)
                t0, c0 = time.perf_counter(), time.process_time()
                result = run_pair(client, sketch=SKETCH, reference=REFERENCE, out_dir=Path(tmp) / f"r{i}", log=log,
                                  prepare=target.prepare, plan_on_server=plan_on_server)
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                t1 = time.perf_counter()
                pair_report(result, client, log, sketch=SKETCH, reference=REFERENCE, target=target)
                report_s = time.perf_counter() - t1
                served = [server_seconds(client.entries[p]) for p in client.waited]
                if any(s is None for s in served):
                    raise SystemExit("a /history entry had no execution timestamps; cannot separate server time")
                server_s = sum(s for s in served if s is not None)
                # Time between our submit and the server starting the prompt: its queue and its own
                # housekeeping (ComfyUI runs gc.collect() between prompts at most every 10 s).
                queued_s = sum(max(0.0, status_stamps(client.entries[p]).get("execution_start", 0) / 1000.0
                                   - client.submitted[p]) for p in client.waited)
                parts: dict[str, float] = {}
                for run_id in result.run_ids:
                    for stage in STAGES:
                        parts[stage] = parts.get(stage, 0.0) + float(
                            (log.get(run_id).get("timings") or {}).get(f"{stage}_s", 0.0))
                parts["running - server"] = parts.pop("running") - server_s - queued_s
                label = "warm-up" if i == 0 else f"run {i}"
                mode = "server-side planning" if plan_on_server else "planning here"
                own = wall - server_s - queued_s
                print(f"{label:<8} [{mode}] attempts={len(result.attempts)} wall={wall * 1000:7.1f} ms "
                      f"server={server_s * 1000:7.1f} ms queued={queued_s * 1000:6.1f} ms "
                      f"overhead={own * 1000:6.1f} ms (with queue {(wall - server_s) * 1000:6.1f}) "
                      f"client cpu={cpu * 1000:6.1f} ms  "
                      + " ".join(f"{k}={v * 1000:.1f}" for k, v in parts.items())
                      + f"  (report {report_s * 1000:.0f} ms)", flush=True)
                if i:
                    rows.append((own, own / len(result.attempts), len(result.attempts), wall - server_s, cpu))
            over = [r[0] for r in rows]
            per_attempt = [r[1] for r in rows]
            print(f"\nclient overhead per run over {runs} runs: median {statistics.median(over) * 1000:.1f} ms, "
                  f"max {max(over) * 1000:.1f} ms; per attempt median {statistics.median(per_attempt) * 1000:.1f} ms "
                  f"(target < 100 ms per run); counting the server's queue/housekeeping wait as ours too: "
                  f"median {statistics.median([r[3] for r in rows]) * 1000:.1f} ms; the client process's own CPU "
                  f"time per run: median {statistics.median([r[4] for r in rows]) * 1000:.1f} ms")
    finally:
        server.stop()


if __name__ == "__main__":
    # python bench/bench_client.py [runs] [--plan-on-server]
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 5, plan_on_server="--plan-on-server" in sys.argv[1:])
