"""Endpoint lists: the client follows a broker group's leader (issue 18,
protocol 1.6), against fake members (a ROUTER in a thread, answering as
the contract says a member that is not the leader does) and a real single
drover-broker as the leader, so no raft is needed here.

Each list holds a dead endpoint (nothing listens), a fake member, and the
real broker: every job must get exactly one result (the real broker's
queue counts say how many ran), the ``leader`` hint must be followed, and
every submit must carry an automatic idempotency key (the fake records
what it received)."""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Dict, List

import msgpack
import pytest
import zmq

import drover
import drover.aio
from conftest import Cluster
from drover import errors

KEY = re.compile(r"^[0-9a-f]{32}$")


class FakeMember:
    """A broker group member that is not (or no longer) the leader.

    mode "follower": answers every request DV_ENOTLEADER with ``leader``
    (``hello`` too), ``ping`` with ``pong`` and ``cluster`` with a group
    of one leader and itself; "stale": welcomes the ``hello`` (it still
    believed it led), then answers as a follower; "silent": welcomes the
    ``hello``, then answers nothing (a SIGSTOPped leader); "accepting":
    welcomes, answers each ``submit`` ``accepted`` with job ``job_id``,
    then falls silent (a leader that died after committing the job: the
    job is on the next leader, its result is not). ``leader=None``:
    DV_ENOTLEADER without a hint (an election going on). ``got`` holds
    every header received, in order.
    """

    def __init__(self, where: Path, name: str, mode: str,
                 leader: Any) -> None:
        self.endpoint = f"ipc://{where}/{name}"
        self.mode = mode
        self.leader = leader
        self.got: List[Dict[str, Any]] = []
        self.job_id = 0
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(self.endpoint)
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _reply(self, ident: bytes, h: Dict[str, Any]) -> None:
        self.sock.send_multipart([ident, msgpack.packb(
            {"v": [1, 6], **h}, use_bin_type=True)])

    def _loop(self) -> None:
        while not self.stopping:
            if not self.sock.poll(20):
                continue
            ident, raw, *_ = self.sock.recv_multipart()
            h = msgpack.unpackb(raw, raw=False)
            self.got.append(h)
            t, rid = h.get("t"), h.get("rid", 0)
            if t == "hello" and self.mode != "follower":
                self._reply(ident, {"t": "welcome", "rid": rid,
                                    "broker": "fake", "limits": {}})
            elif self.mode == "accepting" and t == "submit":
                self._reply(ident, {"t": "accepted", "rid": rid,
                                    "job": self.job_id})
            elif self.mode in ("silent", "accepting"):
                continue
            elif t == "ping":
                self._reply(ident, {"t": "pong", "rid": rid})
            elif t == "cluster":
                self._reply(ident, {
                    "t": "cluster", "rid": rid, "self": 2, "leader": 1,
                    "term": 3, "commit": 10, "applied": 10, "last": 10,
                    "members": [
                        {"id": 1, "raft": "127.0.0.1:7480",
                         "client": self.leader or "", "worker": "",
                         "http": "", "voter": True, "role": "leader",
                         "match": 10},
                        {"id": 2, "raft": "127.0.0.1:7481",
                         "client": self.endpoint, "worker": "", "http": "",
                         "voter": True, "role": "follower", "match": 9}]})
            else:
                err = {"t": "error", "rid": rid,
                       "error": {"name": "DV_ENOTLEADER",
                                 "text": "not the leader of the group"}}
                if self.leader:
                    err["leader"] = self.leader
                self._reply(ident, err)

    def received(self, t: str) -> List[Dict[str, Any]]:
        return [h for h in self.got if h.get("t") == t]

    def submitted(self) -> List[Dict[str, Any]]:
        """Every submit received, those inside submit_many included."""
        out = list(self.received("submit"))
        for m in self.received("submit_many"):
            out.extend(m.get("requests", ()))
        return out

    def close(self) -> None:
        self.stopping = True
        self.thread.join(5)
        self.sock.close(0)
        self.ctx.term()


@pytest.fixture(scope="module")
def leader():
    """The group's leader: a real broker with one worker."""
    c = Cluster(workers=1)
    yield c
    c.close()


@pytest.fixture
def place():
    d = Path(tempfile.mkdtemp(prefix="dvgrp-"))
    fakes: List[FakeMember] = []

    class Place:
        dead = f"ipc://{d}/nobody-listens"

        @staticmethod
        def fake(mode: str, leader: Any) -> FakeMember:
            f = FakeMember(d, f"m{len(fakes)}", mode, leader)
            fakes.append(f)
            return f
    yield Place
    for f in fakes:
        f.close()
    shutil.rmtree(d, ignore_errors=True)


