"""Client overhead per run: everything `./m4 run` does except the server's own work.

Run from the repository root: `python bench/bench_client.py [runs]`. Starts a headless ComfyUI with the
RANDOM-WEIGHT STAND-IN models (64x64, 3 steps when the steps are literal values), runs
agents.runtime.runner.run_pair `runs` times per mode after one warm-up, the bundled sketches in turn with one
reference, the two modes alternating so machine noise hits both alike. Every run's sketch is a new file
(same pixels, bytes no earlier run saw), so its upload and analysis really happen:
  cold     the reference is a new file too: nothing is found on the server or in the client's
           reference cache (run_pair called on a pair never seen)
  cli      as cold, with the reference's measurement started before connecting to the server, as
           `./m4 run` and `./m4 batch` do (connecting is not counted: it is once per command)
  batch    the reference of the earlier pairs: measured once per process and uploaded once per server
           (each further pair of `./m4 batch`)
and per run prints:
  wall     run_pair end to end (planning, template apply, upload, submit/wait, download, judge, log; both
           attempts when the judge fails the first)
  server   the server's execution time of the prompts, execution_start -> execution_success from the
           timestamps in each /history entry's status
  queued   POST /prompt answered -> execution_start (the server picking the prompt up, and its between-prompt
           housekeeping); the websocket connect and the POST round trip count as the client's
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

from PIL import Image, PngImagePlugin

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.measure.reference_cache import prefetch_reference  # noqa: E402
from agents.runtime.run_log import RunLog  # noqa: E402
from agents.runtime.runner import run_pair  # noqa: E402
from cli.run_cmd import (  # noqa: E402
    RecordingClient,
    connect,
    pair_report,
    server_seconds,
    start_local_servers,
    status_stamps,
)

REPO = Path(__file__).resolve().parents[1]
SKETCHES = sorted((REPO / "tests" / "fixtures" / "sketches").glob("*.png"))
REFERENCE = REPO / "tests" / "fixtures" / "references" / "saber.png"
STAGES = ("planning", "uploading", "applying", "running", "downloading", "judging")
# cold: nothing seen before: new sketch and reference files, in neither the client's cache nor on the server.
# cli:  the same new files, with the reference's measurement started before connecting (GET /object_info),
#       as `./m4 run` does (its connect is not counted, as in the other modes).
# batch: a new sketch file with the reference earlier pairs used, as each further pair of `./m4 batch` pays.
MODES = ("cold", "cli", "batch")


def _fresh_copy(src: Path, dest: Path, tag: str) -> Path:
    """src's pixels in a file whose bytes no earlier run saw (a text chunk differs), so its upload and
    analysis really happen instead of being found on the server or in a cache."""
    info = PngImagePlugin.PngInfo()
    info.add_text("m4-bench", tag)
    with Image.open(src) as img:
        img.save(dest, pnginfo=info)
    return dest


class _StampedLog(RunLog):
    """The run log, noting when each attempt's verdict was logged: where a run that passes ends."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.judged: dict[int, float] = {}

    def record(self, run_id: int, **fields) -> None:
        super().record(run_id, **fields)
        if "judging_s" in (fields.get("timings") or {}):
            self.judged[run_id] = time.perf_counter()


