#!/usr/bin/python3
"""A Jepsen-style checker for a broker group's job history (issue 18).

The load generators of tests/ha record every event as one JSON object per
line (``ev`` names the event; ``t`` is a monotonic time, informational):

  {"ev": "submit", "key": K, "payload": HEX}   a submit sent with idempotency
                                               key K (payloads are unique)
  {"ev": "ack", "key": K, "job": ID, "dup": B} the broker acknowledged it
                                               (``accepted``): job ID holds K
  {"ev": "fail", "key": K, "error": TEXT}      no acknowledgement came: the
                                               job may or may not exist
  {"ev": "outcome", "job": ID, "state": S,     a result seen for job ID
   "payload": HEX, "attempts": N,              (src: "push", "final" (a
   "src": WHERE}                               result_get at the end),
                                               "stream" (a followed queue));
                                               attempts optional
  {"ev": "lost", "key": K, "job": ID, ...}     an acknowledged job whose
                                               result the producer did not
                                               get (the final sweep must)

The history is valid when:
  1. every acknowledged submit has an outcome (acknowledged = on a majority:
     it must never be lost);
  2. no job id has two different outcomes (state, payload and, where
     recorded, the attempt that produced it), however often and from
     wherever it is observed: a result a client saw is final (a job run
     again after its result was sent shows as a later attempt);
  3. every outcome belongs to a submit: to an acknowledged job id, or its
     payload is one that was submitted (a submit whose acknowledgement was
     lost may still have run) -- never a key never submitted;
  4. one submit (key) is at most one job: a key is never acknowledged or
     observed as two job ids, and a job id never holds two keys (a resend
     with the same key must not run the job twice);
  5. payloads round-trip: a done job's payload is the one submitted with its
     key; every outcome is ``done`` unless --allow-failed;
  6. every ack is for a key that was submitted.
Unacknowledged submits ("fail") may have an outcome or none: both are
allowed (the outcome of such a write is unknown to the client).

Prints a verdict with counts; exit status 0 only when the history is valid,
1 when it is not, 2 on unreadable input. ``--self-test`` feeds it valid and
invalid histories and exits 0 only if it judges every one rightly.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from typing import Any, Dict, Iterable, List, Set, Tuple

#: errors listed in full; the rest are counted
SHOWN_ERRORS = 20


class Verdict:
    """What check() found: valid, the violations, and the counts."""

    def __init__(self) -> None:
        self.errors: List[str] = []
        self.counts: Dict[str, int] = {}

    @property
    def valid(self) -> bool:
        return not self.errors

    def text(self) -> str:
        lines = [f"{k}: {v}" for k, v in self.counts.items()]
        for e in self.errors[:SHOWN_ERRORS]:
            lines.append(f"VIOLATION: {e}")
        if len(self.errors) > SHOWN_ERRORS:
            lines.append(f"... and {len(self.errors) - SHOWN_ERRORS} more "
                         "violations")
        lines.append("VALID" if self.valid else
                     f"INVALID ({len(self.errors)} violations)")
        return "\n".join(lines)


def check(events: Iterable[Dict[str, Any]],
          allow_failed: bool = False) -> Verdict:
    """Judge a history (an iterable of event dicts, in recorded order)."""
    v = Verdict()
    err = v.errors.append
    payload_of: Dict[str, str] = {}        # key -> payload submitted
    key_of_payload: Dict[str, str] = {}    # payload -> key
    acked: Dict[str, int] = {}             # key -> job id acknowledged
    key_of_job: Dict[int, str] = {}        # job id -> key
    job_of_key: Dict[str, int] = {}        # key -> job id (ack or outcome)
    failed: Set[str] = set()
    outcomes: Dict[int, Set[Tuple[str, str, Any]]] = defaultdict(set)
    sources: Dict[str, int] = defaultdict(int)
    n = {"submit": 0, "ack": 0, "dup": 0, "fail": 0, "outcome": 0,
         "lost": 0}

    def bind(job: int, key: str, how: str) -> None:
        """Job id <-> key, one to one."""
        have = key_of_job.get(job)
        if have is not None and have != key:
            err(f"job {job} holds two submits: keys {have} and {key} ({how})")
        key_of_job.setdefault(job, key)
        was = job_of_key.setdefault(key, job)
        if was != job:
            err(f"key {key} is two jobs: {was} and {job} ({how}): a "
                "resend ran the job again")

    for i, e in enumerate(events):
        ev = e.get("ev")
        if ev == "submit":
            n["submit"] += 1
            k, p = e["key"], e["payload"]
            if k in payload_of and payload_of[k] != p:
                err(f"line {i + 1}: key {k} submitted with two payloads")
            if p in key_of_payload and key_of_payload[p] != k:
                err(f"line {i + 1}: payload {p[:16]} under two keys (the "
                    "load generator must make payloads unique)")
            payload_of[k] = p
            key_of_payload[p] = k
        elif ev == "ack":
            n["ack"] += 1
            n["dup"] += bool(e.get("dup"))
            k, job = e["key"], int(e["job"])
            if k not in payload_of:
                err(f"line {i + 1}: ack of key {k} never submitted")
            bind(job, k, "ack")
            acked.setdefault(k, job)
        elif ev == "fail":
            n["fail"] += 1
            failed.add(e["key"])
        elif ev == "outcome":
            n["outcome"] += 1
            job = int(e["job"])
            st, p = e.get("state", ""), e.get("payload", "")
            sources[e.get("src", "?")] += 1
            outcomes[job].add((st, p, e.get("attempts")))
            if st != "done" and not allow_failed:
                err(f"line {i + 1}: job {job} ended {st!r} "
                    f"({e.get('error', '')})")
            k = key_of_job.get(job)
            if k is None:
                k = key_of_payload.get(p)
                if k is None:
                    err(f"line {i + 1}: outcome of job {job} (payload "
                        f"{p[:16]}) for a key never submitted")
                    continue
                bind(job, k, "outcome")
            if st == "done" and payload_of.get(k) != p:
                err(f"line {i + 1}: job {job} (key {k}) returned payload "
                    f"{p[:16]}, submitted {payload_of.get(k, '')[:16]}")
        elif ev == "lost":
            n["lost"] += 1
        elif ev in ("mark", "note"):
            pass  # the test's own annotations (kills, phases)
        else:
            err(f"line {i + 1}: unknown event {ev!r}")

    for job, outs in outcomes.items():
        if len(outs) > 1:
            err(f"job {job} has {len(outs)} different outcomes (state, "
                "payload, attempt): "
                f"{sorted((s, p[:16], str(a)) for s, p, a in outs)}")
    missing = [(k, j) for k, j in acked.items() if j not in outcomes]
    for k, j in missing:
        err(f"acknowledged submit {k} (job {j}) has no outcome")
    maybe = failed - set(acked)
    ran = {k for k in maybe
           if any(key_of_job.get(j) == k for j in outcomes)}
    v.counts = {
        "submits": n["submit"],
        "acknowledged": len(acked),
        "acks (duplicate: true)": n["dup"],
        "unacknowledged (outcome unknown)": len(maybe),
        "  of which ran": len(ran),
        "outcome events": n["outcome"],
        "  by source": dict(sorted(sources.items())),
        "jobs with an outcome": len(outcomes),
        "acknowledged without outcome": len(missing),
        "results not received by the producer": n["lost"],
    }
    return v


def load(path: str) -> List[Dict[str, Any]]:
    """The events of a JSON-lines file (blank lines skipped)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line))
    return out


