"""Leader kills (issue 18): a 3-member group and 2 workers serve producers
submitting echo jobs through the endpoint list while the test kill -9s the
current leader again and again, restarting each killed member with its same
command (so a majority stays up). Then:

- the history passes the checker (checker.py): every acknowledged submit
  has exactly one outcome, no job runs twice for one key, payloads
  round-trip;
- results survive: every acknowledged job's result is fetched again by id
  from the final leader (early jobs, accepted by the first leader, too);
- a result stream followed through the list (follow/ack) keeps its
  position across the failovers: every acknowledged job is delivered.

HA_KILLS (default 10) sets the number of leader kills.
"""

from __future__ import annotations

import os

import ha

KILLS = int(os.environ.get("HA_KILLS", "10"))
QUEUE = "ha-failover"
#: acknowledged jobs between two kills (load that reaches every leader)
PER_LEADER = 40


def test_leader_killed_again_and_again():
    g = ha.Group(workers=2)
    hist = ha.History(g.dir / "history.jsonl")
    producers = [ha.Producer(g, hist, f"p{i}", QUEUE, window=8)
                 for i in range(2)]
    follower = ha.Follower(g, hist, QUEUE)
    ok = False
    try:
        follower.start()
        for p in producers:
            p.start()
        ha.wait_for("the first jobs", lambda: hist.n_acked() >= PER_LEADER,
                    60)
        early = sorted(hist.acked_jobs().values())[:PER_LEADER]
        for k in range(KILLS):
            base = hist.n_acked()
            new = g.kill_leader(hist)
            # the killed member is back (same command): wait for it to
            # catch up, and for the producers to get jobs through the new
            # leader, before killing that one
            g.caught_up()
            ha.wait_for(f"jobs acknowledged by leader {new.id} "
                        f"(kill {k + 1})",
                        lambda: hist.n_acked() >= base + PER_LEADER, 90)
            for p in producers:
                assert p.error is None, f"{p.name}: {p.error!r}"
        for p in producers:
            p.halt.set()
        for p in producers:
            p.join(120)
            assert not p.is_alive(), f"{p.name} did not finish"
            assert p.error is None, f"{p.name}: {p.error!r}"
        assert g.kills == KILLS
        # every member alive and caught up; results kept, by id, on the
        # final leader (early jobs included)
        g.caught_up()
        ha.sweep(g, hist)
        with g.client() as c:
            for jid in early:
                assert c.result_get(jid).ok, jid
        # the stream delivered every acknowledged job, across failovers
        acked = list(hist.acked_jobs().values())
        ha.wait_for("the stream to deliver every acknowledged job",
                    lambda: follower.has(acked), 90)
        assert follower.error is None, repr(follower.error)
        follower.halt.set()
        follower.join(30)
        v = ha.judge(g, hist)
        assert v.valid, v.text()
        assert v.counts["acknowledged"] >= PER_LEADER * (KILLS + 1)
        ok = True
    finally:
        for p in producers:
            p.halt.set()
        follower.halt.set()
        if not ok:
            print(g.logs())
        g.close(keep=not ok)
