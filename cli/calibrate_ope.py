"""The off-policy lines of `./m4 calibrate`'s summary (terminal and HTML report): IPS, SNIPS and doubly robust
estimates of the current and the calibrated policy on the explored runs, and the refusal when there is one."""

from __future__ import annotations

from typing import Any


def _row(label: str, e: Any) -> str:
    iv = e.intervals
    return (f"  {label:<11}{e.ips:6.3f} [{iv['ips'][0]:.3f}, {iv['ips'][1]:.3f}]  {e.snips:6.3f} "
            f"[{iv['snips'][0]:.3f}, {iv['snips'][1]:.3f}]  {e.dr:6.3f} [{iv['dr'][0]:.3f}, {iv['dr'][1]:.3f}]  "
            f"{e.ess:6.1f}  {e.support:7.2f}  {e.clipped:>3}/{e.zero_weight}")


def off_policy_lines(ope: Any) -> list[str]:
    if ope is None:
        return []
    if ope.current is None or ope.calibrated is None:
        return [ope.note]
    level = f"{ope.level:.0%}"
    lines = [f"{ope.note}; {level} bootstrap intervals (the policy's plan with the log's jitter kernel):",
             f"  {'policy':<11}{'IPS':>6} {'interval':<16}{'SNIPS':>6} {'interval':<16}{'DR':>6} {'interval':<16}"
             f"{'ESS':>6}  {'support':>7}  clipped/zero weights",
             _row("current", ope.current), _row("calibrated", ope.calibrated)]
    lo, hi = ope.dr_gain_interval()
    lines.append(f"  DR gain of the calibrated policy, paired {level} interval [{lo:+.3f}, {hi:+.3f}]")
    lines.append("  (support: the share of the policy's kernel the logged draws covered; IPS counts the rest as "
                 "failures, DR trusts the model there)")
    if ope.refused:
        lines.append(f"REFUSED: {ope.refused}")
    return lines
