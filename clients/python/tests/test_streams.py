"""Result streams: follow, ack, resume from a second client."""

from __future__ import annotations

import pytest

from drover import errors


def test_follow_ack_and_resume(cluster, client):
    q = "py-stream"
    sent = [f"r{i}".encode() for i in range(5)]
    for j in client.submit_many("echo", sent, queue=q):
        j.result(20)
    first = cluster.client()
    s1 = first.follow(q, "py-cons", window=100)
    assert s1.acked == 0
    got = [s1.get(10) for _ in range(5)]
    # in the order they finished (two workers): any order of ours
    assert sorted(bytes(r.payload) for r in got) == sent
    seqs = [r.seq for r in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert all(r.queue == q for r in got)
    assert s1.ack(got[2], wait=True) == seqs[2]
    assert s1.get(0.2) is None  # nothing more yet
    first.close()  # went away without acking the last two

    with cluster.client() as second:
        s2 = second.follow(q, "py-cons")
        assert s2.acked == seqs[2]
        again = [s2.get(10) for _ in range(2)]  # at least once
        assert [r.seq for r in again] == seqs[3:]
        assert [bytes(r.payload) for r in again] == [bytes(r.payload)
                                                     for r in got[3:]]
        # new results arrive as they finish
        client.echo(b"live", queue=q)
        live = s2.get(10)
        assert bytes(live.payload) == b"live" and live.seq > seqs[-1]
        s2.ack()  # the last one handed out; no reply asked
        assert s2.close() == live.seq
    with cluster.client() as third:
        with third.follow(q, "py-cons") as s3:
            assert s3.acked == live.seq
            assert s3.get(0.2) is None


def test_follow_iterates_and_latest(cluster, client):
    q = "py-stream-iter"
    client.echo(b"old", queue=q)
    with cluster.client() as c:
        s = c.follow(q, "py-latest", start="latest")
        for j in client.submit_many("echo", [b"a", b"b", b"c"], queue=q):
            j.result(20)
        out = []
        for r in s:
            out.append(bytes(r.payload))
            if len(out) == 3:
                break
        assert sorted(out) == [b"a", b"b", b"c"]  # not b"old"
        s.ack(wait=True)
        s.close()


def test_ack_errors(cluster, client):
    q = "py-stream-err"
    client.echo(b"x", queue=q)
    with cluster.client() as c:
        s = c.follow(q, "py-errs")
        r = s.get(10)
        with pytest.raises(errors.Invalid):
            s.ack(r.seq + 1000, wait=True)  # not sent yet
        # without wait the refusal comes with rid 0: kept aside
        s.ack(r.seq + 1000)
        c.ping()
        c._pump(lambda: bool(c.unsolicited_errors), 5)
        assert isinstance(c.unsolicited_errors[-1], errors.Invalid)
        with pytest.raises(errors.NoEntry):
            c._call("ack", {"queue": q, "consumer": "py-nobody", "seq": 1},
                    ("ok",))
        s.close()
