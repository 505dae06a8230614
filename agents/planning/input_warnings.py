"""The warnings a plan carries about its inputs, one line each: values the Director could not trust
(NaN, infinite or out of range: replaced, and by what) and a sketch with nothing to animate."""

from __future__ import annotations

from typing import Any

EMPTY_SKETCH = ("the sketch is empty (no strokes found: blank, uniform or noise only): planned as a single "
                "simple object; a generation from it has nothing to follow")


def _value(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def input_warnings(sanitised: list[dict[str, Any]], *, empty: bool) -> list[str]:
    """'analysis.similarity was nan: used 0.3 (not a finite number: ...)' per substitution, and the empty
    sketch; the plan's diagnostics['warnings'], shown on the Director node, the terminal and the report."""
    out = [EMPTY_SKETCH] if empty else []
    for entry in sanitised:
        out.append(f"{entry.get('field')} was {_value(entry.get('before'))}: used {_value(entry.get('after'))} "
                   f"({entry.get('reason')})")
    return out
