"""The blocking client against a real broker and workers: echo, futures,
cancel, status, and every wire error mapped to its exception."""

from __future__ import annotations

import threading

import msgpack
import numpy as np
import pytest

import drover
from drover import errors


def test_connect_reads_welcome(client):
    assert client.broker_minor >= 4
    assert client.limits["max_frame_bytes"] > 0
    assert client.broker_name.startswith("drover-broker")
    assert client.ping() >= 0


def test_endpoint_from_environment(cluster, monkeypatch):
    monkeypatch.setenv("DROVER_BROKER", cluster.cep)
    with drover.Client() as c:
        assert c.endpoint == cluster.cep
        assert c.echo(b"env") == b"env"


def test_no_broker_times_out(tmp_path):
    with pytest.raises(errors.Timeout) as ei:
        drover.Client(f"ipc://{tmp_path}/nobody", connect_timeout=0.2)
    assert ei.value.code == "DV_ETIMEDOUT"
    assert isinstance(ei.value, TimeoutError)


def test_echo_round_trip(client):
    assert client.echo(b"hello") == b"hello"
    assert client.echo(b"") == b""
    big = bytes(range(256)) * 4096  # 1 MiB
    assert client.echo(big) == big


def test_submit_returns_a_future(client):
    job = client.submit_echo(b"payload", queue="py-future")
    assert isinstance(job.id, int) and job.id > 0
    res = job.result(timeout=20)
    assert job.done()
    assert res.ok and res.state == "done"
    assert bytes(res.payload) == b"payload"
    assert res.job == job.id
    assert res.attempts == 1
    assert res.worker.startswith("w")
    # the kept result is there for any client
    again = client.result_get(job.id)
    assert bytes(again.payload) == b"payload"


def test_submit_many_each_its_own_job(client):
    payloads = [f"m{i}".encode() for i in range(600)]  # > 256: 3 messages
    jobs = client.submit_many("echo", payloads, queue="py-many")
    assert len(jobs) == 600
    got = [bytes(j.result(30).payload) for j in jobs]
    assert got == payloads
    assert len({j.id for j in jobs}) == 600
    assert client.pending == 0


def test_sleep_and_client_side_timeout(client):
    job = client.submit_sleep(3000, b"zz", queue="py-sleep")
    with pytest.raises(errors.Timeout):
        job.result(timeout=0.05)
    assert not job.done()
    assert job.cancel() is True
    with pytest.raises(errors.Canceled) as ei:
        job.result(timeout=20)
    assert ei.value.code == "DV_ECANCELED"
    assert ei.value.job == job.id
    assert job.cancel() is False  # finished: nothing to cancel
    assert client.job(job.id)["state"] == "cancelled"


def test_cancel_unknown_job_is_no_entry(client):
    with pytest.raises(errors.NoEntry) as ei:
        client.cancel(987654321)
    assert ei.value.code == "DV_ENOENT"
    with pytest.raises(errors.NoEntry):
        client.job(987654321)
    with pytest.raises(errors.NoEntry):
        client.result_get(987654321)


def test_run_timeout_is_wire_timeout(client):
    job = client.submit_sleep(5000, queue="py-tmo", timeout_ms=100)
    with pytest.raises(errors.Timeout) as ei:
        job.result(timeout=20)
    assert ei.value.code == "DV_ETIMEDOUT"
    assert "DV_ETIMEDOUT" in str(ei.value)


def test_invalid_fields_map_to_invalid(client):
    with pytest.raises(errors.Invalid) as ei:
        client.sleep(3600001, queue="py-inval")
    assert ei.value.code == "DV_EINVAL"
    assert "3600000" in ei.value.text  # the broker's reason names the bound
    with pytest.raises(errors.Invalid):
        client.submit_echo(b"", priority=5000).result(10)


def test_idempotency_key_too_long(client):
    # caught here before sending ...
    with pytest.raises(errors.Invalid):
        client.submit_echo(b"", idempotency_key="k" * 300)
    # ... and by the broker when sent anyway
    job = client.submit("echo", b"", fields={"idempotency_key": "k" * 300})
    with pytest.raises(errors.MsgSize) as ei:
        job.result(10)
    assert ei.value.code == "DV_EMSGSIZE"


def test_idempotent_resubmit_is_duplicate(client):
    a = client.submit_echo(b"once", queue="py-idem", idempotency_key="py-k1")
    ra = a.result(20)
    b = client.submit_echo(b"once", queue="py-idem", idempotency_key="py-k1")
    assert b.id == a.id
    assert b.duplicate
    rb = b.result(20)  # fetched with result_get
    assert bytes(rb.payload) == bytes(ra.payload) == b"once"


def test_format_and_version_errors(client):
    with pytest.raises(errors.Format) as ei:
        client._call("no_such_message", {}, ("ok",))
    assert ei.value.code == "DV_EFORMAT"
    # a wrong major version is refused with DV_EVERSION
    rid = client._rid()
    from drover import _proto as P
    req = P._Req(("pong",))
    client._pending[rid] = req
    client._send({"v": [2, 0], "t": "ping", "rid": rid})
    client._pump(lambda: req.finished, 10)
    assert isinstance(req.exc, errors.Version)
    assert req.exc.code == "DV_EVERSION"


def test_dtype_error(client, models):
    x = np.zeros((1, 4), dtype="<f4")
    job = client.submit("infer", x.tobytes(), queue="py-dtype",
                        fields={"model": models["iris"]["ref"],
                                "input": {"frame": 1, "dtype": "f64",
                                          "shape": [1, 4]}})
    with pytest.raises(errors.DType) as ei:
        job.result(10)
    assert ei.value.code == "DV_EDTYPE"


