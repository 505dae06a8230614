"""`./m4 calibrate`: fit the run log into a calibrated policy overlay (a TOML beside the log) and an HTML report.

Ratings (`./m4 rate`) are preferred over the automatic Line Quality verdict. `--dry-run` prints what
would change and writes nothing. Fewer usable runs than the fit needs: says how many, exit 2. An overlay
whose doubly robust lower bound is clearly below the current policy's is refused (nothing written, exit 1).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

from cli.runs_cmd import DEFAULT_LOG


def _fmt(v: Any) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(f"{x:g}" for x in v) + "]"
    return f"{v:g}" if isinstance(v, float) else str(v)


def summary(result: Any, ds: Any) -> list[str]:
    h, p = result.heldout, result.predicted
    lines = [f"runs used: {len(ds.records)} of {ds.total_rows} ({result.provenance['outcome_source']})"]
    if ds.dropped:
        lines.append("dropped: " + "; ".join(f"{k}: {v}" for k, v in sorted(ds.dropped.items())))
    lines += [
        f"held-out (cross-validated, {int(h['heldout_runs'])} runs)   log loss   Brier",
        f"  pass-probability model  {h['model_log_loss']:8.3f}  {h['model_brier']:6.3f}",
        f"  current rules (per case){h['rules_log_loss']:8.3f}  {h['rules_brier']:6.3f}",
        f"  log-loss gain of the model, {int(100 * 0.9)}% bootstrap interval [{h['log_loss_gain_lo']:+.3f}, "
        f"{h['log_loss_gain_hi']:+.3f}]",
        f"predicted pass rate on the logged requests: current {p['current']:.3f} -> calibrated {p['calibrated']:.3f} "
        f"(gain interval [{p['gain_lo']:+.3f}, {p['gain_hi']:+.3f}] over the bootstrap refits)",
    ]
    if not result.moved:
        why = ("no change passed the confidence test" if p.get("model_trusted") else
               "the model predicts held-out runs no better than the current rules")
        if result.provenance.get("off_policy", {}).get("chosen") == "current":
            why = "no candidate's doubly robust lower bound beat the current policy's"
        lines.append(f"no value moved: {why} (the locked policy stands)")
    for m in result.moved:
        lines.append(f"  {m.key}: {_fmt(m.was)} -> {_fmt(m.value)}  ({m.reason})")
    from cli.calibrate_ope import off_policy_lines

    return lines + off_policy_lines(getattr(result, "off_policy", None))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./m4 calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("--log", default=str(DEFAULT_LOG),
                        help=f"SQLite run log (default: $M4_RUN_LOG or ./{DEFAULT_LOG})")
    parser.add_argument("--out", help="overlay file to write (default: $M4_POLICY_OVERLAY, else "
                                      "m4_policy_overlay.toml beside the log)")
    parser.add_argument("--report", help="HTML report to write (default: calibration_report.html beside the overlay)")
    parser.add_argument("--dry-run", action="store_true", help="show what would change; write nothing")
    parser.add_argument("--min-runs", type=int, help="usable runs required before fitting (default from "
                                                     "agents/calibration/calibration.toml)")
    parser.add_argument("--backend", choices=("greedy", "optuna"), default="greedy",
                        help="search back end: greedy (default, the trust-region search) or optuna (TPE, warm-started "
                             "from the log; optional package; study in m4_calibration_optuna.sqlite3 beside the log)")
    args = parser.parse_args(argv)
    log_path = Path(args.log).expanduser()
    if not log_path.is_file():
        print(f"error: --log: no run log at {log_path.resolve()} (./m4 run or ./m4 batch creates it)", file=sys.stderr)
        return 2
    from agents.calibration.calibrate import NotEnoughRuns, calibrate
    from agents.calibration.dataset import load_dataset
    from agents.calibration.off_policy import OffPolicyError
    from agents.calibration.settings import load_settings
    from agents.policy import raw_default_policy
    from agents.policy.overlay import default_overlay_path, dump_overlay, load_with_overlay
    from agents.runtime.run_log import RunLog, RunLogError

    settings = load_settings()
    if args.min_runs is not None:
        if args.min_runs < 10:
            print(f"error: --min-runs: expected at least 10, got {args.min_runs}", file=sys.stderr)
            return 2
        settings = dataclasses.replace(settings, min_runs=args.min_runs)
    t0 = time.monotonic()
    try:
        with RunLog(log_path) as log:
            ds = load_dataset(log)
    except RunLogError as exc:
        print(f"error: --log: {exc}", file=sys.stderr)
        return 2
    print(f"[m4 calibrate] {log_path.resolve()}: {ds.total_rows} row(s), {len(ds.records)} usable", flush=True)
    search = None
    if args.backend == "optuna":  # cli/calibrate_optuna.py; optuna is optional and imported only here
        from cli.calibrate_optuna import optuna_backend

        if (search := optuna_backend(log_path, ds, args.dry_run)) is None:
            return 2
    try:
        result = calibrate(ds, raw_default_policy(), settings=settings, search=search,
                           progress=lambda m: print(f"[m4 calibrate] {m}", flush=True))
    except (NotEnoughRuns, OffPolicyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in summary(result, ds):
        print(line)
    out = Path(args.out).expanduser() if args.out else default_overlay_path(beside=log_path)
    refused = result.off_policy.refused if result.off_policy is not None else None
    if refused:  # the doubly robust check (agents/calibration/off_policy.toml refuse.margin): nothing is written
        print(f"[m4 calibrate] overlay refused, nothing written to {out.resolve()}: {refused}", file=sys.stderr)
        return 0 if args.dry_run else 1
    if args.dry_run:
        print(f"[m4 calibrate] dry run: would write {len(result.moved)} moved value(s) to {out.resolve()}; "
              f"nothing written ({time.monotonic() - t0:.1f} s)")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump_overlay(result.provenance, result.moved))
    check = load_with_overlay(out)
    if not check.applied:  # never expected: the overlay is validated the way every loader will read it
        print(f"error: the written overlay does not load: {check.note}", file=sys.stderr)
        return 1
    report = Path(args.report).expanduser() if args.report else out.with_name("calibration_report.html")
    from cli.calibrate_report import write_report

    write_report(report, result, summary(result, ds))
    print(f"[m4 calibrate] overlay {out.resolve()} ({len(result.moved)} value(s) moved), report {report.resolve()} "
          f"in {time.monotonic() - t0:.1f} s; `./m4 plan/run/batch` use it from now on (--no-overlay ignores it)")
    return 0
