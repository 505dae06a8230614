"""Optuna as calibration's second search back end (`./m4 calibrate --backend optuna`).

The same objective as the default search: a candidate policy's mean predicted pass rate over the logged
requests re-planned under it (the fitted model and its bootstrap refits). TPE searches every tunable's
trust region; the study is warm-started with the policies the log's runs were planned with (each added
as a finished trial) and the best trials of earlier studies in the same file (enqueued). The hard rules
are constraints: a trial whose policy does not validate, whose plans break a hard rule on any logged
request, or that leaves the log's support is infeasible and never chosen. The chosen overlay then passes
the default search's confidence test, and every moved value must earn its place (reverting it must cost
predicted pass rate), else it goes back. Optuna is optional: it is imported only when this back end runs.
"""

from __future__ import annotations

import copy
import datetime as dt
import importlib.util
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..planning.animation_director import plan, plan_violations
from ..policy import PolicyError, parse_policy
from .dataset import Record
from .optuna_space import (
    OptunaSettings,
    free_space,
    logged_policies,
    params_from_values,
    policy_from_params,
)
from .search import Evaluator, Move, _confident, _passes, get_key, set_key
from .settings import Settings, Tunable

Tick = Callable[[int, int, float], None]  # (trials done, trials planned, best feasible value so far)
_SOURCE = "source"
TOOL = "m4 calibrate --backend optuna (ridge logistic pass-probability model, Optuna TPE in the trust region)"


class OptunaMissing(ValueError):
    """--backend optuna asked for, and the optional optuna package is not installed."""


def require_optuna() -> None:
    if importlib.util.find_spec("optuna") is None:
        raise OptunaMissing("--backend optuna: the optional optuna package is not installed (pip install optuna); "
                            "the default back end needs nothing extra")


def storage_url(path: Path) -> str:
    """An SQLAlchemy URL for the study file; any character of the folder's path is escaped, never parsed."""
    from sqlalchemy.engine import URL

    return URL.create("sqlite", database=str(Path(path).resolve())).render_as_string(hide_password=False)


def _study_name(policy_version: str, n_runs: int) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"m4-calibrate-{policy_version}-{n_runs}runs-{stamp}")


@dataclass
class Candidate:
    raw: dict[str, Any]
    scores: np.ndarray | None
    constraints: list[float]

    @property
    def feasible(self) -> bool:
        return self.scores is not None and all(c <= 0 for c in self.constraints)

    @property
    def value(self) -> float:
        return float(self.scores.mean()) if self.scores is not None else 0.0


def judge(raw: dict[str, Any], evaluator: Evaluator) -> Candidate:
    """A candidate's scores and its constraints: [does not validate, share of logged requests whose plan
    breaks a hard rule, outside the log's support] (each <= 0 is feasible)."""
    try:
        policy = parse_policy(raw, source="<optuna candidate>")
    except PolicyError:
        return Candidate(raw, None, [1.0, 0.0, 0.0])
    pairs = list(zip(evaluator.analyses, evaluator.references, strict=True))
    broken = sum(1 for a, r in pairs if plan_violations(plan(a, r, policy), policy))
    scores = evaluator.score(raw)
    return Candidate(raw, scores, [0.0, broken / max(len(pairs), 1), 0.0 if scores is not None else 1.0])


def _memory_study(optuna: Any, options: OptunaSettings) -> tuple[Any, bool]:
    """(an in-memory TPE study, whether trials set their constraints themselves): optuna >= 5 reads them
    from Trial.set_constraint, older versions through the sampler's constraints_func."""
    modern = hasattr(optuna.trial.Trial, "set_constraint")
    extra: dict[str, Any] = {} if modern else {"constraints_func": lambda t: t.user_attrs["constraints"]}
    sampler = optuna.samplers.TPESampler(seed=options.seed, n_startup_trials=options.startup_trials, **extra)
    return optuna.create_study(direction="maximize", sampler=sampler), modern