def test_unknown_wire_error_keeps_its_name():
    e = errors.from_wire({"name": "DV_ESOMETHINGNEW", "text": "later"})
    assert type(e) is errors.DroverError
    assert e.code == "DV_ESOMETHINGNEW" and e.text == "later"
    assert isinstance(errors.from_wire({"name": "DV_ENOMODEL", "text": ""}),
                      errors.NoModel)


def test_every_wire_name_has_a_class():
    names = ["DV_EINVAL", "DV_EFORMAT", "DV_EDTYPE", "DV_EVERSION",
             "DV_EMSGSIZE", "DV_ESHAPE", "DV_ENAN", "DV_ENOMODEL",
             "DV_ENOENT", "DV_ECHECKSUM", "DV_ENOMEM", "DV_ECANCELED",
             "DV_EIO", "DV_ENOSPC", "DV_EACCES", "DV_ETRUNC",
             "DV_EQUEUEFULL", "DV_ETIMEDOUT", "DV_EEXPIRED",
             "DV_EQUARANTINED", "DV_EPERM", "DV_ELIMIT", "DV_EDIVERGED"]
    for n in names:
        cls = errors.error_class(n)
        assert cls is not errors.DroverError, n
        assert issubclass(cls, errors.DroverError)
        assert cls.code == n


def test_status_and_workers(client):
    client.echo(b"s", queue="py-status")
    st = client.status()
    assert st["workers"] == 2
    assert st["queues"]["py-status"]["done"] >= 1
    ws = client.workers()
    assert sorted(w["name"] for w in ws) == ["w0", "w1"]
    assert all(w["state"] == "ready" and w["capacity"] >= 1 for w in ws)


def test_jobs_list_show_watch(client):
    job = client.submit_sleep(300, queue="py-watch")
    states = [j["state"] for j in client.watch(job.id, interval=0.02,
                                               timeout=20)]
    assert states[-1] == "done"
    assert "queued" in states or "running" in states
    job.result(10)
    info = client.job(job.id)
    assert info["state"] == "done" and info["job"] == job.id
    listed = client.jobs(limit=10000)
    assert any(j["job"] == job.id for j in listed)
    # unfinished jobs carry their queue: list by queue
    s = client.submit_sleep(2000, queue="py-list")
    s.id
    mine = client.jobs(queue="py-list")
    assert [j["job"] for j in mine] == [s.id]
    assert mine[0]["kind"] == "sleep"
    s.cancel()


def test_wait_result_from_another_client(cluster, client):
    job = client.submit_sleep(200, b"later", queue="py-wait")
    with cluster.client() as other:
        res = other.wait_result(job.id, timeout=20)
    assert bytes(res.payload) == b"later"
    job.result(10)


def test_client_is_not_shared_across_threads(client):
    err = []

    def use():
        try:
            client.ping()
        except RuntimeError as e:
            err.append(e)

    t = threading.Thread(target=use)
    t.start()
    t.join()
    assert err and "thread" in str(err[0])


def test_result_frames_are_read_only_views(client):
    res = client.submit_echo(b"abcd" * 100).result(10)
    assert isinstance(res.payload, memoryview)
    assert bytes(res.payload) == b"abcd" * 100


def test_raw_header_is_msgpack_map(client):
    # a header that is not a map gets DV_EFORMAT with rid 0: unsolicited
    n = len(client.unsolicited_errors)
    client._sock.send(msgpack.packb([1, 2, 3]))
    client.ping()
    client._pump(lambda: len(client.unsolicited_errors) > n, 5)
    assert isinstance(client.unsolicited_errors[-1], errors.Format)


def test_version_moves_with_the_c_library():
    import re
    import subprocess
    import sys
    from pathlib import Path

    from conftest import ROOT, run_cli
    cmake = (ROOT / "CMakeLists.txt").read_text()
    want = re.search(r"project\(drover VERSION ([\d.]+)", cmake).group(1)
    assert drover.__version__ == want
    pyproject = (ROOT / "clients" / "python" / "pyproject.toml").read_text()
    assert f'version = "{want}"' in pyproject
    assert run_cli("version").stdout.decode().split()[-1] == want
    # drover.export is another helper's submodule: never imported eagerly
    code = ("import sys, drover, drover.aio; "
            "assert 'drover.export' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True,
                   cwd=str(Path(drover.__file__).parents[1]))


def test_generic_submit_and_sleep_payload(client):
    job = client.submit("sleep", b"after", queue="py-generic",
                        fields={"ms": 20}, priority=3, max_attempts=1,
                        durability="none")
    res = job.result(20)
    assert bytes(res.payload) == b"after"
    with pytest.raises(TypeError):
        client.submit_echo(b"", no_such_option=1)


def test_connection_limits_refuse_with_limit_error():
    """A plain broker at --max-connections refuses the next connection at
    its handshake; the client says so (Limit), at once, not DV_EPERM."""
    import time

    from conftest import Cluster
    c = Cluster(workers=0, broker_args=["--max-connections", "1"],
                data=False)
    try:
        with c.client(timeout=10.0) as first:
            first.status()
            t = time.monotonic()
            with pytest.raises(errors.Limit, match="--max-connections"):
                with c.client(timeout=10.0) as second:
                    second.status()
            assert time.monotonic() - t < 5
    finally:
        c.close()
