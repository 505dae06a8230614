"""`./m4 calibrate --backend optuna`: the Optuna search back end (agents/calibration/optuna_search.py) with its
study in m4_calibration_optuna.sqlite3 beside the run log and a ComfyUI-style (tqdm-like) progress bar."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

BAR_WIDTH = 20


class TrialBar:
    """`optuna  40%|########            | 80/200 [00:03<00:04, 26.1 trial/s, best 0.612]` on stderr: redrawn
    in place on a terminal, one line per tenth of the trials otherwise."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._tenth = -1

    @staticmethod
    def _clock(seconds: float) -> str:
        m, s = divmod(int(seconds), 60)
        return f"{m:02d}:{s:02d}"

    def __call__(self, done: int, total: int, best: float) -> None:
        total = max(total, 1)
        done = min(max(done, 0), total)
        elapsed = time.monotonic() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (total - done) / rate if rate > 0 else 0.0
        filled = BAR_WIDTH * done // total
        line = (f"optuna {100 * done // total:3d}%|{'#' * filled}{' ' * (BAR_WIDTH - filled)}| {done}/{total} "
                f"[{self._clock(elapsed)}<{self._clock(left)}, {rate:.1f} trial/s, best {best:.3f}]")
        if self.tty:
            self.stream.write("\r" + line + ("\n" if done == total else ""))
        elif 10 * done // total > self._tenth:
            self._tenth = 10 * done // total
            self.stream.write(line + "\n")
        self.stream.flush()


def optuna_backend(log_path: Path, ds: Any, dry_run: bool = False) -> Any:
    """The search back end for calibrate(), or None after one `error:` line (optuna missing, bad settings)."""
    from agents.calibration.optuna_search import OptunaMissing, OptunaSearch, require_optuna
    from agents.calibration.optuna_space import load_optuna_settings, study_path
    from agents.calibration.settings import CalibrationConfigError

    try:
        require_optuna()
        options = load_optuna_settings()
    except (OptunaMissing, CalibrationConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    return OptunaSearch(ds.records, study_path(log_path), options, tick=TrialBar(), save=not dry_run)