# ------------------------------------------------------------ self-test

def _sub(k: str, p: str) -> Dict[str, Any]:
    return {"ev": "submit", "key": k, "payload": p}


def _ack(k: str, j: int, dup: bool = False) -> Dict[str, Any]:
    return {"ev": "ack", "key": k, "job": j, "dup": dup}


def _out(j: int, p: str, st: str = "done", src: str = "push",
         attempts: int = 1) -> Dict[str, Any]:
    return {"ev": "outcome", "job": j, "state": st, "payload": p, "src": src,
            "attempts": attempts}


def _cases() -> List[Tuple[str, str, List[Dict[str, Any]]]]:
    """(name, "" when valid else a part of the violation expected first,
    history)."""
    base = [_sub("a", "61"), _ack("a", 1), _sub("b", "62"), _ack("b", 2),
            _out(1, "61"), _out(2, "62")]
    return [
        ("clean", "", base),
        ("outcome seen twice, same", "",
         base + [_out(1, "61", src="final"), _out(2, "62", src="stream")]),
        ("resend acked duplicate, same job", "",
         base + [_ack("a", 1, dup=True)]),
        ("unacked submit that ran", "",
         base + [_sub("c", "63"), {"ev": "fail", "key": "c", "error": "x"},
                 _out(3, "63", src="stream")]),
        ("unacked submit that never ran", "",
         base + [_sub("c", "63"), {"ev": "fail", "key": "c", "error": "x"}]),
        ("lost by producer, found by sweep", "",
         [_sub("a", "61"), _ack("a", 1),
          {"ev": "lost", "key": "a", "job": 1},
          _out(1, "61", src="final")]),
        ("empty", "", []),
        ("acked, no outcome", "has no outcome",
         base + [_sub("c", "63"), _ack("c", 3)]),
        ("two different outcomes", "different outcomes",
         base + [_out(1, "61", st="failed")]),
        ("result changed after it was seen (run again)",
         "different outcomes",
         base + [_out(1, "61", src="final", attempts=2)]),
        ("two states", "ended 'failed'",
         base + [_out(2, "62", st="failed")]),
        ("failed outcome", "ended 'failed'",
         [_sub("a", "61"), _ack("a", 1), _out(1, "61", st="failed")]),
        ("outcome for a key never submitted", "never submitted",
         base + [_out(9, "ff")]),
        ("ack of a key never submitted", "never submitted",
         base + [_ack("z", 7)]),
        ("payload changed", "returned payload",
         [_sub("a", "61"), _ack("a", 1), _out(1, "6162")]),
        ("key ran twice (acked as two jobs)", "is two jobs",
         base + [_ack("a", 5), _out(5, "61")]),
        ("key ran twice (unacked resend)", "is two jobs",
         base + [_sub("c", "63"), {"ev": "fail", "key": "c", "error": "x"},
                 _out(3, "63"), _out(4, "63")]),
        ("one job for two keys", "holds two submits",
         [_sub("a", "61"), _sub("b", "62"), _ack("a", 1), _ack("b", 1),
          _out(1, "61")]),
        ("unknown event", "unknown event", base + [{"ev": "bogus"}]),
    ]


