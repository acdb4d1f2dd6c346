"""Minorities never accept a write (issue 18), with SIGSTOP standing for a
partition (a stopped member is silent, its connections stay open).

test_minority_follower: stop a follower, the group keeps serving (a
majority is up); stop the leader too: the one member left accepts NO write
(probe submits time out, its commit index and log do not move, no producer
submit is acknowledged); continue both: they catch up (every member at the
leader's commit, each member's match = last) and writes go on.

test_isolated_leader: stop both followers: the leader alone must not
acknowledge anything (it may take a submit into its log, never commit it);
continue them: a leader again, writes go on.

The checker (checker.py) must pass on each whole history.
"""

from __future__ import annotations

import time
from typing import List

import pytest

import ha
from drover import errors

QUEUE = "ha-partition"
#: acknowledged jobs that show the group serves
SOME = 60
#: submits tried while no majority is up, and the seconds each waits
PROBES, PROBE_S = 3, 2.0
#: seconds for messages already on the wire to arrive after a SIGSTOP,
#: before the minority's log and commit index are read
SETTLE_S = 1.0


@pytest.fixture
def group():
    g = ha.Group(workers=2)
    hist = ha.History(g.dir / "history.jsonl")
    producers = [ha.Producer(g, hist, f"p{i}", QUEUE, window=4)
                 for i in range(2)]
    ok: List[bool] = []
    yield g, hist, producers, ok
    for p in producers:
        p.halt.set()
    for m in g.members:
        if m.proc and m.proc.stopped:
            m.proc.resume()
    if not ok:
        print(g.logs())
    g.close(keep=not ok)


def more_acks(hist: ha.History, n: int, what: str) -> None:
    base = hist.n_acked()
    ha.wait_for(what, lambda: hist.n_acked() >= base + n, 90)


def log_state(m: ha.Member):
    """(commit, last) as the member says (a deposed leader re-executes
    itself and rebuilds its store: it may take a while to answer)."""
    v = ha.wait_for(f"member {m.id} to answer `cluster`", m.cluster, 60)
    return v["commit"], v["last"]


def no_write_accepted(g: ha.Group, hist: ha.History, probe, running: ha.Member
                      ) -> None:
    """While no majority is up: probe submits fail, nothing is acked, the
    running member's commit index does not move (a commit needs a
    majority) and, for a follower, its log neither."""
    time.sleep(SETTLE_S)
    before = log_state(running)
    acks = hist.acks_seen
    for i in range(PROBES):
        key = f"probe-{running.id}-{i}"
        payload = f"{key}:x".encode()
        hist.add("submit", key=key, payload=payload.hex())
        with pytest.raises(errors.DroverError) as e:
            job = probe.submit_echo(payload, queue=QUEUE,
                                    idempotency_key=key)
            job.id  # waits the probe client's timeout for an ack
        hist.add("fail", key=key, error=repr(e.value))
    after = log_state(running)
    # (a leader that re-executed itself says a lower commit index until a
    # leader tells it more: it may go down, never up)
    assert after[0] <= before[0], (
        f"member {running.id} committed {before[0]} -> {after[0]} "
        "without a majority")
    assert hist.acks_seen == acks, "a submit was acknowledged without a " \
        "majority"
    return before, after


def finish(g: ha.Group, hist: ha.History, producers, ok) -> None:
    """Writes go on; stop the producers; every member catches up (lag 0);
    every acknowledged job's result is fetched; the checker passes."""
    more_acks(hist, SOME, "writes after the partition healed")
    for p in producers:
        p.halt.set()
    for p in producers:
        p.join(120)
        assert p.error is None, f"{p.name}: {p.error!r}"
    g.caught_up()
    lead = g.leader()

    def lag0():
        v = lead.cluster()
        return v and all(m["match"] == v["last"] for m in v["members"])
    ha.wait_for("every member's match = last (lag 0)", lag0, 60, 0.2)
    commits = {m.id: log_state(m)[0] for m in g.members}
    assert len(set(commits.values())) == 1, commits
    ha.sweep(g, hist)
    v = ha.judge(g, hist)
    assert v.valid, v.text()
    unstored = g.unstored_sends()
    assert not unstored, unstored
    ok.append(True)


def test_minority_follower(group):
    g, hist, producers, ok = group
    for p in producers:
        p.start()
    more_acks(hist, SOME, "the first jobs")
    lead = g.leader()
    f1, f2 = [m for m in g.members if m is not lead]
    with g.client(timeout=PROBE_S) as probe:
        hist.mark(f"SIGSTOP follower {f1.id}")
        f1.proc.pause()
        more_acks(hist, SOME, "jobs acknowledged by a majority of 2")
        hist.mark(f"SIGSTOP leader {lead.id}")
        lead.proc.pause()
        before, after = no_write_accepted(g, hist, probe, f2)
        assert after[1] == before[1], (
            f"follower {f2.id}'s log grew {before[1]} -> {after[1]} "
            "with no leader")
        hist.mark("SIGCONT both")
        lead.proc.resume()
        f1.proc.resume()
    finish(g, hist, producers, ok)


def test_isolated_leader(group):
    g, hist, producers, ok = group
    for p in producers:
        p.start()
    more_acks(hist, SOME, "the first jobs")
    lead = g.leader()
    others = [m for m in g.members if m is not lead]
    with ha.drover.Client(lead.cep, timeout=PROBE_S) as probe:
        hist.mark("SIGSTOP both followers")
        for m in others:
            m.proc.pause()
        no_write_accepted(g, hist, probe, lead)
        hist.mark("SIGCONT both followers")
        for m in others:
            m.proc.resume()
    finish(g, hist, producers, ok)