def _one_run(server_url: str, target, log: _StampedLog, sketch: Path, reference: Path, out: Path,
             plan_on_server: bool) -> dict:
    with RecordingClient(server_url) as client:  # a new client per pair, as ./m4 run and batch make
        t0, c0 = time.perf_counter(), time.process_time()
        result = run_pair(client, sketch=sketch, reference=reference, out_dir=out, log=log,
                          prepare=target.prepare, plan_on_server=plan_on_server)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        t1 = time.perf_counter()
        pair_report(result, client, log, sketch=sketch, reference=reference, target=target)
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
            parts[stage] = parts.get(stage, 0.0) + float((log.get(run_id).get("timings") or {}).get(f"{stage}_s", 0.0))
    parts["running - server"] = parts.pop("running") - server_s - queued_s
    # Up to the first verdict: what a run that passes on its first attempt costs (the stand-ins' noise
    # never passes, so every run here also pays for the retry).
    first = client.waited[0]
    first_own = (log.judged[result.run_ids[0]] - t0 - (served[0] or 0.0)
                 - max(0.0, status_stamps(client.entries[first]).get("execution_start", 0) / 1000.0
                       - client.submitted[first]))
    return {"wall": wall, "cpu": cpu, "server": server_s, "queued": queued_s, "own": wall - server_s - queued_s,
            "attempts": len(result.attempts), "parts": parts, "report": report_s, "first": first_own}


def main(runs: int = 5, plan_on_server: bool = False) -> None:
    logging.getLogger("m4.template_run").setLevel(logging.ERROR)  # the stand-in swap is listed once below
    [server] = start_local_servers(1)
    where = "server-side planning" if plan_on_server else "planning here"
    try:
        target = connect(server.url, standins=True, template=None)
        with tempfile.TemporaryDirectory(prefix="m4-bench-client-") as tmp, _StampedLog(Path(tmp) / "runs.db") as log:
            rows: dict[str, list[dict]] = {mode: [] for mode in MODES}
            n = 0
            for i in range(runs + 1):
                for mode in MODES:  # side by side, so machine noise hits both modes alike
                    n += 1
                    sketch = _fresh_copy(SKETCHES[n % len(SKETCHES)], Path(tmp) / f"sketch{n}.png", str(n))
                    reference = REFERENCE
                    if mode != "batch":  # bytes never seen: a miss in the client's cache and on the server
                        reference = _fresh_copy(REFERENCE, Path(tmp) / f"reference{n}.png", str(n))
                    if mode == "cli":
                        prefetch_reference(reference)
                        target = connect(server.url, standins=True, template=None)
                    r = _one_run(server.url, target, log, sketch, reference, Path(tmp) / f"r{n}", plan_on_server)
                    label = "warm-up" if i == 0 else f"run {i}"
                    shown = SKETCHES[n % len(SKETCHES)].name
                    print(f"{label:<8} {mode:<5} [{where}] {shown:<17} attempts={r['attempts']} "
                          f"wall={r['wall'] * 1000:7.1f} ms server={r['server'] * 1000:7.1f} ms "
                          f"queued={r['queued'] * 1000:6.1f} ms overhead={r['own'] * 1000:6.1f} ms "
                          f"client cpu={r['cpu'] * 1000:6.1f} ms  "
                          + " ".join(f"{k}={v * 1000:.1f}" for k, v in r["parts"].items())
                          + f"  (report {r['report'] * 1000:.0f} ms)", flush=True)
                    if i:
                        rows[mode].append(r)
            print(f"\nclient overhead per run (target < 100 ms), {runs} runs per mode, reference {REFERENCE.name}, "
                  f"sketches cycling over {len(SKETCHES)} (new bytes each run):")
            for mode in MODES:
                own = [r["own"] for r in rows[mode]]
                first = statistics.median([r["first"] for r in rows[mode]])
                print(f"  {mode:<5} median {statistics.median(own) * 1000:6.1f} ms, max {max(own) * 1000:6.1f} ms "
                      f"(two attempts); up to the first verdict (a run that passes at once) {first * 1000:5.1f} ms; "
                      f"with the server's queue/housekeeping wait "
                      f"{statistics.median([r['own'] + r['queued'] for r in rows[mode]]) * 1000:6.1f} ms; "
                      f"client CPU {statistics.median([r['cpu'] for r in rows[mode]]) * 1000:6.1f} ms")
    finally:
        server.stop()


if __name__ == "__main__":
    # python bench/bench_client.py [runs] [--plan-on-server]
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 5, plan_on_server="--plan-on-server" in sys.argv[1:])
