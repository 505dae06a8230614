"""Leases on a batch's pairs in the run log, so several `./m4 batch` processes on one log share the work.

A process claims a pair before running it (one transaction: not done in the batch, and no live claim
of another process), keeps its claims alive while it runs, and frees them when it ends. A process that
dies stops renewing: its claims expire after the lease and another process takes the pairs over.

    claims = PairClaims(log, owner=new_owner())
    if claims.claim(batch, key, lease_s=120) == "mine": ...
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Literal

from .run_log import RunLog, RunLogError

ClaimState = Literal["mine", "done", "busy"]
# A claim's lease is renewed this many times within one lease, so one late renewal does not lose it.
RENEWALS_PER_LEASE = 3
LEASE_RANGE_S = (2.0, 86400.0)


def new_owner() -> str:
    """A claim owner id unique to this process: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def check_lease(lease_s: float) -> float:
    lo, hi = LEASE_RANGE_S
    if not isinstance(lease_s, int | float) or not lo <= float(lease_s) <= hi:
        raise RunLogError(f"lease: expected seconds in {lo:g}..{hi:g}, got {lease_s!r}")
    return float(lease_s)


class PairClaims:
    """One process's claims in one run log (the log's connection, so one thread)."""

    def __init__(self, log: RunLog, owner: str) -> None:
        self.log = log
        self.owner = owner

    def claim(self, batch_id: str, pair_key: str, lease_s: float) -> ClaimState:
        """'mine' (claimed now, or already ours), 'done' (finished in this batch) or 'busy' (another
        process holds a live claim)."""
        lease_s = check_lease(lease_s)
        db = self.log.connection
        now = time.time()
        db.execute("BEGIN IMMEDIATE")  # the check and the write in one transaction: two processes cannot both win
        try:
            if pair_key in self.log.done_pairs(batch_id, pair_key=pair_key):
                state: ClaimState = "done"
            else:
                row = db.execute("SELECT owner, expires_at FROM claims WHERE batch_id = ? AND pair_key = ?",
                                 (batch_id, pair_key)).fetchone()
                if row is not None and row[0] != self.owner and float(row[1]) > now:
                    state = "busy"
                else:
                    db.execute("INSERT OR REPLACE INTO claims (batch_id, pair_key, owner, expires_at) "
                               "VALUES (?, ?, ?, ?)", (batch_id, pair_key, self.owner, now + lease_s))
                    state = "mine"
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return state

    def renew(self, lease_s: float) -> int:
        """Extend every claim of this owner by a lease from now; returns how many."""
        cur = self.log.connection.execute("UPDATE claims SET expires_at = ? WHERE owner = ?",
                                          (time.time() + check_lease(lease_s), self.owner))
        return int(cur.rowcount)

    def release_all(self) -> None:
        self.log.connection.execute("DELETE FROM claims WHERE owner = ?", (self.owner,))

    def held(self) -> list[tuple[str, str, float]]:
        """(batch_id, pair_key, expires_at) of every claim in the log, any owner."""
        return [(str(r[0]), str(r[1]), float(r[2])) for r in
                self.log.connection.execute("SELECT batch_id, pair_key, expires_at FROM claims ORDER BY pair_key")]


class LeaseKeeper:
    """A thread renewing one owner's claims (on its own connection) until stopped."""

    def __init__(self, log_path: Path, owner: str, lease_s: float) -> None:
        self.lease_s = check_lease(lease_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(log_path, owner), name="m4-lease", daemon=True)

    def _run(self, log_path: Path, owner: str) -> None:
        with RunLog(log_path) as log:
            claims = PairClaims(log, owner)
            while not self._stop.wait(self.lease_s / RENEWALS_PER_LEASE):
                claims.renew(self.lease_s)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