def queue_done(c: drover.Client, queue: str) -> int:
    q = c.status()["queues"].get(queue, {})
    assert q.get("queued", 0) == 0 and q.get("running", 0) == 0, q
    return q.get("done", 0)


def check_keys(fake: FakeMember, want: int) -> None:
    subs = fake.submitted()
    keys = [s.get("idempotency_key") for s in subs]
    assert len(subs) == want
    assert all(isinstance(k, str) and KEY.match(k) for k in keys), keys
    assert len(set(keys)) == want


def test_hint_followed_past_a_dead_member(leader, place):
    stale = place.fake("stale", leader.cep)
    q = "grp-sync"
    with drover.Client(f"{place.dead},{stale.endpoint},{leader.cep}",
                       timeout=30, connect_timeout=10) as c:
        assert c.endpoints == [place.dead, stale.endpoint, leader.cep]
        assert c.endpoint == stale.endpoint  # the dead one was passed
        jobs = [c.submit_echo(f"j{i}".encode(), queue=q) for i in range(20)]
        jobs += c.submit_many("echo", [b"m%d" % i for i in range(300)],
                              queue=q)
        assert c.status()["workers"] == 1  # a read, resent to the leader
        assert c.endpoint == leader.cep  # the hint was followed
        assert c.moves == 2  # dead -> stale -> the leader, straight
        got = [bytes(j.result(30).payload) for j in jobs]
        assert got == ([f"j{i}".encode() for i in range(20)]
                       + [b"m%d" % i for i in range(300)])
        assert len({j.id for j in jobs}) == 320
        assert queue_done(c, q) == 320  # each ran once
        more = c.submit_many("echo", [b"z"] * 10, queue=q)
        assert [bytes(j.result(30).payload) for j in more] == [b"z"] * 10
        assert c.pending == 0
    check_keys(stale, 320)


def test_follower_refuses_hello(leader, place):
    follower = place.fake("follower", leader.cep)
    with drover.Client(f"{follower.endpoint},{place.dead},{leader.cep}",
                       timeout=30, connect_timeout=10) as c:
        assert c.endpoint == leader.cep
        assert c.moves == 1  # straight to the hint, not through the dead
        assert c.echo(b"x") == b"x"
    assert [h["t"] for h in follower.got] == ["hello"]


def test_no_leader_known_tries_the_next(leader, place):
    electing = place.fake("follower", None)
    stale = place.fake("stale", None)
    with drover.Client(f"{electing.endpoint},{stale.endpoint},{leader.cep}",
                       timeout=30, connect_timeout=10) as c:
        assert c.endpoint == stale.endpoint
        assert c.echo(b"y", queue="grp-next") == b"y"
        assert c.endpoint == leader.cep
        assert queue_done(c, "grp-next") == 1
    check_keys(stale, 1)


def test_one_endpoint_is_todays_client(leader, place):
    follower = place.fake("follower", leader.cep)
    with pytest.raises(errors.NotLeader) as e:
        drover.Client(follower.endpoint, connect_timeout=10)
    assert e.value.leader == leader.cep and e.value.code == "DV_ENOTLEADER"
    stale = place.fake("stale", leader.cep)
    with drover.Client(stale.endpoint, timeout=10) as c:
        job = c.submit_echo(b"once")
        with pytest.raises(errors.NotLeader):
            job.result(10)
        grp = c.cluster()
        assert [m["role"] for m in grp["members"]] == ["leader", "follower"]
        assert grp["members"][0]["client"] == leader.cep
    subs = stale.submitted()
    assert len(subs) == 1 and "idempotency_key" not in subs[0]


def test_silent_member(leader, place):
    silent = place.fake("silent", leader.cep)
    eps = f"{silent.endpoint},{leader.cep}"
    with drover.Client(eps, timeout=30, connect_timeout=10) as c:
        # a write whose answer never came: outcome unknown, not resent
        with pytest.raises(errors.LeaderChanged):
            c.model_alias("grp-none", "prod", 1)
        assert c.endpoint == leader.cep
    assert len(silent.received("model_alias")) == 1
    # the old leader stored the first send of this key (another client
    # stands for it): the resend is answered duplicate, and the result is
    # fetched by job id
    with drover.Client(leader.cep) as direct:
        first = direct.submit_echo(b"k", queue="grp-silent",
                                   idempotency_key="grp-k1")
        assert bytes(first.result(30).payload) == b"k"
    with drover.Client(eps, timeout=30, connect_timeout=10) as c:
        again = c.submit_echo(b"k", queue="grp-silent",
                              idempotency_key="grp-k1")
        fresh = c.submit_echo(b"f", queue="grp-silent")
        assert again.id == first.id and not again.duplicate
        assert bytes(again.result(30).payload) == b"k"
        assert bytes(fresh.result(30).payload) == b"f"
        assert queue_done(c, "grp-silent") == 2
    keys = [s["idempotency_key"] for s in silent.submitted()]
    assert keys[0] == "grp-k1" and KEY.match(keys[1])


