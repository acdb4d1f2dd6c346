"""Helpers for test_export.py: where the binaries and data are, running the
`drover` CLI, and a real local cluster (`drover up`) on an ipc endpoint.

Binaries come from DROVER_BIN, DROVER_BROKER_BIN and DROVER_WORKER_BIN (CTest
sets them), else build/release/bin/ under the repository root; data from
DV_DATA_DIR, else data/ under the root -- as the C suite does.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parents[3]

# `drover up` prints READY once the workers are connected; ASan builds
# under a loaded CTest start slowly.
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0
CLI_TIMEOUT_S = 120.0


def binary(env: str, name: str) -> Path:
    value = os.environ.get(env)
    return Path(value) if value else ROOT / "build" / "release" / "bin" / name


def data_dir() -> Path:
    value = os.environ.get("DV_DATA_DIR")
    return Path(value) if value else ROOT / "data"


def missing_binaries() -> Optional[str]:
    """None when the three binaries exist, else why not (a skip reason)."""
    for env, name in (("DROVER_BIN", "drover"),
                      ("DROVER_BROKER_BIN", "drover-broker"),
                      ("DROVER_WORKER_BIN", "drover-worker")):
        path = binary(env, name)
        if not os.access(path, os.X_OK):
            return f"{name} not found at {path} (set {env} or build it)"
    return None


def child_env() -> dict:
    """The environment for drover processes: the binaries' paths pinned,
    no DROVER_BROKER from the caller (every call names --broker)."""
    env = dict(os.environ)
    env["DROVER_BROKER_BIN"] = str(binary("DROVER_BROKER_BIN",
                                          "drover-broker"))
    env["DROVER_WORKER_BIN"] = str(binary("DROVER_WORKER_BIN",
                                          "drover-worker"))
    env.pop("DROVER_BROKER", None)
    return env


def drover(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI; raise with its stderr when it fails."""
    cmd = [str(binary("DROVER_BIN", "drover")), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=child_env(),
                       timeout=CLI_TIMEOUT_S)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {r.returncode}:\n"
                             f"{r.stderr}{r.stdout}")
    return r


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except OSError:
        pass


class Cluster:
    """`drover up --workers 1` on ipc://DIR/c.sock with its registry in
    DIR/data; stop() drains and stops it (SIGTERM, then SIGKILL)."""

    def __init__(self) -> None:
        # Short path: an ipc endpoint must fit a sockaddr_un (108 bytes).
        self.dir = Path(tempfile.mkdtemp(prefix="dvx-"))
        self.endpoint = f"ipc://{self.dir}/c.sock"
        self.log = self.dir / "up.log"
        self.proc: Optional[subprocess.Popen] = None
        self.drain: Optional[threading.Thread] = None

    def start(self) -> None:
        cmd = [str(binary("DROVER_BIN", "drover")), "up", "--workers", "1",
               "--endpoint", self.endpoint, "--data", str(self.dir / "data")]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                         stderr=log, env=child_env())
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + READY_TIMEOUT_S
        seen = b""
        while True:
            lines = seen.split(b"\n")[:-1]  # complete lines only
            ready_line = next((x for x in lines if x.startswith(b"READY ")),
                              None)
            if ready_line is not None:
                break
            left = deadline - time.monotonic()
            if left <= 0:
                log_text = self.log.read_text()
                self.stop()
                raise AssertionError(f"drover up: no READY line in "
                                     f"{READY_TIMEOUT_S:.0f} s; log:\n{log_text}")
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    log_text = self.log.read_text()
                    self.stop()
                    raise AssertionError(f"drover up exited before READY; "
                                         f"log:\n{log_text}")
                seen += chunk
        # Keep draining its stdout so it never blocks on a full pipe.
        self.drain = threading.Thread(target=_drain, args=(fd,), daemon=True)
        self.drain.start()
        # "READY <client endpoint> <worker endpoint>"
        if ready_line.split()[1].decode() != self.endpoint:
            self.stop()
            raise AssertionError(f"drover up: unexpected {ready_line!r}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.drain is not None:
            self.drain.join(5.0)  # EOF once drover up has exited
        if proc is not None and proc.stdout is not None:
            proc.stdout.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return drover(*args, "--broker", self.endpoint)
