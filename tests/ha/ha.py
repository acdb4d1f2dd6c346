"""A broker group under faults, for the tests of tests/ha (issue 18).

:class:`Group`: 3 drover-broker members (raft on 127.0.0.1 ports) and
workers given the list of worker endpoints; members are killed (SIGKILL),
stopped (SIGSTOP/SIGCONT), terminated and restarted with the same command.
:class:`History`: the JSON-lines event log the checker (checker.py) judges.
:class:`Producer`: a thread submitting echo jobs through the Python client
with the endpoint list, recording every event. :class:`Follower`: a thread
following a queue's result stream, recording what it delivers.

Binaries from DROVER_BROKER_BIN / DROVER_WORKER_BIN (as CTest sets them),
else build/dev/bin. Every process is started here and stopped by its own
PID; nothing is killed by name.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "clients" / "python"))
sys.path.insert(0, str(HERE))
sys.dont_write_bytecode = True

import msgpack  # noqa: E402
import zmq  # noqa: E402

import checker  # noqa: E402
import drover  # noqa: E402
from drover import errors  # noqa: E402


def _bin(env: str, name: str) -> str:
    p = os.environ.get(env) or str(ROOT / "build" / "dev" / "bin" / name)
    if not os.access(p, os.X_OK):
        raise RuntimeError(f"{name} not found at {p} (set {env})")
    return p


BROKER = _bin("DROVER_BROKER_BIN", "drover-broker")
WORKER = _bin("DROVER_WORKER_BIN", "drover-worker")

#: bytes of a process's stderr kept in its log
LOG_BYTES = 4 << 20
#: seconds a process may take to print READY (ASan, a loaded machine)
READY_S = 60.0
#: broker/worker heartbeat: a dead worker is noticed fast
HEARTBEAT_MS = 200
#: seconds a group may take to elect a leader (1 s election timeout; ASan
#: and 2 busy cores make it slower than the ~2 s seen in a release build)
ELECT_S = 45.0
#: seconds a (re)started member may take to catch up with the leader
CATCH_UP_S = 90.0
#: seconds one test may wait in all, from its group's start: a failing test
#: ends (and stops its processes) before CTest's TIMEOUT (300) kills it
TEST_S = float(os.environ.get("HA_TEST_S", "240"))
_deadline = [time.monotonic() + TEST_S]


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (32768 if unknown)."""
    try:
        path = Path("/proc/sys/net/ipv4/ip_local_port_range")
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_ports(n: int) -> List[int]:
    """n distinct TCP ports free on 127.0.0.1 right now, below the kernel's
    ephemeral range. bind(0) hands out ports from that range, where any
    outgoing connection (a worker's, another test's under ctest -j) may take
    one between now and the member's bind: a CI run lost ha_partition to
    "Address already in use" so. Below it only explicit binds compete."""
    high = _ephemeral_low()
    low = max(1024, high - 12000)
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    socks: List[socket.socket] = []
    out: List[int] = []
    try:
        while len(out) < n:
            port = rng.randrange(low, high)
            if port in out:
                continue
            s = socket.socket()
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            socks.append(s)
            out.append(port)
    finally:
        for s in socks:
            s.close()
    return out


def wait_for(what: str, cond: Callable[[], Any], timeout: float,
             every: float = 0.1) -> Any:
    """cond() until it is truthy (returned) or timeout seconds passed, or
    the test's time is up (AssertionError naming what was awaited)."""
    end = min(time.monotonic() + timeout, _deadline[0])
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError(f"timed out ({timeout} s) waiting for "
                                 f"{what}")
        time.sleep(every)


