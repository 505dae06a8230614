"""`./m4 batch`: many sketch/reference pairs across one or more ComfyUI servers, resumable from the run log.

Pairs come from a folder (every image in it, each with --reference) or a list file of "sketch,reference"
lines (CSV or plain text; paths relative to the list's folder; '#' comments and a header line allowed).
Each server keeps up to --per-server pairs in flight in its own queue; a free pair goes to the server
with the least work left by GET /queue. A pair the log already has as "done" in this batch is skipped,
so re-running the same command after a crash, a stopped server or Ctrl-C finishes only what is left.
Each pair is claimed in the log before it runs (a lease this process renews): two batches on one log
share the pairs instead of running each twice, and a dead process's pairs are taken over after --lease.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.runtime.comfyui_client import ComfyClient, ComfyClientError, Interrupted, ServerUnavailable
from agents.runtime.pair_claims import LEASE_RANGE_S, RENEWALS_PER_LEASE, LeaseKeeper, PairClaims, new_owner
from cli.batch_pairs import (  # noqa: F401  (re-exported: callers read pair lists from here)
    IMAGE_SUFFIXES,
    Pair,
    PairListError,
    check_pair_images,
    drop_blank,
    read_pairs,
)
from cli.inputs import BLANK_HINT, InputError, error_line

# How long a pair's claim in the log outlives its process's last renewal (--lease): another batch on the
# same log takes over a dead process's pairs after this.
LEASE_S = 60.0


def default_batch_id(keys: list[str]) -> str:
    """Stable for the same set of pairs, so re-running the same command resumes the same batch."""
    return "batch-" + hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:12]


@dataclass
class Slot:
    """A server in the batch: how many of our pairs it holds, and whether it is still usable."""

    index: int
    target: Any  # cli.run_cmd.ServerTarget
    capacity: int
    inflight: int = 0
    alive: bool = True
    ran: int = 0
    client: ComfyClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = ComfyClient(self.target.url, timeout=10)

    def load(self) -> int:
        """Prompts running + pending on the server (its own queue), at least our own pairs in flight."""
        return max(self.client.queue_remaining(), self.inflight)


@dataclass
class BatchOutcome:
    done: list[Pair] = field(default_factory=list)
    skipped: list[Pair] = field(default_factory=list)
    failed: list[tuple[Pair, str]] = field(default_factory=list)
    left: list[Pair] = field(default_factory=list)  # not run: stopped, or every server gone
    interrupted: bool = False
    batch_id: str = ""
    per_server: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.failed and not self.left and not self.interrupted


def run_batch(pairs: list[Pair], targets: list[Any], *, log_path: Path, out_root: Path, template: Path | None,
              tags: str = "", batch_id: str | None = None, per_server: int = 2, force_retry: bool = False,
              plan_on_server: bool = False,
              stop: threading.Event | None = None, say: Any = print, report: bool = True,
              on_done: Any = None, lease_s: float = LEASE_S, policy: Any = None,
              policy_note: dict[str, Any] | None = None, adjust_plan: Any = None) -> BatchOutcome:
    """Run every pair the log does not have as done in this batch, each claimed in the log first (so other
    processes on the same log share the work, see agents/runtime/pair_claims.py); see the module docstring."""
    from agents.runtime.run_log import RunLog
    from cli.run_cmd import run_one

    stop = stop or threading.Event()
    owner = new_owner()
    with RunLog(log_path) as log:
        keyed: dict[str, Pair] = {}
        for pair in pairs:
            keyed.setdefault(log.pair_key(pair[0], pair[1]), pair)  # the same pair twice runs once
        batch = batch_id or default_batch_id(list(keyed))
        done_before = log.done_pairs(batch)
    outcome = BatchOutcome(batch_id=batch)
    outcome.skipped = [p for k, p in keyed.items() if k in done_before]
    pending: deque[tuple[str, Pair]] = deque((k, p) for k, p in keyed.items() if k not in done_before)
    say(f"[m4 batch] {batch}: {len(keyed)} pair(s), {len(outcome.skipped)} already done, {len(pending)} to run "
        f"on {len(targets)} server(s)")
    slots = [Slot(i, t, per_server) for i, t in enumerate(targets)]
    # sqlite3 connections stay in the thread that opened them: each pair opens its own (WAL lets them share).
    def work(slot: Slot, key: str, pair: Pair) -> Any:
        sketch, reference = pair
        label = f"[{slot.target.url}] {sketch.name}+{reference.name}"
        say(f"{label}: started")
        t0 = time.monotonic()
        with RunLog(log_path) as log:
            result, page = run_one(slot.target, sketch=sketch, reference=reference,
                                   out_dir=out_root / f"{sketch.stem}__{reference.stem}__{key[:8]}", log=log,
                                   template=template, tags=tags, batch_id=batch, force_retry=force_retry,
                                   plan_on_server=plan_on_server, policy=policy, policy_note=policy_note,
                                   adjust_plan=adjust_plan, report=report)
        verdict = "pass" if result.final_passed else "fail"
        say(f"{label}: done in {time.monotonic() - t0:.1f} s, {len(result.attempts)} attempt(s), final {verdict}"
            + (f" -> {page}" if page else ""))
        return result

    with RunLog(log_path) as claim_log, LeaseKeeper(log_path, owner, lease_s):
        claims = Claimer(PairClaims(claim_log, owner), batch, lease_s, say)
        try:
            _dispatch(slots, pending, claims, work, outcome, stop, say, per_server, on_done)
        finally:
            claims.claims.release_all()
    outcome.interrupted = stop.is_set()
    outcome.per_server = {s.target.url: s.ran for s in slots}
    return outcome


@dataclass
class Claimer:
    """This process's claims on the batch's pairs: a pair runs here only once claimed; a pair another
    live process holds waits in `deferred` and is asked for again every retry_s (its claim expires when
    that process dies)."""

    claims: PairClaims
    batch: str
    lease_s: float
    say: Any
    deferred: deque[tuple[str, Pair]] = field(default_factory=deque)
    next_retry: float = 0.0

    @property
    def retry_s(self) -> float:
        return self.lease_s / RENEWALS_PER_LEASE

    def take(self, key: str, pair: Pair, outcome: BatchOutcome) -> bool:
        """Whether this process may run the pair now (claimed); otherwise booked as done elsewhere or deferred."""
        state = self.claims.claim(self.batch, key, self.lease_s)
        if state == "done":
            outcome.skipped.append(pair)
            self.say(f"[m4 batch] {pair[0].name}+{pair[1].name}: done by another process on this log")
        elif state == "busy":
            if not self.deferred:
                self.next_retry = time.monotonic() + self.retry_s
            self.deferred.append((key, pair))
        return state == "mine"

    def due(self, pending: deque[tuple[str, Pair]]) -> None:
        """Put the deferred pairs back in the queue once their retry time has come."""
        if self.deferred and time.monotonic() >= self.next_retry:
            pending.extend(self.deferred)
            self.deferred.clear()


def _dispatch(slots: list[Slot], pending: deque[tuple[str, Pair]], claims: Claimer, work: Any,
              outcome: BatchOutcome, stop: threading.Event, say: Any, per_server: int, on_done: Any) -> None:
    futures: dict[Future[Any], tuple[Slot, str, Pair]] = {}
    interrupted_servers = False
    pool = ThreadPoolExecutor(max_workers=max(1, per_server * len(slots)), thread_name_prefix="m4-batch")
    try:
        while pending or futures or claims.deferred:
            try:
                claims.due(pending)
                while pending and not stop.is_set():
                    slot = _pick(slots, say)
                    if slot is None:
                        break
                    key, pair = pending.popleft()
                    if not claims.take(key, pair, outcome):
                        continue
                    slot.inflight += 1
                    futures[pool.submit(work, slot, key, pair)] = (slot, key, pair)
                if not futures and (stop.is_set() or not claims.deferred or not any(s.alive for s in slots)):
                    break  # nothing running and nothing can start: stopped, or no server left
                if stop.is_set() and not interrupted_servers:
                    interrupted_servers = True
                    _interrupt(slots, say)
                finished, _ = wait(list(futures), timeout=0.5, return_when=FIRST_COMPLETED) if futures else (
                    set(), stop.wait(min(0.5, max(0.0, claims.next_retry - time.monotonic()))))
                for future in finished:
                    slot, key, pair = futures.pop(future)
                    slot.inflight -= 1
                    _settle(future, slot, key, pair, outcome, pending, stop, say)
                    if on_done is not None and future.exception() is None:
                        on_done(outcome)
            except KeyboardInterrupt:
                stop.set()  # the loop interrupts the running prompts and collects the workers
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    outcome.left += [p for _k, p in pending] + [p for _k, p in claims.deferred]


def _pick(slots: list[Slot], say: Any) -> Slot | None:
    """The usable server with the least work left (GET /queue); a server that does not answer is dropped."""
    free = [s for s in slots if s.alive and s.inflight < s.capacity]
    loads: dict[int, int] = {}
    for s in free:
        try:
            loads[s.index] = s.load()
        except ComfyClientError as exc:
            s.alive = False
            say(f"[m4 batch] server {s.target.url} is unusable, no more pairs go there: {exc}")
    free = [s for s in free if s.alive]
    return min(free, key=lambda s: (loads[s.index], s.inflight, s.ran, s.index)) if free else None


class _FirstOnly(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        first, self.seen = not self.seen, True
        return first


def _interrupt(slots: list[Slot], say: Any) -> None:
    say("[m4 batch] stopping: interrupting the running prompts (their log rows stay incomplete; re-run the same "
        "command to resume)")
    for slot in slots:
        if slot.inflight and slot.alive:
            try:
                slot.client.interrupt()
            except ComfyClientError as exc:
                say(f"[m4 batch] could not interrupt {slot.target.url}: {exc}")


def _settle(future: Future[Any], slot: Slot, key: str, pair: Pair, outcome: BatchOutcome,
            pending: deque[tuple[str, Pair]], stop: threading.Event, say: Any) -> None:
    """Book one finished pair: done, back in the queue (its server went away), left (stopped) or failed."""
    exc = future.exception()
    name = f"{pair[0].name}+{pair[1].name}"
    if exc is None:
        outcome.done.append(pair)
        slot.ran += 1
    elif isinstance(exc, ServerUnavailable):
        slot.alive = False
        say(f"[m4 batch] server {slot.target.url} went away during {name}: {exc}; its log row is incomplete, "
            "the pair goes back in the queue")
        pending.appendleft((key, pair))
    elif isinstance(exc, Interrupted) and stop.is_set():
        outcome.left.append(pair)
    elif isinstance(exc, ComfyClientError | ValueError | OSError):
        say(f"[m4 batch] {name} failed on {slot.target.url}: {exc}")
        outcome.failed.append((pair, str(exc)))
    else:
        say(f"[m4 batch] {name} failed on {slot.target.url} ({type(exc).__name__}): {exc}")
        outcome.failed.append((pair, f"{type(exc).__name__}: {exc}"))


def _parser() -> argparse.ArgumentParser:
    from cli.run_cmd import add_common

    parser = argparse.ArgumentParser(prog="./m4 batch", description=__doc__.splitlines()[0])
    parser.add_argument("pairs", help="a folder of sketches (with --reference) or a 'sketch,reference' list file")
    parser.add_argument("--reference", help="the style reference for a folder of sketches")
    parser.add_argument("--out", default="m4-output/batch", help="output folder (default: ./m4-output/batch)")
    parser.add_argument("--batch-id", help="name of the batch in the log (default: derived from the pairs, so the "
                                           "same command resumes)")
    parser.add_argument("--per-server", type=int, default=2, help="pairs in flight per server (default 2)")
    parser.add_argument("--local", type=int, default=1,
                        help="without --server: how many headless stand-in servers to start here (default 1)")
    parser.add_argument("--no-report", action="store_true", help="skip the per-run HTML reports")
    parser.add_argument("--lease", type=float, default=LEASE_S,
                        help=f"seconds a pair's claim in the log outlives this process (default {LEASE_S:g}): "
                             "other batches on the same log run the rest, and take over a dead one's pairs after this")
    add_common(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    from cli.run_cmd import joining_background

    return joining_background(_main, argv)


def _main(argv: list[str] | None, background: list[threading.Thread]) -> int:
    parser = _parser()
    from cli.run_cmd import (
        RunInputError,
        connect,
        open_log,
        start_local_servers,
    )

    args = parser.parse_args(argv)
    if args.per_server < 1 or args.local < 1:
        parser.error("--per-server and --local must be at least 1")
    if not LEASE_RANGE_S[0] <= args.lease <= LEASE_RANGE_S[1]:
        parser.error(f"--lease must be {LEASE_RANGE_S[0]:g}..{LEASE_RANGE_S[1]:g} seconds")
    checked = _checked_inputs(args)
    if checked is None:
        return 2
    pairs, template = checked
    open_log(args.log).close()  # create the folder and the schema before the workers open it
    from cli.overlay_hook import exploration, resolve_policy

    policy, policy_note = resolve_policy(args, args.log, "m4 batch")
    if not args.plan_on_server and pairs:
        from agents.measure.reference_cache import prefetch_reference

        # measured while the servers start; later pairs share it by content
        background.append(prefetch_reference(pairs[0][1]))
    local_servers = [] if args.server else start_local_servers(args.local)
    stop = threading.Event()
    try:
        urls = args.server or [s.url for s in local_servers]
        try:
            targets = [connect(u, standins=args.standins or not args.server, template=template) for u in urls]
        except (RunInputError, ComfyClientError) as exc:
            print(error_line(exc), file=sys.stderr)
            return 2
        if any(t.standins for t in targets):
            from cli.demo import STANDIN_BANNER

            if args.server:
                print(STANDIN_BANNER, flush=True)
            # swap_in_standins lists its changes as a warning on every call: once per batch is enough here.
            logging.getLogger("m4.template_run").addFilter(_FirstOnly())
        t0 = time.monotonic()
        outcome = run_batch(pairs, targets, log_path=Path(args.log).resolve(), out_root=Path(args.out).resolve(),
                            template=template, tags=args.tags, batch_id=args.batch_id, per_server=args.per_server,
                            force_retry=args.force_retry, plan_on_server=args.plan_on_server, stop=stop,
                            report=not args.no_report, lease_s=args.lease, policy=policy, policy_note=policy_note,
                            adjust_plan=exploration(args, policy),
                            say=lambda text: print(text, flush=True))
    finally:
        for local in local_servers:
            local.stop()
    return _summary(outcome, Path(args.log).resolve(), time.monotonic() - t0)


def _checked_inputs(args: argparse.Namespace) -> tuple[list[Pair], Path | None] | None:
    """The pairs (headers checked, blank sketches set aside unless --allow-blank) and the template; None
    after printing the one error line."""
    from cli.run_cmd import RunInputError, check_server_urls, resolve_template

    try:
        pairs = read_pairs(Path(args.pairs), reference=Path(args.reference) if args.reference else None)
        check_pair_images(pairs)
        template = resolve_template(args.template)
        check_server_urls(args.server)
    except (PairListError, RunInputError, InputError) as exc:
        print(error_line(exc), file=sys.stderr)
        return None
    if not args.allow_blank:
        pairs = drop_blank(pairs)
        if not pairs:
            print(f"error: every sketch is blank: {BLANK_HINT}", file=sys.stderr)
            return None
    return pairs, template


def _summary(outcome: BatchOutcome, log: Path, seconds: float) -> int:
    """The batch's closing line (and one error: line when it did not complete); the exit code."""
    spread = ", ".join(f"{u}: {n}" for u, n in outcome.per_server.items())
    print(f"[m4 batch] {outcome.batch_id}: {len(outcome.done)} done, {len(outcome.skipped)} skipped (done before), "
          f"{len(outcome.failed)} failed, {len(outcome.left)} not run, in {seconds:.1f} s ({spread}); "
          f"log {log}")
    if outcome.interrupted:
        return 130
    if outcome.failed:
        print(f"error: {len(outcome.failed)} pair(s) failed (first: {outcome.failed[0][0][0].name}: "
              f"{' '.join(outcome.failed[0][1].split())[:200]}); ./m4 runs --status failed lists them", file=sys.stderr)
    elif outcome.left:
        print("error: no server could take the remaining pairs; start one and re-run the same command",
              file=sys.stderr)
    return 0 if outcome.complete else 2
