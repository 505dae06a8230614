"""calibration_report.html: the terminal summary, the moved values, and plots (signal distributions per case
before and after, the held-out reliability diagram, each moved value) drawn with matplotlib when it is
installed (the test venv has it; ComfyUI does not need it: without it the report has the tables only)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plots(result: Any) -> list[tuple[str, str]]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    out: list[tuple[str, str]] = []
    for sig in ("complexity_score", "subject_scale", "line_quality_score"):
        fig, axes = plt.subplots(1, 2, figsize=(9, 2.6), sharey=True)
        for ax, label in zip(axes, ("before", "after"), strict=True):
            data = result.distributions.get(f"{sig}|{label}", {})
            for case, values in sorted(data.items()):
                ax.hist(values, bins=15, range=(0, 1), alpha=0.5, label=f"{case} ({len(values)})")
            ax.set_title(f"{sig}, cases {label} calibration", fontsize=9)
            ax.legend(fontsize=7)
        out.append((f"{sig} per case", _png(fig)))
        plt.close(fig)
    p, y = np.array(result.reliability.get("p", [])), np.array(result.reliability.get("y", []))
    if len(p):
        fig, ax = plt.subplots(figsize=(3.6, 3.4))
        bins = np.linspace(0, 1, 6)
        idx = np.clip(np.digitize(p, bins) - 1, 0, len(bins) - 2)
        xs = [float(p[idx == b].mean()) for b in range(len(bins) - 1) if (idx == b).any()]
        ys = [float(y[idx == b].mean()) for b in range(len(bins) - 1) if (idx == b).any()]
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.plot(xs, ys, "o-")
        ax.set_xlabel("predicted pass probability")
        ax.set_ylabel("observed pass rate")
        ax.set_title("held-out reliability", fontsize=9)
        out.append(("reliability diagram (held-out runs)", _png(fig)))
        plt.close(fig)
    if result.moved:
        fig, ax = plt.subplots(figsize=(7, 0.45 * len(result.moved) + 1))
        for i, m in enumerate(result.moved):
            was = m.was if isinstance(m.was, list) else [m.was, m.was]
            new = m.value if isinstance(m.value, list) else [m.value, m.value]
            span = max(abs(was[1]), 1e-9)
            ax.plot([was[0] / span, was[1] / span], [i, i], lw=6, alpha=0.35, color="grey")
            ax.plot([new[0] / span, new[1] / span], [i, i], lw=2, marker="|", color="C1")
        ax.set_yticks(range(len(result.moved)), [m.key for m in result.moved], fontsize=7)
        ax.set_xlabel("value / locked upper value (grey: locked, orange: calibrated)")
        out.append(("moved values", _png(fig)))
        plt.close(fig)
    return out


def write_report(path: Path, result: Any, summary_lines: list[str]) -> Path:
    rows = "".join(f"<tr><td><code>{html.escape(m.key)}</code></td><td>{html.escape(str(m.was))}</td>"
                   f"<td>{html.escape(str(m.value))}</td><td>{html.escape(m.reason)}</td></tr>" for m in result.moved)
    plots = "".join(f"<h3>{html.escape(t)}</h3><img alt='{html.escape(t)}' src='data:image/png;base64,{b}'>"
                    for t, b in _plots(result))
    prov = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                   for k, v in result.provenance.items())
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>M4 calibration</title>"
            f"<style>body{{font-family:sans-serif;margin:2em}}td{{border-bottom:1px solid #ddd;padding:3px 8px}}"
            f"pre{{background:#f5f5f5;padding:1em}}</style></head><body><h1>M4 calibration report</h1>"
            f"<pre>{html.escape(chr(10).join(summary_lines))}</pre>"
            f"<h2>Moved values</h2><table><tr><th>key</th><th>was</th><th>now</th><th>reason</th></tr>{rows}</table>"
            f"<h2>Provenance</h2><table>{prov}</table><h2>Plots</h2>{plots or '<p>(matplotlib not installed)</p>'}"
            f"</body></html>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