class Proc:
    """A child that prints 'READY ...' once usable; its stderr goes to log
    (appended across restarts)."""

    def __init__(self, args: Sequence[str], log: Path) -> None:
        self.args = list(args)
        self.log_path = log
        self.p: Optional[subprocess.Popen] = None
        self.stopped = False  # SIGSTOPped by us
        self.start()

    def start(self) -> None:
        self.p = subprocess.Popen(self.args, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE,
                                  start_new_session=True)
        threading.Thread(target=self._log, args=(self.p,),
                         daemon=True).start()
        self.stopped = False
        got: List[str] = []

        def read(p: subprocess.Popen) -> None:
            assert p.stdout is not None
            for raw in p.stdout:  # drained to EOF: never a full pipe
                if raw.startswith(b"READY ") and not got:
                    got.append(raw.decode().strip())
        threading.Thread(target=read, args=(self.p,), daemon=True).start()
        end = time.monotonic() + READY_S
        while not got and time.monotonic() < end and self.alive():
            time.sleep(0.02)
        if not got:
            self.send(signal.SIGKILL)
            self.wait(10)
            raise RuntimeError(f"{self.args[0]} did not get ready; log: "
                               f"{self.tail()}")

    def _log(self, p: subprocess.Popen) -> None:
        """stderr into the log, up to LOG_BYTES (a process logging in a
        loop must not fill the disk); the rest is drained and counted."""
        assert p.stderr is not None
        dropped = 0
        with open(self.log_path, "ab") as log:
            for line in p.stderr:
                if log.tell() < LOG_BYTES:
                    log.write(line)
                    log.flush()
                else:
                    dropped += len(line)
            if dropped:
                log.write(f"[ha.py: {dropped} more bytes of log dropped]\n"
                          .encode())

    @property
    def pid(self) -> int:
        assert self.p is not None
        return self.p.pid

    def alive(self) -> bool:
        return self.p is not None and self.p.poll() is None

    def send(self, sig: int) -> None:
        if self.alive():
            assert self.p is not None
            self.p.send_signal(sig)

    def wait(self, timeout: float) -> Optional[int]:
        assert self.p is not None
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig: int = signal.SIGTERM, wait: float = 20.0
             ) -> Optional[int]:
        """Signal it (SIGCONT first if we stopped it) and reap it; SIGKILL
        after wait seconds. Returns its exit status."""
        if self.alive():
            self.send(sig)
            if self.stopped:
                self.send(signal.SIGCONT)
            if self.wait(wait) is None:
                self.send(signal.SIGKILL)
                self.wait(10)
        self.stopped = False
        return self.p.returncode if self.p else None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def pause(self) -> None:
        self.send(signal.SIGSTOP)
        self.stopped = True

    def resume(self) -> None:
        self.send(signal.SIGCONT)
        self.stopped = False

    def tail(self, n: int = 3000) -> str:
        """The log's start and end (n characters in all)."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        if len(text) <= n:
            return text
        return f"{text[:n // 2]}\n[...]\n{text[-n // 2:]}"


def raw_request(endpoint: str, t: str, timeout: float = 2.0,
                **fields: Any) -> Optional[Dict[str, Any]]:
    """One request to one member, no hello (followers answer ``cluster``
    and ``ping``): the reply header, or None when none came in time."""
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    try:
        s.connect(endpoint)
        h = {"v": [1, 6], "t": t, "rid": 1, **fields}
        s.send(msgpack.packb(h, use_bin_type=True))
        if not s.poll(int(timeout * 1000)):
            return None
        return msgpack.unpackb(s.recv_multipart()[0], raw=False)
    finally:
        s.close(0)


class Member:
    """One broker of the group: its command never changes."""

    def __init__(self, group: "Group", mid: int, client_port: int,
                 worker_port: int, raft_port: int, peers: str) -> None:
        self.id = mid
        self.cep = f"tcp://127.0.0.1:{client_port}"
        self.wep = f"tcp://127.0.0.1:{worker_port}"
        self.raft = f"127.0.0.1:{raft_port}"
        self.data = group.dir / f"m{mid}"
        self.args = [BROKER, "--data", str(self.data), "--client", self.cep,
                     "--worker", self.wep, "--heartbeat-ms",
                     str(HEARTBEAT_MS), "--raft-id", str(mid), "--raft",
                     self.raft, "--raft-peers", peers]
        self.log = group.dir / f"m{mid}.log"
        self.proc: Optional[Proc] = None

    def start(self) -> None:
        if self.proc is None:
            self.proc = Proc(self.args, self.log)
        else:
            self.proc.start()

    def applied(self) -> int:
        """The index this member has applied (0 while it does not
        answer); AssertionError, with its log, once its process is gone
        (a member must never stop by itself)."""
        if self.proc is not None and not self.proc.alive():
            raise AssertionError(f"member {self.id} exited (status "
                                 f"{self.proc.wait(0)}): {self.proc.tail()}")
        return (self.cluster() or {}).get("applied", 0)

    def cluster(self, timeout: float = 2.0) -> Optional[Dict[str, Any]]:
        """This member's view of the group, None if it does not answer."""
        if self.proc is None or not self.proc.alive() or self.proc.stopped:
            return None
        h = raw_request(self.cep, "cluster", timeout)
        return h if h and h.get("t") == "cluster" else None


