"""Membership changes (issue 18): adding and removing a member is an admin
command (`member_add` / `member_remove`, `drover admin member ...`).

test_member_added_and_removed: jobs through a group of 3 (the leader names
every member's endpoints, followers' too); a fourth member
started with --raft-join is added (`member_add` to the leader): it catches
up (the snapshot and the log) and becomes a voter; a follower is removed
(`member_remove`) and stopped; the leader is then killed: the new
configuration (the old leader, the other first member and the fourth)
elects a leader and serves, the killed member rejoins, and every
acknowledged job has exactly one outcome (checker.py).
"""

from __future__ import annotations

import ha

QUEUE = "ha-members"


def produce(g: ha.Group, hist: ha.History, n: int, name: str) -> None:
    p = ha.Producer(g, hist, name, QUEUE, window=4, limit=n)
    p.run()  # in this thread
    assert p.error is None, repr(p.error)


def ids_of(view) -> list:
    return sorted(m["id"] for m in view["members"])


def test_member_added_and_removed():
    g = ha.Group(workers=1)
    hist = ha.History(g.dir / "history.jsonl")
    ok = False
    try:
        produce(g, hist, 300, "three")
        # The leader names every member's endpoints, followers included
        # (their files-channel hello), not only those that once led.
        first = g.leader()

        def endpoints_known():
            v = first.cluster() or {}
            got = {m["id"]: (m.get("client"), m.get("worker"))
                   for m in v.get("members", [])}
            want = {m.id: (m.cep, m.wep) for m in g.members}
            return got == want

        ha.wait_for("every member's endpoints in the leader's cluster reply",
                    endpoints_known, 20, 0.2)
        # A fourth member, started to be added (no --raft-peers).
        m4 = ha.Member(g, 4, *ha.free_ports(3), peers="")
        at = m4.args.index("--raft-peers")
        m4.args[at:at + 2] = ["--raft-join"]
        g.members.append(m4)  # stopped by close(); in the endpoint lists
        m4.start()
        lead = g.leader(among=g.members[:3])
        hist.mark("member_add 4")
        r = ha.raw_request(lead.cep, "member_add", 60, id=4, raft=m4.raft)
        assert r and r.get("t") == "ok", r
        view = g.caught_up()
        assert ids_of(view) == [1, 2, 3, 4], view
        assert all(m["voter"] for m in view["members"]), view
        # A refused change says why, and changes nothing.
        r = ha.raw_request(lead.cep, "member_remove", 30, id=99)
        assert r and r.get("t") == "error", r
        assert ids_of(g.leader().cluster()) == [1, 2, 3, 4]
        produce(g, hist, 100, "four")
        # Remove a follower of the first three; it is then stopped.
        lead = g.leader()
        gone = next(m for m in g.members[:3] if m is not lead)
        hist.mark(f"member_remove {gone.id}")
        r = ha.raw_request(lead.cep, "member_remove", 60, id=gone.id)
        assert r and r.get("t") == "ok", r
        assert gone.id not in ids_of(g.leader().cluster())
        assert gone.proc is not None and gone.proc.stop() == 0
        # The new configuration survives its leader's death.
        new = g.kill_leader(hist)
        assert new is not gone
        produce(g, hist, 100, "after")
        view = g.caught_up()
        assert gone.id not in ids_of(view) and len(view["members"]) == 3
        ha.sweep(g, hist)
        v = ha.judge(g, hist)
        assert v.valid, v.text()
        assert v.counts["acknowledged"] == 500
        ok = True
    finally:
        if not ok:
            print(g.logs())
        g.close(keep=not ok)


def test_lone_broker_folder_refused():
    """A member rebuilds its store from the group's log, so a folder a
    broker alone used is refused (its jobs and models kept), not emptied."""
    import subprocess
    import tempfile
    from pathlib import Path

    d = Path(tempfile.mkdtemp(prefix="dvha-lone-"))
    c, w, r = ha.free_ports(3)
    common = ["--client", f"tcp://127.0.0.1:{c}", "--worker",
              f"tcp://127.0.0.1:{w}"]
    lone = subprocess.Popen([ha.BROKER, "--data", str(d), *common],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert lone.stdout.readline().startswith("READY"), lone.stderr.read()
    finally:
        lone.terminate()
        lone.wait(30)
    member = subprocess.run(
        [ha.BROKER, "--data", str(d), *common, "--raft-id", "1", "--raft",
         f"127.0.0.1:{r}", "--raft-peers", f"1=127.0.0.1:{r}"],
        capture_output=True, text=True, timeout=60)
    assert member.returncode == 1, member.stderr
    assert "holds a broker's data" in member.stderr, member.stderr
    assert (d / "store" / "data.mdb").exists()
    assert not (d / "raft").exists()
    import shutil
    shutil.rmtree(d, ignore_errors=True)
