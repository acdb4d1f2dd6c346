"""CURVE: a broker run with --secret-key/--authorized-keys, keys from
`drover keygen`, clients with key=/broker_key= or DROVER_KEY/_BROKER_KEY."""

from __future__ import annotations

import os
import shutil

import pytest

import drover
from conftest import Cluster, run_cli
from drover import errors


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    auth = d / "authorized"
    auth.mkdir()
    out = {}
    for name, roles in (("broker", ""), ("alice", "producer"),
                        ("root", "admin"), ("wk", "worker"),
                        ("mallory", "producer")):
        args = ["keygen", "--out", str(d / name), "--name", name]
        if roles:
            args += ["--roles", roles]
        run_cli(*args)
        out[name] = (str(d / f"{name}.key"), str(d / f"{name}.pub"))
        if name not in ("broker", "mallory"):  # mallory is not authorized
            shutil.copy(d / f"{name}.pub", auth / f"{name}.pub")
    out["auth"] = str(auth)
    return out


@pytest.fixture(scope="module")
def secure(keys):
    c = Cluster(workers=1, broker_args=["--secret-key", keys["broker"][0],
                                        "--authorized-keys", keys["auth"]],
                worker_args=["--key", keys["wk"][0],
                             "--broker-key", keys["broker"][1]])
    yield c
    c.close()


def test_curve_client_with_key_files(secure, keys):
    with drover.Client(secure.cep, key=keys["alice"][0],
                       broker_key=keys["broker"][1]) as c:
        assert c.key_id == "alice"
        assert c.echo(b"secret", queue="py-sec") == b"secret"
        with pytest.raises(errors.Perm) as ei:
            c.admin_reload()  # a producer is no admin
        assert ei.value.code == "DV_EPERM"


def test_curve_from_environment_and_z85(secure, keys, monkeypatch):
    monkeypatch.setenv("DROVER_KEY", keys["root"][0])
    monkeypatch.setenv("DROVER_BROKER_KEY", keys["broker"][1])
    with drover.Client(secure.cep) as c:
        assert c.key_id == "root"
        assert c.admin_reload() == 3  # alice, root, wk
    z85 = drover.load_key(keys["broker"][1]).public.decode()
    assert len(z85) == 40
    monkeypatch.delenv("DROVER_KEY")
    monkeypatch.delenv("DROVER_BROKER_KEY")
    with drover.Client(secure.cep, key=keys["alice"][0],
                       broker_key=z85) as c:
        assert c.echo(b"z85") == b"z85"


def test_refused_keys_raise_perm(secure, keys):
    with pytest.raises(errors.Perm) as ei:
        drover.Client(secure.cep, key=keys["mallory"][0],
                      broker_key=keys["broker"][1], connect_timeout=10)
    assert "mallory" in ei.value.text
    # a plain client against a CURVE broker: refused, not answered
    with pytest.raises(errors.Perm) as ei:
        drover.Client(secure.cep, connect_timeout=10)
    assert "CURVE" in ei.value.text
    # the worker key has no client role
    with pytest.raises(errors.Perm):
        drover.Client(secure.cep, key=keys["wk"][0],
                      broker_key=keys["broker"][1], connect_timeout=10)


def test_key_file_checks(keys, tmp_path):
    with pytest.raises(errors.Invalid):
        drover.Client("ipc:///nonexistent", key=keys["alice"][0])
    with pytest.raises(errors.Invalid):  # the .pub holds no secret
        drover.Client("ipc:///nonexistent", key=keys["alice"][1],
                      broker_key=keys["broker"][1])
    open_key = tmp_path / "open.key"
    shutil.copy(keys["alice"][0], open_key)
    os.chmod(open_key, 0o644)
    with pytest.raises(errors.Access):
        drover.load_key(str(open_key))
    k = drover.load_key(keys["alice"][0])
    assert k.id == "alice" and len(k.public) == 40 and len(k.secret) == 40


def test_aio_curve(secure, keys):
    import asyncio

    import drover.aio

    async def main():
        async with drover.aio.Client(secure.cep, key=keys["alice"][0],
                                     broker_key=keys["broker"][1]) as c:
            assert c.key_id == "alice"
            assert await c.echo(b"aio-secret") == b"aio-secret"
            with pytest.raises(errors.Perm):
                await c.admin_reload()
        with pytest.raises(errors.Perm) as ei:
            await drover.aio.Client(secure.cep, key=keys["mallory"][0],
                                    broker_key=keys["broker"][1],
                                    connect_timeout=10).connect()
        assert "mallory" in ei.value.text

    asyncio.run(asyncio.wait_for(main(), 60))