def self_test() -> int:
    bad = 0
    for name, want, hist in _cases():
        got = check(hist, allow_failed=(name == "two different outcomes"))
        ok = (got.valid if not want else
              not got.valid and any(want in e for e in got.errors))
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name}: judged "
              f"{'valid' if got.valid else 'invalid'}"
              + ("" if got.valid else f" ({got.errors[0]})"))
    # a failed outcome is allowed when asked to
    if not check([_sub("a", "61"), _ack("a", 1), _out(1, "", st="failed")],
                 allow_failed=True).valid:
        print("FAIL --allow-failed: a failed outcome judged invalid")
        bad += 1
    print("self-test", "passed" if not bad else f"FAILED ({bad})")
    return 1 if bad else 0


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(
        description="Judge a broker group's job history (JSON lines).")
    ap.add_argument("history", nargs="?", help="the JSON-lines file")
    ap.add_argument("--allow-failed", action="store_true",
                    help="a job ending 'failed' is an outcome, not a "
                    "violation")
    ap.add_argument("--self-test", action="store_true",
                    help="judge built-in valid and invalid histories")
    a = ap.parse_args(argv)
    if a.self_test:
        return self_test()
    if not a.history:
        ap.error("give a history file (or --self-test)")
    try:
        events = load(a.history)
    except (OSError, ValueError) as e:
        print(f"checker: cannot read {a.history}: {e}", file=sys.stderr)
        return 2
    v = check(events, a.allow_failed)
    print(v.text())
    return 0 if v.valid else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