def test_accepted_job_awaited_by_id(leader, place):
    accepting = place.fake("accepting", leader.cep)
    q = "grp-byid"
    with drover.Client(leader.cep) as direct:
        # the job the dying leader accepted, replicated to the next one
        accepting.job_id = direct.submit_sleep(200, b"old", queue=q).id
    with drover.Client(f"{accepting.endpoint},{leader.cep}", timeout=30,
                       connect_timeout=10) as c:
        job = c.submit_sleep(200, b"new", queue=q)
        assert job.id == accepting.job_id
        assert bytes(job.result(30).payload) == b"old"  # not sent again
        assert c.endpoint == leader.cep
        assert queue_done(c, q) == 1
        assert c.pending == 0


def test_follow_moves_with_the_leader(leader, place):
    """A stream followed on a member that stops answering is followed
    again on the next one, from the consumer's stored position."""
    q = "grp-stream"
    with drover.Client(leader.cep) as direct:
        for j in direct.submit_many("echo", [b"s0", b"s1"], queue=q):
            j.result(30)
    silent = place.fake("silent", leader.cep)
    with drover.Client(f"{silent.endpoint},{leader.cep}", timeout=30,
                       connect_timeout=10) as c:
        assert c.endpoint == silent.endpoint
        stream = c.follow(q, "grp-cons", start="earliest")
        assert c.endpoint == leader.cep
        got = sorted(bytes(stream.get(10).payload) for _ in range(2))
        assert got == [b"s0", b"s1"]
        stream.ack(wait=True)
    assert len(silent.received("follow")) == 1


def test_aio_hint_followed_past_a_dead_member(leader, place):
    stale = place.fake("stale", leader.cep)
    q = "grp-aio"

    async def main():
        async with drover.aio.Client(
                f"{place.dead},{stale.endpoint},{leader.cep}", timeout=30,
                connect_timeout=10) as c:
            assert c.endpoint == stale.endpoint
            jobs = [await c.submit_echo(f"a{i}".encode(), queue=q)
                    for i in range(20)]
            jobs += await c.submit_many("echo", [b"n%d" % i
                                                 for i in range(300)],
                                        queue=q)
            st = await c.status()
            assert st["workers"] == 1 and c.endpoint == leader.cep
            got = await asyncio.gather(*[j.result(30) for j in jobs])
            assert [bytes(r.payload) for r in got] == (
                [f"a{i}".encode() for i in range(20)]
                + [b"n%d" % i for i in range(300)])
            assert len({j.id for j in jobs}) == 320
            q_st = (await c.status())["queues"][q]
            assert q_st["done"] == 320 and q_st["queued"] == 0
            silent = place.fake("silent", leader.cep)
            c2 = drover.aio.Client(f"{silent.endpoint},{leader.cep}",
                                   timeout=30, connect_timeout=10)
            await c2.connect()
            try:
                with pytest.raises(errors.LeaderChanged):
                    await c2.model_alias("grp-none", "prod", 1)
                assert await c2.echo(b"s", queue=q) == b"s"
            finally:
                await c2.close()
    asyncio.run(asyncio.wait_for(main(), 60))
    check_keys(stale, 320)


def test_member_killed_moves_on():
    """kill -9 of the member in use: the connection drops, the client moves
    to the next endpoint and resends the read in flight. (Two independent
    brokers stand for the group: only the client's side is tested.)"""
    a = Cluster(workers=0)
    try:
        b = Cluster(workers=0)
        try:
            with drover.Client(f"{a.cep},{b.cep}", timeout=30,
                               connect_timeout=10) as c:
                assert c.status()["workers"] == 0 and c.endpoint == a.cep
                a.broker.kill()
                assert c.ping() >= 0
                assert c.endpoint == b.cep and c.moves == 1
        finally:
            b.close()
    finally:
        a.close()
