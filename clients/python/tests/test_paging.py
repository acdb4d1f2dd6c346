"""Lists longer than one reply header holds (65,536 bytes) come in pages
(protocol 1.7) and both clients put them together: models, data sets,
workers, jobs and dead letters, against a broker of their own (no real
workers: jobs stay queued). Each test checks that its list took more than
one page, so it fails when the client stops after the first (or when the
broker ignores ``from``). Then the paging loop itself against canned
replies: old brokers, brokers that never move on, per-request limits, and
the stream consumers' list (1.8: `next` a [queue, consumer] pair) and
forget."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from typing import Any, Dict, List, Sequence

import msgpack
import pytest
import zmq

import drover.aio
from conftest import DATA, HEARTBEAT_MS, Cluster, run_cli
from drover import _api, errors
from drover import _proto as P

#: what one reply header may hold (docs/PROTOCOL.md, Limits)
HEADER_BYTES = 65536
#: 8 model names of 99 characters, 50 versions each: ~120 KiB of records
NAMES = [f"py-page-{'m' * 88}-{k:02d}" for k in range(8)]
VERSIONS = 50
#: a 128-character queue: a queued job's entry takes ~190 bytes, a page
#: holds ~330
QUEUE = "py-page-" + "q" * 120
#: the queue of the dead letters: the failing fake worker serves it
FAKE_Q = "py-page-fail"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


@pytest.fixture(scope="module")
def bare():
    """A broker of our own, no workers."""
    c = Cluster(workers=0)
    yield c
    c.close()


def count_calls(client) -> Counter:
    """Count the requests client sends, by type (wraps its _call)."""
    seen: Counter = Counter()
    call = client._call

    def counting(t, *a, **kw):
        seen[t] += 1
        return call(t, *a, **kw)
    client._call = counting
    return seen


def packed(items: Sequence[Any]) -> int:
    return len(msgpack.packb(list(items), use_bin_type=True))


class FakeWorkers:
    """n workers (protocol 1.7) on one thread, named `<name><i>`, holding
    `models`; they serve queue and fail every run with DV_EIO (a job with
    max_attempts 1 then dies at once)."""

    def __init__(self, endpoint: str, name: str, n: int, queue: str,
                 models: Sequence[str] = (), capacity: int = 1):
        self.ctx = zmq.Context()
        self.socks: List[zmq.Socket] = []
        self.welcomed = 0
        self.ready = threading.Event()
        self.stopping = False
        for i in range(n):
            s = self.ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(endpoint)
            self.socks.append(s)
            self._send(s, "register", worker=f"{name}{i}", capacity=capacity,
                       models=list(models), queues=[queue])
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "the broker never welcomed them all"

    @staticmethod
    def _send(s: zmq.Socket, t: str, **f: Any) -> None:
        s.send(msgpack.packb({"v": [1, 7], "t": t, "rid": 0, **f},
                             use_bin_type=True))

    def _loop(self) -> None:
        poller = zmq.Poller()
        for s in self.socks:
            poller.register(s, zmq.POLLIN)
        last = 0.0
        while not self.stopping:
            for s, _ in poller.poll(20):
                h = msgpack.unpackb(s.recv_multipart()[0], raw=False)
                if h["t"] == "welcome":
                    self.welcomed += 1
                    if self.welcomed == len(self.socks):
                        self.ready.set()
                elif h["t"] == "run":
                    self._send(s, "done", job=h["job"], attempt=h["attempt"],
                               state="failed",
                               error={"name": "DV_EIO",
                                      "text": "the test's disk failed"})
            now = time.monotonic()
            if now - last > HEARTBEAT_MS / 2000:
                for s in self.socks:  # no models: the register's stay
                    self._send(s, "heartbeat", running=0)
                last = now

    def stop(self) -> None:
        self.stopping = True
        self.thread.join(5)
        for s in self.socks:
            s.close(0)
        self.ctx.term()


# ------------------------------------------------------------- models

def test_models_come_back_whole_in_pages(bare, tmp_path):
    path = tmp_path / "tiny.drvm"
    run_cli("local", "train", "--data", str(DATA / "iris_train.csv"),
            "--out", str(path), "--threads", "1", "--algo", "softmax")
    blob = path.read_bytes()
    want = [(n, v) for n in sorted(NAMES) for v in range(1, VERSIONS + 1)]
    with bare.client() as c:
        for _ in range(VERSIONS):
            for n in reversed(NAMES):  # pushed out of order
                c.model_push(n, blob)
        seen = count_calls(c)
        got = c.models()
    assert [(m["name"], m["version"]) for m in got] == want
    assert packed(got) > HEADER_BYTES  # more than one header holds
    assert seen["model_list"] >= 2  # so it took pages

    async def aio():
        async with drover.aio.Client(bare.cep) as a:
            seen = count_calls(a)
            listed = await a.models()
            assert seen["model_list"] >= 2
            return listed
    assert run(aio()) == got


def test_datasets_come_back_whole_in_pages(bare):
    csv = b"a,target\n1,2\n3,4\n"
    names = [n.replace("m", "d") for n in NAMES]  # ~210 bytes a record
    with bare.client() as c:
        for _ in range(VERSIONS):
            for n in reversed(names):
                c.dataset_push(n, csv)
        seen = count_calls(c)
        got = c.datasets()
    assert [(d["name"], d["version"]) for d in got] == [
        (n, v) for n in sorted(names) for v in range(1, VERSIONS + 1)]
    assert packed(got) > HEADER_BYTES
    assert seen["dataset_list"] >= 2


# ------------------------------------------------------------ workers

def test_workers_all_listed_and_long_lists_cut(bare):
    models = [f"py-page-model-{'w' * 80}-{k:03d}" for k in range(200)]
    fake = FakeWorkers(bare.wep, "pw", 16, "py-page-idle", models)  # ~8 KiB each listed
    try:
        with bare.client() as c:
            seen = count_calls(c)
            ws = c.workers()
        assert sorted(w["name"] for w in ws) == sorted(
            f"pw{i}" for i in range(16))
        assert packed(ws) > HEADER_BYTES
        assert seen["workers"] >= 2
        for w in ws:
            assert w["models_total"] == len(models)
            assert 0 < len(w["models"]) < len(models)
            assert set(w["models"]) <= set(models)
            assert "datasets_total" not in w  # not cut

        async def aio():
            async with drover.aio.Client(bare.cep) as a:
                return await a.workers()
        assert sorted(w["name"] for w in run(aio())) == sorted(
            w["name"] for w in ws)
    finally:
        fake.stop()


# --------------------------------------------------------------- jobs

@pytest.fixture(scope="module")
def queued(bare):
    """1,500 echo jobs waiting on QUEUE (nobody serves it): their ids,
    newest first."""
    with bare.client() as c:
        jobs = c.submit_many("echo", [b""] * 1500, queue=QUEUE)
        return sorted((j.id for j in jobs), reverse=True)


def test_jobs_limit_spans_pages_newest_first(bare, queued):
    with bare.client() as c:
        seen = count_calls(c)
        got = c.jobs(queue=QUEUE, limit=1200)
        assert [j["job"] for j in got] == queued[:1200]
        assert packed(got) > HEADER_BYTES
        assert seen["job_list"] >= 2
        assert all(j["state"] == "queued" for j in got)
        assert [j["job"] for j in c.jobs(queue=QUEUE)] == queued[:100]
        # 10,000 at most; all 1,500 are fewer
        assert [j["job"] for j in c.jobs(queue=QUEUE, limit=10 ** 6)
                ] == queued

    async def aio():
        async with drover.aio.Client(bare.cep) as a:
            return await a.jobs(queue=QUEUE, limit=1200)
    assert run(aio()) == got


def test_jobs_page_and_from_go_on_where_a_page_stopped(bare, queued):
    with bare.client() as c:
        first = c.jobs_page(queue=QUEUE, limit=500)
        assert [j["job"] for j in first["jobs"]] == queued[:500]
        assert first["next"] is not None
        second = c.jobs_page(queue=QUEUE, limit=500, from_=first["next"])
        assert [j["job"] for j in second["jobs"]] == queued[500:1000]
        # a caller's own paging walks the whole list, each job once
        walked: List[int] = []
        page = c.jobs_page(queue=QUEUE, limit=400)
        while True:
            walked += [j["job"] for j in page["jobs"]]
            if page["next"] is None:
                break
            page = c.jobs_page(queue=QUEUE, limit=400, from_=page["next"])
        assert walked == queued
        # from_ a job id: that job and the older ones
        got = c.jobs(queue=QUEUE, limit=10000, from_=queued[700])
        assert [j["job"] for j in got] == queued[700:]
        last = c.jobs_page(queue=QUEUE, limit=10000, from_=queued[-5])
        assert [j["job"] for j in last["jobs"]] == queued[-5:]
        assert last["next"] is None

    async def aio():
        async with drover.aio.Client(bare.cep) as a:
            p = await a.jobs_page(queue=QUEUE, limit=500,
                                  from_=first["next"])
            return [j["job"] for j in p["jobs"]]
    assert run(aio()) == queued[500:1000]


# ------------------------------------------------------- dead letters

def test_dead_list_spans_pages(bare):
    fake = FakeWorkers(bare.wep, "pdead", 1, FAKE_Q, capacity=64)
    try:
        with bare.client() as c:
            jobs = c.submit_many("echo", [b"x"] * 600, queue=FAKE_Q,
                                 max_attempts=1, backoff_ms=0)
            ids = {j.id for j in jobs}
            end = time.monotonic() + 30
            while c.dead_list(queue=FAKE_Q, limit=0)["total"] < 600:
                assert time.monotonic() < end, "the jobs never died"
                time.sleep(0.05)
            seen = count_calls(c)
            dl = c.dead_list(queue=FAKE_Q)
            got = [d["job"] for d in dl["jobs"]]
            assert len(got) == 600 and set(got) == ids
            assert dl["total"] == 600
            assert packed(dl["jobs"]) > HEADER_BYTES
            assert seen["dead_list"] >= 2
            part = c.dead_list(queue=FAKE_Q, limit=450)
            assert [d["job"] for d in part["jobs"]] == got[:450]
            assert c.dead_show(got[-1])["job"] == got[-1]
            assert c.dead_purge(all=True, queue=FAKE_Q) == 600
    finally:
        fake.stop()


# --------------------------------------------------- stream consumers

def test_consumers_come_back_whole_in_pages(bare):
    """1.8: 260 consumers of 128-character names (~300 bytes an entry)
    take two pages; `next` is a [queue, consumer] pair."""
    names = [f"{k:03d}-" + "c" * 124 for k in range(260)]
    with bare.client() as c:
        for n in reversed(names):  # made out of order
            c.follow(QUEUE, n).close()  # unfollowed: the consumer stays
        seen = count_calls(c)
        got = c.consumers(queue=QUEUE)
        assert [(x["queue"], x["consumer"]) for x in got] == [
            (QUEUE, n) for n in names]
        assert all(x["acked"] == 0 and not x["followed"] for x in got)
        assert packed(got) > HEADER_BYTES
        assert seen["consumer_list"] >= 2

        async def aio():
            async with drover.aio.Client(bare.cep) as a:
                seen = count_calls(a)
                listed = await a.consumers(queue=QUEUE)
                assert seen["consumer_list"] >= 2
                return listed
        assert run(aio()) == got
        for n in names:
            c.consumer_forget(QUEUE, n)
        assert c.consumers(queue=QUEUE) == []


# ------------------------------------------- the paging loop, canned

class Canned(_api._Api):
    """_Api over canned replies: replies[i] answers the i-th request (an
    exception there is raised, as a broker's `error` reply is)."""

    def __init__(self, replies: List[Any], minor: int = 7):
        self.replies = list(replies)
        self.sent: List[Dict[str, Any]] = []
        self.broker_minor = minor
        #: the consumers _forgot was told of
        self.forgot: List[Any] = []

    def _call(self, t, fields, want, frames=(), timeout="default"):
        self.sent.append(P.header(t, 0, **fields))
        if not self.replies:
            raise AssertionError("asked once too often")
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def _then(self, r, fn):
        return fn(r)

    def _forgot(self, queue, consumer):
        self.forgot.append((queue, consumer))

    def _drive(self, gen):
        return _api.drive(gen, self._call)


class CannedAio(Canned):
    async def _acall(self, *a, **kw):
        await asyncio.sleep(0)
        return Canned._call(self, *a, **kw)

    def _call(self, *a, **kw):  # a coroutine, as drover.aio's
        return self._acall(*a, **kw)

    def _then(self, r, fn):
        async def then():
            return fn(await r)
        return then()

    def _drive(self, gen):
        return _api.adrive(gen, self._acall)


def both(replies, fn, minor=7):
    """fn(client) against the blocking and the asyncio driver: both
    results and both request lists, which must be the same."""
    s = Canned(replies, minor)
    a = CannedAio(replies, minor)
    got_s = fn(s)
    got_a = run(fn(a))
    assert got_s == got_a and s.sent == a.sent
    return got_s, s.sent


def test_old_broker_one_page():
    got, sent = both([{"models": [1, 2, 3]}], lambda c: c.models())
    assert got == [1, 2, 3] and len(sent) == 1 and "from" not in sent[0]


def test_next_echoed_unchanged():
    nxt = ["a" * 100, 7]
    got, sent = both([{"models": [1], "next": nxt}, {"models": [2]}],
                     lambda c: c.models())
    assert got == [1, 2] and sent[1]["from"] == nxt


def test_broker_ignoring_from_stops():
    page = {"workers": [{"name": "a"}], "next": 5, "total": 9}
    got, sent = both([page, page, page], lambda c: c.workers())
    assert got == [{"name": "a"}]  # the repeat is not kept
    assert len(sent) == 2 and sent[1]["from"] == 5


def test_empty_page_with_next_stops():
    got, sent = both([{"datasets": [1], "next": 3},
                      {"datasets": [], "next": 4}, {"datasets": [9]}],
                     lambda c: c.datasets())
    assert got == [1] and len(sent) == 2


def test_limit_per_request_and_jobs_page():
    got, sent = both([{"jobs": [{"job": 9}, {"job": 8}], "next": 7},
                      {"jobs": [{"job": 7}], "next": 6}],
                     lambda c: c.jobs_page(limit=3, queue="q"))
    assert got == {"jobs": [{"job": 9}, {"job": 8}, {"job": 7}], "next": 6}
    assert [(h["limit"], h.get("from")) for h in sent] == [(3, None), (1, 7)]
    assert all(h["queue"] == "q" for h in sent)
    _, sent = both([{"jobs": []}], lambda c: c.jobs(limit=99999, from_=40))
    assert sent[0]["limit"] == 10000 and sent[0]["from"] == 40
    _, sent = both([{"jobs": []}], lambda c: c.jobs())
    assert sent[0]["limit"] == 100


def test_dead_list_limit_and_total():
    got, sent = both([{"total": 5, "jobs": [1, 2], "next": 3},
                      {"total": 5, "jobs": [3, 4, 5]}],
                     lambda c: c.dead_list(queue="q"))
    assert got == {"total": 5, "jobs": [1, 2, 3, 4, 5]}
    assert [h["limit"] for h in sent] == [1000, 998]


def test_jobs_from_needs_a_1_7_broker():
    with pytest.raises(errors.Invalid):
        Canned([], minor=6).jobs(from_=5)
    with pytest.raises(errors.Invalid):
        run(CannedAio([], minor=6).jobs_page(from_=5))
    assert Canned([{"jobs": []}], minor=6).jobs() == []


# ------------------------------------------- stream consumers (1.8)

def consumer(queue: str, name: str, acked: int, last: int,
             **more: Any) -> Dict[str, Any]:
    return {"queue": queue, "consumer": name, "acked": acked, "last": last,
            "followed": False, **more}


def test_consumers_pages_with_a_pair_next():
    a = consumer("q", "a", 3, 9, followed=True, window=100, in_flight=6,
                 owner="k" * 64)
    b, c = consumer("q", "b", 9, 9), consumer("q", "c", 0, 9)
    got, sent = both([{"total": 3, "consumers": [a, b], "next": ["q", "c"]},
                      {"total": 3, "consumers": [c]}],
                     lambda cl: cl.consumers(queue="q"), minor=8)
    assert got == [a, b, c]
    assert [h["t"] for h in sent] == ["consumer_list"] * 2
    assert [h.get("from") for h in sent] == [None, ["q", "c"]]
    assert all(h["queue"] == "q" and "limit" not in h for h in sent)
    # all queues: no queue field; one page without next ends it
    got, sent = both([{"total": 0, "consumers": []}],
                     lambda cl: cl.consumers(), minor=8)
    assert got == [] and len(sent) == 1 and "queue" not in sent[0]
    # a broker that never moves on does not keep the client asking
    page = {"total": 2, "consumers": [a], "next": ["q", "b"]}
    got, sent = both([page, page, page], lambda cl: cl.consumers(), minor=8)
    assert got == [a] and len(sent) == 2


def test_consumer_forget_round_trip():
    ok = {"v": [1, 8], "t": "ok", "rid": 0, "queue": "q", "consumer": "a",
          "acked": 7}
    for cls in (Canned, CannedAio):
        c = cls([ok], minor=8)
        r = c.consumer_forget("q", "a")
        got = run(r) if cls is CannedAio else r
        assert got == ok
        assert c.sent == [P.header("consumer_forget", 0, queue="q",
                                   consumer="a")]
        assert c.forgot == [("q", "a")]  # its own stream of it ends
        # refused: the error is raised, nothing is forgotten here
        c = cls([errors.NoEntry("no consumer a on queue q")], minor=8)
        with pytest.raises(errors.NoEntry):
            r = c.consumer_forget("q", "a")
            if cls is CannedAio:
                run(r)
        assert c.forgot == []