@dataclass
class OptunaSearch:
    """A search back end for calibrate(): call it as the default greedy_search is called."""

    records: Sequence[Record]
    storage: Path
    options: OptunaSettings
    tick: Tick | None = None
    save: bool = True  # False (--dry-run): the study is not written
    tool: str = TOOL  # the overlay's provenance; names the study once it has run
    study_name: str = ""
    warm_trials: int = 0
    enqueued: int = 0
    skipped_policies: int = 0
    trial_count: int = 0
    _seen: dict[int, Candidate] = field(default_factory=dict)

    def __call__(self, start_raw: dict[str, Any], tunables: Mapping[str, Tunable], quantiles: Mapping[str, float],
                 evaluator: Evaluator, settings: Settings,
                 progress: Callable[[str], None] | None = None) -> tuple[dict[str, Any], list[Move], np.ndarray]:
        require_optuna()
        import optuna

        say = progress or (lambda _m: None)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        base = judge(copy.deepcopy(start_raw), evaluator)
        if not base.feasible or base.scores is None:
            raise PolicyError("calibration: the locked policy does not validate on the logged requests")
        space = free_space(start_raw, tunables)
        version = str(start_raw.get("version"))
        url = storage_url(self.storage)
        earlier = self._earlier_best(optuna, url, version, space) if self.storage.is_file() else []
        # The search runs in memory (an SQLite round trip per trial is slow); the whole study is saved after.
        study, modern = _memory_study(optuna, self.options)
        dists = {k: optuna.distributions.FloatDistribution(lo, hi) for k, (lo, hi) in space.items()}
        self._warm_start(optuna, study, start_raw, tunables, dists, evaluator)
        for params in earlier:
            study.enqueue_trial(params, user_attrs={_SOURCE: "an earlier study's best trial"})
        self.enqueued = len(earlier)
        self.study_name = _study_name(version, len(self.records))
        self.tool = f"{TOOL}; study {self.study_name} in {self.storage.name}" if self.save else TOOL
        say(f"optuna: {self.warm_trials} trial(s) from the log's policies, {self.enqueued} from earlier studies, "
            f"{self.options.n_trials} new, over {len(space)} parameters")

        def objective(trial: Any) -> float:
            params = {k: trial.suggest_float(k, lo, hi) for k, (lo, hi) in space.items()}
            cand = judge(policy_from_params(start_raw, tunables, params), evaluator)
            trial.set_user_attr("constraints", cand.constraints)
            trial.set_user_attr(_SOURCE, trial.user_attrs.get(_SOURCE, "sampled"))
            if modern:
                for i, c in enumerate(cand.constraints):
                    trial.set_constraint(str(i), c)
            self._seen[trial.number] = cand
            return cand.value

        total = self.options.n_trials + self.enqueued
        study.optimize(objective, n_trials=total, callbacks=[self._ticker(total, base.value)])
        self.trial_count = len(study.trials)
        self._save(optuna, study, url, version, say)
        return self._choose(start_raw, tunables, quantiles, evaluator, settings, base, say)

    def _ticker(self, total: int, start: float) -> Callable[[Any, Any], None]:
        best = [start]

        def on_trial(_study: Any, frozen: Any) -> None:
            cand = self._seen.get(frozen.number)
            if cand is not None and cand.feasible:
                best[0] = max(best[0], cand.value)
            if self.tick:
                self.tick(frozen.number + 1 - self.warm_trials, total, best[0])

        return on_trial

    def _save(self, optuna: Any, study: Any, url: str, version: str, say: Callable[[str], None]) -> None:
        if not self.save:
            say(f"optuna: dry run, the study ({self.trial_count} trials) is not saved")
            return
        say(f"optuna: saving the study ({self.trial_count} trials) as {self.study_name} in {self.storage}")
        self.storage.parent.mkdir(parents=True, exist_ok=True)
        saved = optuna.create_study(storage=url, study_name=self.study_name, direction="maximize")
        saved.set_user_attr("policy_version", version)
        saved.set_user_attr("run_count", len(self.records))
        saved.add_trials(study.trials)

    def _warm_start(self, optuna: Any, study: Any, start_raw: dict[str, Any], tunables: Mapping[str, Tunable],
                    dists: Mapping[str, Any], evaluator: Evaluator) -> None:
        """Each policy the log's runs were planned with, as a finished trial scored by the same objective."""
        for logged in logged_policies(self.records):
            params = params_from_values(start_raw, tunables, logged.moved)
            if params is None:
                self.skipped_policies += 1
                continue
            cand = judge(policy_from_params(start_raw, tunables, params), evaluator)
            attrs = {_SOURCE: "run log", "runs": len(logged.run_ids), "run_ids": logged.run_ids[:200],
                     "observed_pass_rate": logged.passed / len(logged.run_ids), "constraints": cand.constraints,
                     "overlay": {k: v for k, v in logged.moved.items()}}
            study.add_trial(optuna.trial.create_trial(params=params, distributions=dict(dists), value=cand.value,
                                                      user_attrs=attrs, system_attrs={"constraints": cand.constraints}))
            self._seen[len(study.trials) - 1] = cand
            self.warm_trials += 1

    def _earlier_best(self, optuna: Any, url: str, version: str, space: Mapping[str, tuple[float, float]]
                      ) -> list[dict[str, float]]:
        """The best feasible trial of every earlier study in the file made for this policy version, when its
        parameters fit today's search space (re-scored: the model changes as the log grows)."""
        out: list[dict[str, float]] = []
        for summary in optuna.get_all_study_summaries(url, include_best_trial=False):
            if summary.user_attrs.get("policy_version") != version:
                continue
            trials = optuna.load_study(study_name=summary.study_name, storage=url).get_trials(deepcopy=False)
            done = [t for t in trials if t.value is not None and set(t.params) == set(space)
                    and all(c <= 0 for c in t.user_attrs.get("constraints", [1.0]))
                    and all(space[k][0] <= v <= space[k][1] for k, v in t.params.items())]
            if done:
                out.append(dict(max(done, key=lambda t: t.value).params))
        return out

    def _choose(self, start_raw: dict[str, Any], tunables: Mapping[str, Tunable], quantiles: Mapping[str, float],
                evaluator: Evaluator, settings: Settings, base: Candidate,
                say: Callable[[str], None]) -> tuple[dict[str, Any], list[Move], np.ndarray]:
        """The best feasible trial, pruned to the moves that earn their place; no change unless it passes the
        default search's confidence test."""
        assert base.scores is not None  # noqa: S101  (checked feasible by the caller)
        feasible = [c for c in self._seen.values() if c.feasible]
        if not feasible:
            say("optuna: no feasible trial beat the locked policy: nothing moves")
            return copy.deepcopy(start_raw), [], np.zeros_like(base.scores)
        best = max(feasible, key=lambda c: c.value)
        for key in tunables:  # the default search's per-move test, on what reverting each move alone costs
            if get_key(best.raw, key) == get_key(start_raw, key):
                continue
            reverted = _without(best, key, start_raw, evaluator)
            if reverted.feasible and (reverted.scores is None or best.scores is None
                                      or not _passes(best.scores - reverted.scores, settings)):
                best = reverted
        assert best.scores is not None  # noqa: S101  (feasible)
        gain = best.scores - base.scores
        if not _confident(gain, settings):
            say(f"optuna: the best feasible trial ({best.value - base.value:+.3f} predicted) does not pass the "
                "confidence test: nothing moves")
            return copy.deepcopy(start_raw), [], np.zeros_like(base.scores)
        moves = [self._move(key, best, start_raw, evaluator, quantiles, tunables) for key in tunables
                 if get_key(best.raw, key) != get_key(start_raw, key)]
        return best.raw, moves, gain

    def _move(self, key: str, best: Candidate, start_raw: dict[str, Any], evaluator: Evaluator,
              quantiles: Mapping[str, float], tunables: Mapping[str, Tunable]) -> Move:
        """One moved value; its gain is what reverting it alone would cost."""
        assert best.scores is not None  # noqa: S101  (feasible)
        alone = _without(best, key, start_raw, evaluator)
        delta = best.scores - alone.scores if alone.scores is not None else np.zeros_like(best.scores)
        note = (f"Optuna TPE, best feasible of {self.trial_count} trials ({self.warm_trials} from the log's "
                "policies); the gain is what reverting this value alone costs")
        return Move(key=key, value=get_key(best.raw, key), was=get_key(start_raw, key), gain=float(delta.mean()),
                    agree=float(np.mean(delta > 0)), quantile_note=note)


def _without(cand: Candidate, key: str, start_raw: Mapping[str, Any], evaluator: Evaluator) -> Candidate:
    """The candidate with one value put back to the locked policy's."""
    raw = copy.deepcopy(cand.raw)
    set_key(raw, key, get_key(start_raw, key))
    return judge(raw, evaluator)