class Group:
    """3 members and some workers on 127.0.0.1, in a temp dir."""

    def __init__(self, workers: int = 2, members: int = 3) -> None:
        _deadline[0] = time.monotonic() + TEST_S
        self.dir = Path(tempfile.mkdtemp(prefix="dvha-"))
        ports = free_ports(3 * members)
        peers = ",".join(f"{i + 1}=127.0.0.1:{ports[3 * i + 2]}"
                         for i in range(members))
        self.members = [Member(self, i + 1, *ports[3 * i:3 * i + 3],
                               peers=peers) for i in range(members)]
        self.workers: List[Proc] = []
        self.kills = 0
        try:
            for m in self.members:
                m.start()
            self.leader()
            for i in range(workers):
                self.workers.append(Proc(
                    [WORKER, "--broker", self.wendpoints, "--name", f"w{i}",
                     "--heartbeat-ms", str(HEARTBEAT_MS), "--blas-threads",
                     "1"], self.dir / f"w{i}.log"))
        except BaseException:
            self.close(keep=True)
            raise

    @property
    def endpoints(self) -> str:
        """The client endpoint list."""
        return ",".join(m.cep for m in self.members)

    @property
    def wendpoints(self) -> str:
        return ",".join(m.wep for m in self.members)

    def client(self, **kw: Any) -> drover.Client:
        kw.setdefault("timeout", 60)
        kw.setdefault("connect_timeout", 60)
        return drover.Client(self.endpoints, **kw)

    def member(self, mid: int) -> Member:
        return self.members[mid - 1]

    def leader(self, timeout: float = ELECT_S,
               among: Optional[Sequence[Member]] = None) -> Member:
        """The member serving as leader, once one running member says it
        leads and every other answering member agrees."""
        pool = list(among or self.members)

        def find() -> Optional[Member]:
            views = {m.id: m.cluster() for m in pool}
            leads = [i for i, v in views.items()
                     if v and v.get("leader") == i and v.get("self") == i]
            if len(leads) != 1:
                return None
            if any(v and v.get("leader") not in (leads[0], 0)
                   for v in views.values()):
                return None
            return self.member(leads[0])
        return wait_for("a leader", find, timeout, 0.2)

    def caught_up(self, timeout: float = CATCH_UP_S) -> Dict[str, Any]:
        """Wait until every running member has applied what the leader
        had committed when asked; returns the leader's view."""
        lead = self.leader()
        view = wait_for("the leader's view", lead.cluster, 10)
        want = view["commit"]
        for m in self.members:
            if m.proc and m.proc.alive() and not m.proc.stopped:
                wait_for(f"member {m.id} to apply index {want}",
                         lambda: m.applied() >= want, timeout, 0.2)
        return view

    def kill_leader(self, history: Optional["History"] = None) -> Member:
        """kill -9 the leader; wait for the others to elect a new one;
        restart the killed member with its same command."""
        old = self.leader()
        assert old.proc is not None
        if history:
            history.mark(f"kill -9 leader {old.id}")
        old.proc.kill()
        self.kills += 1
        rest = [m for m in self.members if m is not old]
        new = self.leader(among=rest)
        if history:
            history.mark(f"member {new.id} leads")
        old.start()
        return new

    def close(self, keep: bool = False) -> None:
        for w in self.workers:
            w.stop()
        for m in self.members:
            if m.proc:
                m.proc.stop()
        if keep:
            print(f"group's logs, data and history kept in {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def unstored_sends(self) -> List[str]:
        """Log lines where a member says it sent results that were not
        committed (a group acknowledges only what a majority stored)."""
        out = []
        for m in self.members:
            try:
                with open(m.log, errors="replace") as f:
                    out += [f"member {m.id}: {line.strip()}" for line in f
                            if "sent although not stored" in line]
            except OSError:
                pass
        return out

    def logs(self) -> str:
        out = []
        for m in self.members:
            if m.proc:
                out.append(f"--- member {m.id} ({m.log}):\n{m.proc.tail()}")
        return "\n".join(out)


class History:
    """The event log: one JSON object a line, written as events happen
    (thread-safe). Path: DIR/history.jsonl."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f = open(path, "w", encoding="utf-8")
        self._lock = threading.Lock()
        self.acked: Dict[str, int] = {}     # key -> job
        self.payloads: Dict[str, str] = {}  # key -> hex payload
        self.acks_seen = 0

    def add(self, ev: str, **fields: Any) -> None:
        rec = {"ev": ev, "t": round(time.monotonic(), 4), **fields}
        with self._lock:
            if ev == "ack":
                self.acked.setdefault(fields["key"], fields["job"])
                self.acks_seen += 1
            elif ev == "submit":
                self.payloads[fields["key"]] = fields["payload"]
            self._f.write(json.dumps(rec) + "\n")
            self._f.flush()

    def mark(self, text: str) -> None:
        self.add("mark", text=text)

    def n_acked(self) -> int:
        with self._lock:
            return len(self.acked)

    def acked_jobs(self) -> Dict[str, int]:
        with self._lock:
            return dict(self.acked)

    def close(self) -> None:
        with self._lock:
            self._f.close()

    def verdict(self) -> checker.Verdict:
        self.close()
        return checker.check(checker.load(str(self.path)))


class Producer(threading.Thread):
    """Submits echo jobs in windows of `window` through its own client
    (the endpoint list), each with its own idempotency key and a unique
    payload, and records submit / ack / fail / outcome / lost events."""

    def __init__(self, group: Group, history: History, name: str,
                 queue: str, window: int = 8, limit: int = 0,
                 timeout: float = 60.0) -> None:
        super().__init__(name=name, daemon=True)
        self.group, self.history = group, history
        self.queue, self.window, self.limit = queue, window, limit
        self.timeout = timeout
        self.halt = threading.Event()
        self.n = 0
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        h = self.history
        try:
            with self.group.client(timeout=self.timeout) as c:
                while not self.halt.is_set() and (not self.limit
                                                  or self.n < self.limit):
                    batch = []
                    for _ in range(self.window):
                        key = f"{self.name}-{self.n}"
                        payload = f"{key}:{os.urandom(6).hex()}".encode()
                        self.n += 1
                        h.add("submit", key=key, payload=payload.hex())
                        try:
                            job = c.submit_echo(payload, queue=self.queue,
                                                idempotency_key=key)
                        except errors.DroverError as e:
                            h.add("fail", key=key, error=repr(e))
                            continue
                        batch.append((key, job))
                    done = []
                    for key, job in batch:
                        try:
                            jid = job.id
                        except errors.DroverError as e:
                            h.add("fail", key=key, error=repr(e))
                            continue
                        h.add("ack", key=key, job=jid, dup=job.duplicate)
                        done.append((key, jid, job))
                    for key, jid, job in done:
                        try:
                            r = job.result(self.timeout)
                        except errors.DroverError as e:
                            h.add("lost", key=key, job=jid, error=repr(e))
                            continue
                        h.add("outcome", job=jid, state=r.state,
                              payload=bytes(r.payload).hex(),
                              attempts=r.attempts, src="push")
        except BaseException as e:  # reported by the test
            self.error = e


class Follower(threading.Thread):
    """Follows a queue's result stream as one consumer through the
    endpoint list, acking what it got; records each delivery as an
    outcome (src "stream")."""

    def __init__(self, group: Group, history: History, queue: str,
                 consumer: str = "ha-cons") -> None:
        super().__init__(name="follower", daemon=True)
        self.group, self.history = group, history
        self.queue, self.consumer = queue, consumer
        self.halt = threading.Event()
        self.seen: Dict[int, str] = {}
        self.lock = threading.Lock()
        self.error: Optional[BaseException] = None

    def run(self) -> None:
        try:
            with self.group.client() as c:
                stream = c.follow(self.queue, self.consumer,
                                  start="earliest")
                while not self.halt.is_set():
                    r = stream.get(0.5)
                    if r is None:
                        continue
                    p = bytes(r.payload).hex()
                    self.history.add("outcome", job=r.job, state=r.state,
                                     payload=p, attempts=r.attempts,
                                     src="stream")
                    with self.lock:
                        self.seen[r.job] = p
                    stream.ack(r)
        except BaseException as e:
            self.error = e

    def has(self, jobs: Sequence[int]) -> bool:
        with self.lock:
            return all(j in self.seen for j in jobs)


def sweep(group: Group, history: History, timeout: float = 90.0,
          src: str = "final") -> None:
    """Every acknowledged job's result, fetched by id from the group's
    leader now (result_get, waiting while unfinished): outcome events with
    src "final". AssertionError naming the jobs without one."""
    missing = []
    with group.client() as c:
        for key, jid in sorted(history.acked_jobs().items(),
                               key=lambda kv: kv[1]):
            try:
                r = c.wait_result(jid, timeout=timeout)
            except errors.DroverError as e:
                history.add("note", text=f"{src}: job {jid} ({key}): "
                            f"{e!r}")
                missing.append(f"{jid}: {e!r}")
                continue
            history.add("outcome", job=jid, state=r.state,
                        payload=bytes(r.payload).hex(),
                        attempts=r.attempts, src=src)
    assert not missing, f"{len(missing)} acknowledged jobs without a " \
        f"result on the leader: {missing[:5]}"


def judge(group: Group, history: History) -> checker.Verdict:
    """The checker's verdict on the history, printed (the test keeps the
    group's folder, history.jsonl included, when it fails)."""
    v = history.verdict()
    print(v.text())
    return v
