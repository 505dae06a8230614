"""Runs read from the run log into records a fit can use: context (analysis + reference), the values run, the outcome.

A person's rating is preferred over the Line Quality verdict. Runs without an outcome, without the
reports they were planned from, or with a non-finite number anywhere the fit reads are dropped and
counted by reason (never silently used).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ..measure.analysis_types import ReferenceReport, VisualAnalysis
from ..policy import VALUE_NAMES
from ..policy.data_checks import is_number
from ..runtime.run_log import RunLog

ANALYSIS_NUMBERS = ("line_quality_score", "construction_lines", "broken_lines", "complexity_score",
                    "subject_scale", "anatomy_risk_score")
REFERENCE_NUMBERS = ("similarity", "conflict_penalty", "style_distance", "accessory_conflict")


@dataclass(frozen=True)
class LoggedDraw:
    """What `--explore` logged: the pre-rule draw, the log of its density and the jitter share (checked by
    off_policy.check_logged, which names the run when a value is unusable)."""

    draw: Any
    log_density: Any
    share: Any
    windows: Any = None  # {value: [lo, hi]} of the logged kernel (newer logs): how much of a candidate's it covers


@dataclass
class Record:
    """One logged attempt a fit can learn from."""

    run_id: int
    analysis: VisualAnalysis
    reference: ReferenceReport
    values: dict[str, float]
    outcome: int
    outcome_source: str  # "rating" | "verdict"
    created_at: float
    propensity: float | None = None
    planned_with: dict[str, Any] | None = None  # the calibrated overlay's moved values it was planned with
    exploration: LoggedDraw | None = None  # None: the run was not explored (off-policy evaluation leaves it out)


@dataclass
class Dataset:
    records: list[Record]
    dropped: dict[str, int] = field(default_factory=dict)
    total_rows: int = 0

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1

    @property
    def sources(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.records:
            out[r.outcome_source] = out.get(r.outcome_source, 0) + 1
        return out


def _reports(row: dict[str, Any], by_id: dict[int, dict[str, Any]]) -> tuple[Any, Any]:
    metrics = row.get("metrics") or {}
    if "analysis" not in metrics and row.get("parent_run") in by_id:  # a retry: planned from its parent's reports
        metrics = by_id[row["parent_run"]].get("metrics") or {}
    return metrics.get("analysis"), metrics.get("reference")


def record_from_row(row: dict[str, Any], rating: dict[str, Any] | None, by_id: dict[int, dict[str, Any]],
                    ds: Dataset) -> Record | None:
    if rating is not None:
        outcome, source = int(rating["rating"] == "good"), "rating"
    elif isinstance(row.get("verdict"), dict) and isinstance(row["verdict"].get("passed"), bool):
        outcome, source = int(row["verdict"]["passed"]), "verdict"  # the judge's verdict (not a forced retry)
    elif row.get("accepted") is not None:
        outcome, source = int(bool(row["accepted"])), "verdict"
    else:
        ds.drop("no outcome (neither a rating nor a verdict)")
        return None
    plan = row.get("plan")
    analysis, reference = _reports(row, by_id)
    if not isinstance(plan, dict) or not isinstance(analysis, dict) or not isinstance(reference, dict):
        ds.drop("no plan or no analysis/reference report logged")
        return None
    values = {n: plan.get(n) for n in VALUE_NAMES}
    numbers = [*values.values(), *(analysis.get(k) for k in ANALYSIS_NUMBERS),
               *(reference.get(k) for k in REFERENCE_NUMBERS)]
    if not all(is_number(v) for v in numbers):
        ds.drop("a NaN, infinite or missing number in the plan or the reports")
        return None
    try:
        a, r = VisualAnalysis.from_dict(analysis), ReferenceReport.from_dict(reference)
    except (TypeError, ValueError):
        ds.drop("an analysis/reference report this code cannot read")
        return None
    diag = row.get("diagnostics") or {}
    explore = diag.get("exploration")
    logged = None
    if isinstance(explore, dict) and "log_density" in explore:  # the draw itself; older logs: diagnostics.pre_rules
        logged = LoggedDraw(draw=explore.get("draw", diag.get("pre_rules")), log_density=explore["log_density"],
                            share=explore.get("share"), windows=explore.get("windows"))
    ld: Any = logged.log_density if logged is not None else None
    overlay = diag.get("policy_overlay")
    moved = overlay.get("moved") if isinstance(overlay, dict) and overlay.get("applied") is True else None
    return Record(run_id=int(row["id"]), analysis=a, reference=r,
                  values={k: float(v) for k, v in values.items() if v is not None},
                  outcome=outcome, outcome_source=source, created_at=float(row["created_at"]),
                  propensity=math.exp(float(ld)) if is_number(ld) else None, exploration=logged,
                  planned_with=dict(moved) if isinstance(moved, dict) else None)


def load_dataset(log: RunLog) -> Dataset:
    """Every finished run of the log as a record, or counted in `dropped` with the reason."""
    rows = log.runs()
    ratings = log.ratings()
    by_id = {int(r["id"]): r for r in rows}
    ds = Dataset(records=[], total_rows=len(rows))
    for row in rows:
        if row.get("status") != "done":
            ds.drop(f"status {row.get('status')} (only finished runs count)")
            continue
        rec = record_from_row(row, ratings.get(int(row["id"])), by_id, ds)
        if rec is not None:
            ds.records.append(rec)
    return ds
