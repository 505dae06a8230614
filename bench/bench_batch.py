"""A batch of 50 pairs on two local servers, interrupted (Ctrl-C) and resumed: every pair ends with exactly one
finished run in the log and no pair runs again once done.

Run from the repository root: `python bench/bench_batch.py [pairs] [interrupt_after]`. It starts two headless
ComfyUI servers with the RANDOM-WEIGHT STAND-IN models (64x64, 3 steps per sampler), makes `pairs` distinct
sketch/reference pairs from the bundled drawings (originals and mirrored copies, so every pair has its own
file hashes), runs `python -m cli batch` on both servers, sends it SIGINT once `interrupt_after` pairs are
done, then runs the same command again and prints the counts and times.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import cv2

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from agents.runtime.run_log import RunLog  # noqa: E402
from cli.run_cmd import start_local_servers  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures"


def make_pairs(folder: Path, count: int) -> Path:
    """`count` distinct pairs as a 'sketch,reference' list: originals and mirrored copies of the fixtures."""
    def variants(paths: list[Path], sub: str) -> list[Path]:
        out = []
        (folder / sub).mkdir(parents=True)
        for path in paths:
            img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            for tag, version in (("", img), ("_mirrored", cv2.flip(img, 1)), ("_flipped", cv2.flip(img, 0))):
                target = folder / sub / f"{path.stem}{tag}.png"
                cv2.imwrite(str(target), version)
                out.append(target)
        return out

    sketches = variants(sorted((FIXTURES / "sketches").glob("*.png")), "sketches")
    references = variants(sorted((FIXTURES / "references").glob("*.*")), "references")
    pairs = [(s, r) for r in references for s in sketches][:count]
    if len(pairs) < count:
        raise SystemExit(f"only {len(pairs)} distinct pairs can be made from the fixtures")
    listing = folder / "pairs.csv"
    listing.write_text("sketch,reference\n" + "".join(f"{s},{r}\n" for s, r in pairs))
    return listing


def finished_runs(log_path: Path, batch_id: str | None = None) -> Counter[str]:
    with RunLog(log_path) as log:
        return Counter(r["pair_key"] for r in log.runs(status="done", batch_id=batch_id)
                       if r["accepted"] is None or r["accepted"] or r["attempt"] > 1)


def main(count: int = 50, interrupt_after: int = 15) -> int:
    logging.basicConfig(level=logging.ERROR)
    servers = start_local_servers(2)
    try:
        with tempfile.TemporaryDirectory(prefix="m4-bench-batch-") as tmp:
            root = Path(tmp)
            listing = make_pairs(root / "pairs", count)
            log_path = root / "runs.sqlite3"
            cmd = [sys.executable, "-m", "cli", "batch", str(listing), "--standins", "--log", str(log_path),
                   "--out", str(root / "out")]
            for server in servers:
                cmd += ["--server", server.url]
            env = {**os.environ, "PYTHONUNBUFFERED": "1"}

            t0 = time.monotonic()
            first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
            while first.poll() is None and (not log_path.exists() or len(finished_runs(log_path)) < interrupt_after):
                time.sleep(0.2)
            done_at_signal = len(finished_runs(log_path)) if log_path.exists() else 0
            first.send_signal(signal.SIGINT)
            out1, _ = first.communicate(timeout=600)
            t1 = time.monotonic()
            print(f"first batch: SIGINT after {done_at_signal} finished pairs, exit {first.returncode} "
                  f"in {t1 - t0:.1f} s; its last lines:\n  " + "\n  ".join(out1.strip().splitlines()[-3:]))
            with RunLog(log_path) as log:
                states = Counter(r["status"] for r in log.runs())
            print(f"log after the interrupt: {dict(states)}")

            second = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=3600,
                                    check=False)
            t2 = time.monotonic()
            print(f"resumed batch: exit {second.returncode} in {t2 - t1:.1f} s; its summary:\n  "
                  + second.stdout.strip().splitlines()[-1])

            with RunLog(log_path) as log:
                rows = log.runs()
                keys = {log.pair_key(s, r) for s, r in (line.split(",") for line in
                                                         listing.read_text().splitlines()[1:])}
            finals = finished_runs(log_path)
            per_server = Counter(r["server"] for r in rows if r["attempt"] == 1 and r["status"] == "done")
            firsts = Counter(r["pair_key"] for r in rows if r["attempt"] == 1)
            incomplete = Counter(r["pair_key"] for r in rows if r["status"] == "incomplete")
            rerun_after_done = sum(1 for k in keys if firsts[k] != 1 + incomplete[k])
            print(f"\npairs {len(keys)}; log rows {len(rows)} ({dict(Counter(r['status'] for r in rows))}); "
                  f"pairs with exactly one finished run {sum(1 for k in keys if finals[k] == 1)}; "
                  f"pairs with none {sum(1 for k in keys if finals[k] == 0)}; duplicates "
                  f"{sum(1 for k in keys if finals[k] > 1)}; pairs started again after being done {rerun_after_done}")
            print(f"first attempts per server: {dict(per_server)}; retries {sum(1 for r in rows if r['attempt'] > 1)}")
            print(f"total {t2 - t0:.1f} s for {len(keys)} pairs on 2 servers "
                  f"({(t2 - t0) / len(keys):.2f} s per pair, interrupt and restart included)")
            ok = all(finals[k] == 1 for k in keys) and rerun_after_done == 0 and second.returncode == 0
            print("RESULT: " + ("every pair has exactly one finished run, no duplicates" if ok else "FAILED"))
            return 0 if ok else 1
    finally:
        for server in servers:
            server.stop()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    raise SystemExit(main(*args))
