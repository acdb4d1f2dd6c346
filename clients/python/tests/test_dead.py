"""Dead letters, deadlines and queue limits, on a broker of their own whose
only worker is a fake one (here, in Python) that fails every run with
DV_EIO: a retryable error, so jobs die once their attempts are used up."""

from __future__ import annotations

import threading
import time

import msgpack
import pytest
import zmq

from conftest import HEARTBEAT_MS, Cluster
from drover import errors

DEAD_Q = "py-dead"


class FailingWorker:
    """A worker (protocol 1.4) serving DEAD_Q that fails each run DV_EIO."""

    def __init__(self, endpoint: str):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.runs = []
        self.welcomed = threading.Event()
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self._send("register", worker="py-fake", capacity=1, models=[],
                   queues=[DEAD_Q])
        self.thread.start()
        assert self.welcomed.wait(10), "the broker never welcomed us"

    def _send(self, t, **f):
        self.sock.send(msgpack.packb({"v": [1, 4], "t": t, "rid": 0, **f}))

    def _loop(self):
        last = 0.0
        while not self.stopping:
            if self.sock.poll(20):
                msg = self.sock.recv_multipart()
                h = msgpack.unpackb(msg[0])
                if h["t"] == "welcome":
                    self.welcomed.set()
                elif h["t"] == "run":
                    self.runs.append((h["job"], h["attempt"]))
                    self._send("done", job=h["job"], attempt=h["attempt"],
                               state="failed",
                               error={"name": "DV_EIO",
                                      "text": "the test's disk failed"})
            now = time.monotonic()
            if now - last > HEARTBEAT_MS / 2000:
                self._send("heartbeat", running=0, models=[], datasets=[])
                last = now

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close(0)
        self.ctx.term()


@pytest.fixture(scope="module")
def lonely():
    """A broker with no real workers, at most 2 queued jobs per queue."""
    c = Cluster(workers=0, broker_args=["--max-queued", "2"])
    yield c
    c.close()


def wait_state(client, job, state, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if client.job(job)["state"] == state:
            return True
        time.sleep(0.02)
    return False


def test_dead_letters_list_show_requeue_purge(lonely):
    fake = FailingWorker(lonely.wep)
    try:
        with lonely.client() as c:
            job = c.submit_sleep(10, b"poison", queue=DEAD_Q,
                                 max_attempts=2, backoff_ms=0)
            with pytest.raises(errors.IO) as ei:
                job.result(20)
            assert ei.value.code == "DV_EIO"
            assert "disk" in ei.value.text
            assert wait_state(c, job.id, "dead")
            assert [a for j, a in fake.runs if j == job.id] == [1, 2]
            dl = c.dead_list(queue=DEAD_Q)
            assert dl["total"] == 1
            d = dl["jobs"][0]
            assert d["job"] == job.id and d["attempts"] == 2
            assert d["error"]["name"] == "DV_EIO"
            assert [e["attempt"] for e in d["errors"]] == [1, 2]
            assert c.dead_show(job.id)["job"] == job.id
            with pytest.raises(errors.NoEntry):
                c.dead_show(987654321)
            with pytest.raises(errors.Invalid):
                c.dead_requeue()  # neither a job nor all
            fake.stop()
            fake = None
            rq = c.dead_requeue(job.id)
            assert rq["count"] == 1
            new = rq["requeued"][0]
            assert new["job"] == job.id and new["new_job"] != job.id
            assert c.dead_list(queue=DEAD_Q)["total"] == 0
            # the stopped fake worker is not declared dead yet: the new
            # job may be sent to it
            assert c.cancel(new["new_job"]) in ("queued", "running")
            assert c.job(new["new_job"])["state"] == "cancelled"
            # one more death, purged this time
            fake = FailingWorker(lonely.wep)
            j2 = c.submit_sleep(10, queue=DEAD_Q, max_attempts=1)
            with pytest.raises(errors.IO):
                j2.result(20)
            assert wait_state(c, j2.id, "dead")
            assert c.dead_purge(all=True, queue=DEAD_Q) == 1
            assert c.dead_list()["total"] == 0
    finally:
        if fake is not None:
            fake.stop()


def test_deadline_expires_unstarted_job(lonely):
    with lonely.client() as c:
        job = c.submit_echo(b"late", queue="py-nobody-serves",
                            deadline_ms=100)
        with pytest.raises(errors.Expired) as ei:
            job.result(20)
        assert ei.value.code == "DV_EEXPIRED"
        assert c.job(job.id)["state"] == "expired"


def test_queue_full(lonely):
    with lonely.client() as c:
        a = c.submit_echo(b"1", queue="py-full")
        b = c.submit_echo(b"2", queue="py-full")
        assert a.id and b.id
        with pytest.raises(errors.QueueFull) as ei:
            c.submit_echo(b"3", queue="py-full").result(10)
        assert ei.value.code == "DV_EQUEUEFULL"
        assert c.cancel(a.id) == "queued"
        assert c.cancel(b.id) == "queued"
        with pytest.raises(errors.Canceled):
            a.result(10)


def test_submit_many_refusals_are_per_request(lonely):
    with lonely.client() as c:
        jobs = c.submit_many("echo", [b"a", b"b", b"c", b"d"],
                             queue="py-full-many")
        outcome = []
        for j in jobs:
            try:
                outcome.append(j.id > 0)
            except errors.QueueFull:
                outcome.append(False)
        assert outcome == [True, True, False, False]
        for j in jobs[:2]:
            c.cancel(j.id)
