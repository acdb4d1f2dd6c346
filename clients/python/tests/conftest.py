"""Fixtures: real drover-broker / drover-worker processes on ipc endpoints.

Binaries come from DROVER_BIN, DROVER_BROKER_BIN, DROVER_WORKER_BIN (as
CTest sets them), else build/release/bin/* under the repository root; data
from DV_DATA_DIR, else data/. Every process started here is stopped (by its
own PID) at teardown.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "clients" / "python"))
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree

import drover  # noqa: E402

#: seconds a process may take to print READY (ASan builds are slower)
READY_S = 30.0
#: heartbeat of test brokers/workers: dead workers are noticed fast
HEARTBEAT_MS = 200


def _bin(env: str, name: str) -> str:
    p = os.environ.get(env) or str(ROOT / "build" / "release" / "bin" / name)
    if not os.access(p, os.X_OK):
        pytest.exit(f"{name} not found at {p} (set {env})", returncode=2)
    return p


DROVER = _bin("DROVER_BIN", "drover")
BROKER = _bin("DROVER_BROKER_BIN", "drover-broker")
WORKER = _bin("DROVER_WORKER_BIN", "drover-worker")
DATA = Path(os.environ.get("DV_DATA_DIR") or ROOT / "data")


class Proc:
    """A child process that prints 'READY ...' on stdout once usable."""

    def __init__(self, args: Sequence[str], log: Path,
                 env: Optional[dict] = None):
        self.args = list(args)
        self.log_path = log
        self.log = open(log, "wb")
        self.p = subprocess.Popen(self.args, stdout=subprocess.PIPE,
                                  stderr=self.log, env=env,
                                  start_new_session=True)
        self.ready_line = ""
        self._wait_ready()

    def _wait_ready(self) -> None:
        out: List[str] = []

        def read() -> None:
            assert self.p.stdout is not None
            for raw in self.p.stdout:
                line = raw.decode(errors="replace")
                if line.startswith("READY ") and not out:
                    out.append(line.strip())
            # keep draining so the child never blocks on a full pipe

        t = threading.Thread(target=read, daemon=True)
        t.start()
        self._reader = t
        end = time.monotonic() + READY_S
        while not out and time.monotonic() < end and self.p.poll() is None:
            time.sleep(0.01)
        if not out:
            self.stop()
            raise RuntimeError(f"{self.args[0]} did not get ready; log: "
                               f"{self.log_path.read_text()[-2000:]}")
        self.ready_line = out[0]

    def stop(self, sig: int = signal.SIGTERM, wait: float = 10.0) -> None:
        if self.p.poll() is None:
            try:
                self.p.send_signal(sig)
                self.p.wait(wait)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)
        if hasattr(self, "_reader"):
            self._reader.join(5)  # EOF once the child is gone
        if self.p.stdout is not None and not self.p.stdout.closed:
            self.p.stdout.close()
        self.log.close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


class Cluster:
    """A broker (ipc endpoints in a short temp dir) and some workers."""

    def __init__(self, workers: int = 2, broker_args: Sequence[str] = (),
                 worker_args: Sequence[str] = (), data: bool = True):
        self.dir = Path(tempfile.mkdtemp(prefix="dvpy-"))
        self.cep = f"ipc://{self.dir}/c"
        self.wep = f"ipc://{self.dir}/w"
        self.worker_args = list(worker_args)
        args = [BROKER, "--client", self.cep, "--worker", self.wep,
                "--heartbeat-ms", str(HEARTBEAT_MS), *broker_args]
        if data:
            args += ["--data", str(self.dir / "data")]
        self.broker = Proc(args, self.dir / "broker.log")
        self.workers: List[Proc] = []
        try:
            for _ in range(workers):
                self.add_worker()
        except BaseException:
            self.close()
            raise

    def add_worker(self, *extra: str) -> Proc:
        n = len(self.workers)
        w = Proc([WORKER, "--broker", self.wep, "--name", f"w{n}",
                  "--heartbeat-ms", str(HEARTBEAT_MS), "--blas-threads", "1",
                  *self.worker_args, *extra], self.dir / f"worker{n}.log")
        self.workers.append(w)
        return w

    def client(self, **kw) -> drover.Client:
        return drover.Client(self.cep, **kw)

    def close(self) -> None:
        for w in self.workers:
            w.stop()
        self.broker.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, DROVER_THREADS="1", SOURCE_DATE_EPOCH="1700000000")
    r = subprocess.run([DROVER, *args], capture_output=True, env=env,
                       timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"drover {' '.join(args)} failed: "
                             f"{r.stderr.decode()}")
    return r


def load_csv(name: str):
    """(X float32, y as text, header) of a bundled CSV (target last)."""
    path = DATA / name
    with open(path) as f:
        header = f.readline().strip().split(",")
    raw = np.loadtxt(path, delimiter=",", skiprows=1, dtype=str, ndmin=2)
    return raw[:, :-1].astype(np.float32), raw[:, -1], header


@pytest.fixture(scope="session")
def cluster():
    c = Cluster(workers=2)
    yield c
    c.close()


@pytest.fixture
def client(cluster):
    with cluster.client(timeout=30.0) as c:
        yield c


@pytest.fixture(scope="session")
def models(cluster, tmp_path_factory):
    """iris (softmax), digits (mlp), diabetes (ridge): trained locally with
    `drover local train`, pushed, with their `drover local predict` output
    on the test split."""
    d = tmp_path_factory.mktemp("models")
    specs = {
        "iris": ("iris", ["--algo", "softmax"]),
        "digits": ("digits", ["--algo", "mlp", "--hidden", "32",
                              "--epochs", "20"]),
        "diabetes": ("diabetes", ["--algo", "ridge"]),
    }
    out = {}
    with cluster.client() as c:
        for name, (ds, algo) in specs.items():
            path = d / f"{name}.drvm"
            run_cli("local", "train", "--data", str(DATA / f"{ds}_train.csv"),
                    "--out", str(path), "--threads", "1", *algo)
            rec = c.model_push(f"py-{name}", str(path))
            pred = run_cli("local", "predict", "--model", str(path),
                           "--data", str(DATA / f"{ds}_test.csv"),
                           "--threads", "1").stdout.decode().splitlines()
            out[name] = {"ref": f"py-{name}@{rec['version']}",
                         "path": path, "record": rec,
                         "csv": DATA / f"{ds}_test.csv",
                         "train_csv": DATA / f"{ds}_train.csv",
                         "predict": pred}
    return out
