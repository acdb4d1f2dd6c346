"""Result streams: follow, ack, resume from a second client; the
consumers a broker keeps (1.8): list and forget."""

from __future__ import annotations

import asyncio

import pytest

import drover.aio
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


def test_consumers_listed_and_forgotten(cluster, client):
    """1.8: consumer_list shows each consumer's position, the queue's last
    seq and its follower; consumer_forget removes one for good."""
    q = "py-stream-consumers"
    for j in client.submit_many("echo", [b"a", b"b", b"c"], queue=q):
        j.result(20)
    with cluster.client() as ca, cluster.client() as cb:
        sa = ca.follow(q, "a")
        got = [sa.get(10) for _ in range(3)]
        seqs = [r.seq for r in got]
        assert sa.ack(got[1], wait=True) == seqs[1]
        sb = cb.follow(q, "b")
        assert [sb.get(10).seq for _ in range(3)] == seqs
        assert sb.ack(wait=True) == seqs[2]

        a, b = client.consumers(queue=q)
        assert (a["queue"], a["consumer"], b["queue"], b["consumer"]) == (
            q, "a", q, "b")
        assert (a["acked"], a["last"]) == (seqs[1], seqs[2])
        assert (b["acked"], b["last"]) == (seqs[2], seqs[2])
        assert a["followed"] and b["followed"]
        assert (a["window"], a["in_flight"]) == (100, 1)  # seqs[2]: unacked
        assert (b["window"], b["in_flight"]) == (100, 0)
        assert "owner" not in a  # plain mode: nobody owns it
        everyone = client.consumers()
        assert [c for c in everyone if c["queue"] == q] == [a, b]
        assert everyone == sorted(everyone, key=lambda c: (
            c["queue"].encode(), c["consumer"].encode()))

        # forgotten from a third connection
        ok = client.consumer_forget(q, "a")
        assert (ok["queue"], ok["consumer"], ok["acked"]) == (q, "a",
                                                              seqs[1])
        assert [c["consumer"] for c in client.consumers(queue=q)] == ["b"]
        with pytest.raises(errors.NoEntry):
            client.consumer_forget(q, "a")
        with pytest.raises(errors.NoEntry):
            client.consumer_forget("py-stream-no-such-queue", "b")
        # its follower gets no more results; b's does
        client.echo(b"d", queue=q)
        assert sb.get(10).seq > seqs[2]
        assert sa.get(0.5) is None

        # forgotten by the client that follows it: its Stream ends
        assert cb.consumer_forget(q, "b")["consumer"] == "b"
        assert sb.get(5) is None and list(sb) == []
        assert client.consumers(queue=q) == []

    # a later follow of the name starts anew: from the oldest kept result
    with cluster.client() as again:
        with again.follow(q, "a") as s:
            assert s.acked == 0
            assert s.get(10).seq == seqs[0]
        assert [c["consumer"] for c in again.consumers(queue=q)] == ["a"]


def test_consumers_aio(cluster, client):
    q = "py-stream-consumers-aio"
    client.echo(b"x", queue=q)

    async def main():
        async with drover.aio.Client(cluster.cep) as c:
            s = await c.follow(q, "aio")
            r = await s.get(10)
            await s.ack(r, wait=True)
            listed = await c.consumers(queue=q)
            ok = await c.consumer_forget(q, "aio")
            assert await s.get(0.5) is None  # its own stream ended
            with pytest.raises(errors.NoEntry):
                await c.consumer_forget(q, "aio")
            return r.seq, listed, ok

    seq, listed, ok = asyncio.run(asyncio.wait_for(main(), 60))
    assert [(c["consumer"], c["acked"], c["last"]) for c in listed] == [
        ("aio", seq, seq)]
    assert ok["acked"] == seq
