"""drover.aio: the same surface on asyncio."""

from __future__ import annotations

import asyncio
import hashlib

import numpy as np
import pytest

import drover.aio
from conftest import DATA, load_csv
from drover import errors


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_aio_echo_jobs_and_requests(cluster):
    async def main():
        async with drover.aio.Client(cluster.cep) as c:
            assert c.broker_minor >= 4
            assert await c.echo(b"aio") == b"aio"
            job = await c.submit_echo(b"fut", queue="py-aio")
            res = await job
            assert bytes(res.payload) == b"fut" and job.done()
            assert job.id == res.job
            # many coroutines on one client at once
            outs = await asyncio.gather(*[c.echo(f"{i}".encode())
                                          for i in range(50)])
            assert outs == [f"{i}".encode() for i in range(50)]
            jobs = await c.submit_many("echo", [b"x"] * 300, queue="py-aio")
            done = await asyncio.gather(*[j.result(20) for j in jobs])
            assert all(bytes(r.payload) == b"x" for r in done)
            st = await c.status()
            assert st["queues"]["py-aio"]["done"] >= 301
            assert len(await c.workers()) == 2
            with pytest.raises(errors.NoEntry):
                await c.job(987654321)
            assert c.pending == 0
    run(main())


def test_aio_infer_train_cancel(cluster, models):
    async def main():
        async with drover.aio.Client(cluster.cep) as c:
            m = models["iris"]
            X, _, _ = load_csv(m["csv"].name)
            keep = X.copy()
            with drover.Client(cluster.cep) as sync:
                want = sync.infer(m["ref"], X)
            got = await c.predict(m["ref"], X, batch=7)
            np.testing.assert_allclose(got.output, want, rtol=1e-5,
                                       atol=1e-6)
            assert got.classes == ["0", "1", "2"]
            np.testing.assert_array_equal(X, keep)
            with pytest.raises(errors.NoModel):
                await c.infer("py-missing", X)
            with pytest.raises(errors.Shape):
                await c.infer(m["ref"], np.zeros((1, 3)))
            seen = []
            res = await c.train("py-aio-iris", str(m["train_csv"]),
                                algo="softmax", epochs=50, patience=0,
                                on_progress=seen.append)
            assert res.model.startswith("py-aio-iris@") and seen
            assert seen[-1].epochs == 50
            sl = await c.submit_sleep(5000, queue="py-aio-cancel")
            await sl.wait_id()
            with pytest.raises(errors.Timeout):
                await sl.result(0.05)
            assert await sl.cancel()
            with pytest.raises(errors.Canceled):
                await sl
    run(main())


def test_aio_follow(cluster):
    async def main():
        async with drover.aio.Client(cluster.cep) as c:
            q = "py-aio-stream"
            s = await c.follow(q, "py-aio-cons", start="latest")
            jobs = await c.submit_many("echo", [b"1", b"2", b"3"], queue=q)
            for j in jobs:
                await j
            got = []
            async for r in s:
                got.append(bytes(r.payload))
                if len(got) == 3:
                    break
            assert sorted(got) == [b"1", b"2", b"3"]
            assert await s.ack(wait=True) == s.last_seq
            assert await s.get(0.1) is None
            assert await s.close() == s.last_seq
    run(main())


def test_aio_connect_timeout(tmp_path):
    async def main():
        with pytest.raises(errors.Timeout):
            await drover.aio.Client(f"ipc://{tmp_path}/none",
                                    connect_timeout=0.2).connect()
    run(main())


def test_aio_data_sets_watch_and_wait_result(cluster):
    """The calls that poll or go up in chunks, as drover.Client's do."""
    async def main():
        async with drover.aio.Client(cluster.cep) as c:
            path = DATA / "iris_train.csv"
            rec = await c.dataset_push("py-aio-ds", str(path))
            assert rec["name"] == "py-aio-ds" and rec["version"] >= 1
            assert rec["sha256"] == hashlib.sha256(
                path.read_bytes()).digest()
            job = await c.submit_sleep(300, queue="py-aio-watch")
            jid = await job.wait_id()
            states = [j["state"] async for j in c.watch(
                jid, interval=0.02, timeout=20)]
            assert states[-1] == "done"
            assert "queued" in states or "running" in states
            res = await c.wait_result(jid, timeout=20)
            assert res.job == jid
            with pytest.raises(errors.Timeout):
                late = await c.submit_sleep(5000, queue="py-aio-watch")
                await c.wait_result(await late.wait_id(), timeout=0.2)
    run(main())
