"""The blocking Drover client: :class:`Client`, :class:`Job`, :class:`Stream`.

Thread safety: a :class:`Client` is **not** thread-safe. Use one client per
thread (each is one ZeroMQ socket; they are cheap), or guard a shared one
with your own lock around every call *and* every :class:`Job` /
:class:`Stream` method (they drive their client's socket). A client used
from a thread other than the one that made it raises ``RuntimeError``;
:meth:`Client.rebind` hands it over deliberately.

Arrays: inputs go out without a copy when they already are C-contiguous
little-endian float32 (``copy=False`` in pyzmq). pyzmq then sends straight
from the array's memory, so the array must not be modified until the
message has left; the blocking calls (:meth:`Client.infer`,
:meth:`Client.predict`) return only after every request was answered, so
this holds by itself. With :meth:`Client.submit_infer` /
:meth:`Client.submit_many`, do not modify the array until the returned
:class:`Job` is accepted (``job.id`` returns) or done. The client never
writes to a caller's array: any conversion (dtype, order, 1-D -> 2-D)
makes a new one. Outputs come back as read-only numpy views of the
received frames (``np.frombuffer``); ``.copy()`` them to write.
"""

from __future__ import annotations

import threading
import time
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence,
                    Tuple, Union)

import numpy as np
import zmq

from . import _proto as P
from . import errors
from ._api import Pages, _Api, drive
from ._proto import Prediction, Progress, Result
from ._version import __version__

Payload = Union[bytes, bytearray, memoryview]
FINISHED_STATES = P.FINISHED_STATES

def _refused(endpoint: str, key_id: str, status: int) -> errors.DroverError:
    """The error for a handshake the broker's ZAP handler refused. Without a
    key (plain mode) nobody is authenticated: only the connection limits
    refuse."""
    if not key_id:
        return errors.Limit(
            f"the broker at {endpoint} refused the connection (ZAP status "
            f"{status}): it holds as many connections as its "
            "--max-connections allows; its log says which")
    return errors.Perm(
        f"the broker at {endpoint} refused key '{key_id}' (ZAP status "
        f"{status}): it is not among the broker's authorized keys, was "
        "revoked, lacks a role for this socket, or has reached the "
        "connection limits (its audit log says which)")


_MONITOR_EVENTS = (zmq.EVENT_HANDSHAKE_FAILED_AUTH
                   | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                   | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL)
#: what a client following a broker group watches on its connection: a
#: member gone (kill -9 closes the TCP connection at once), one that
#: cannot be reached, a refused handshake
_GROUP_EVENTS = (_MONITOR_EVENTS | zmq.EVENT_DISCONNECTED
                 | zmq.EVENT_CONNECT_RETRIED)
#: bytes of inputs one submit_many message carries at most
MANY_BYTES = 64 << 20


def _dealer(ctx: zmq.Context) -> zmq.Socket:
    """A DEALER socket as both clients use it: no high-water marks (the
    client bounds what is in flight) and frames up to the protocol's
    limit."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 200)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.MAXMSGSIZE, P.MAX_FRAME_BYTES)
    return sock


def _use_keys(sock: zmq.Socket, key: Optional[str],
              broker_key: Optional[str]) -> Optional[str]:
    """CURVE on sock with our key file and the broker's public key (none
    when neither is given). Returns our key id (None without keys)."""
    if not key and not broker_key:
        return None
    if not key or not broker_key:
        raise errors.Invalid("CURVE needs both keys: key= (ours, .key) "
                             "and broker_key= (the broker's .pub); or "
                             "DROVER_KEY and DROVER_BROKER_KEY")
    kp = P.load_key(key)
    if kp.secret is None:
        raise errors.Invalid(f"{key} holds no secret key: give the .key "
                             "file, not the .pub")
    sock.curve_serverkey = P.broker_public_key(broker_key)
    sock.curve_publickey = kp.public
    sock.curve_secretkey = kp.secret
    return kp.id


def _connect(sock: zmq.Socket, endpoint: str) -> None:
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as e:
        raise errors.Invalid(f"cannot connect to {endpoint}: {e}") from None


def _no_broker(endpoint: str, timeout: Optional[float]) -> errors.Timeout:
    """The error of a ``hello`` nobody answered."""
    return errors.Timeout(f"no broker answered at {endpoint} within "
                          f"{timeout} s (is one running? `drover up` "
                          "starts one)")


def _group_events(mon: Optional[zmq.Socket]) -> List[str]:
    """The monitor events waiting on mon (a plain socket), as _Core wants
    them: "handshake" or "dropped"."""
    out: List[str] = []
    if mon is None:
        return out
    from zmq.utils.monitor import parse_monitor_message
    while True:
        try:
            ev = parse_monitor_message(mon.recv_multipart(zmq.NOBLOCK))
        except zmq.Again:
            return out
        except zmq.ZMQError:
            return out
        out.append("handshake" if ev["event"] & _MONITOR_EVENTS
                   else "dropped")


def _recv(sock: zmq.Socket, flags: int = 0) -> List[zmq.Frame]:
    """One multipart message as zmq Frames (no copies; about twice as fast
    as recv_multipart(copy=False) for small messages)."""
    recv = sock.recv
    f = recv(flags, copy=False)
    parts = [f]
    while f.more:
        f = recv(0, copy=False)
        parts.append(f)
    return parts


class Job(P._JobBase):
    """A submitted job, future-like.

    ``id`` waits (up to the client's timeout) for the broker to accept it
    and returns the job id (raising the refusal's error); ``done()`` says
    whether its result is in; ``result(timeout)`` waits for it and returns
    the :class:`Result` or raises the job's error (:class:`errors.Canceled`,
    :class:`errors.NaN`, ...); ``cancel()`` cancels it on the broker.
    ``progress`` is the last training progress report; the ``on_progress``
    callback given at submit runs for each one, on the thread waiting.
    """

    def __repr__(self) -> str:
        st = "done" if self._s.finished else (
            "accepted" if self._s.accepted else "pending")
        return f"<drover.Job {self.kind} id={self._s.id} {st}>"

    @property
    def id(self) -> int:
        s = self._s
        if not s.accepted and not s.finished:
            self._c._pump(lambda: s.accepted or s.finished, self._c.timeout)
        if s.id is None:
            raise s.exc if s.exc else errors.Format("no job id")
        return s.id

    def done(self) -> bool:
        """True when the result (or a refusal) is in; reads what is waiting."""
        s = self._s
        if not s.finished:
            self._c._drain()
        if s.fetch_by_id:
            return self._dup_result(0) is not None
        return s.finished

    def _dup_result(self, timeout: Optional[float]) -> Optional[Result]:
        s = self._s
        if s.res is None:
            try:
                s.res = self._c.wait_result(s.id, timeout=timeout)
            except errors.Timeout:
                return None
        return s.res

    def result(self, timeout: Optional[float] = None) -> Result:
        """Wait (timeout seconds; None: as long as it takes) for the result.

        Raises the job's error for a failed job or a refused submit, and
        :class:`errors.Timeout` when nothing came in time.
        """
        s = self._s
        if not s.finished:
            self._c._pump(lambda: s.finished, timeout)
        if s.exc is not None:
            raise s.exc
        if s.fetch_by_id:
            res = self._dup_result(timeout)
            if res is None:
                raise errors.Timeout(f"job {s.id}: no result in time")
        assert s.res is not None
        return s.res.raise_for_error()

    def exception(self, timeout: Optional[float] = None
                  ) -> Optional[BaseException]:
        """The job's error (None when it succeeded), waiting as result();
        :class:`errors.Timeout` is raised, not returned, when the job is
        still unfinished at the timeout."""
        try:
            self.result(timeout)
        except errors.Timeout as e:
            if not self._s.finished:
                raise
            return e
        except errors.DroverError as e:
            return e
        return None

    def cancel(self) -> bool:
        """Cancel the job on the broker: True when it was queued or running
        (its result then fails with :class:`errors.Canceled`), False when it
        had already finished."""
        if self._s.finished:
            return False
        try:
            self._c.cancel(self.id)
        except errors.NoEntry:
            return False
        return True


class Stream(P._StreamBase):
    """A queue's result stream as one consumer (:meth:`Client.follow`).

    Iterate it for :class:`Result` objects (each with ``seq``), blocking
    until the next one comes; ``get(timeout)`` returns one or None. Call
    ``ack(seq_or_result)`` once handled: the broker keeps sending at most
    ``window`` results past the last ack, and a later ``follow`` of the
    same consumer (from any client) resumes after the acked position.
    """

    def __iter__(self) -> Iterator[Result]:
        while True:
            r = self.get(None)
            if r is None:
                return
            yield r

    def get(self, timeout: Optional[float] = None) -> Optional[Result]:
        """The next result (waiting up to timeout seconds; None: forever),
        or None when nothing came in time or the stream was closed."""
        s = self._s
        if not s.results and not s.closed and s.exc is None:
            try:
                self._c._pump(lambda: bool(s.results) or s.exc is not None,
                              timeout)
            except errors.Timeout:
                return None
        return self._take()

    def ack(self, seq: Union[int, Result, None] = None, *,
            wait: bool = False) -> Optional[int]:
        """Acknowledge every result up to seq (default: the last one
        handed out). With wait, waits for the broker's ``ok`` and returns
        the stored position; else sends and returns None (a refused ack
        shows in ``client.unsolicited_errors``)."""
        f = P.ack_fields(self.queue, self.consumer, seq, self.last_seq)
        if not wait:
            self._c._send_ack(f)
            return None
        return self._c._call("ack", f, ("ok",)).get("acked")

    def close(self) -> Optional[int]:
        """Unfollow (the stored position stays); returns the acked seq."""
        if self._s.closed:
            return None
        self._s.closed = True
        self._c._pending.pop(self._rid, None)
        try:
            return self._c._call("unfollow", {"queue": self.queue,
                                              "consumer": self.consumer},
                                 ("ok",)).get("acked")
        except errors.DroverError:
            return None

    def __enter__(self) -> "Stream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Client(P._Core, _Api):
    """A connection to a Drover broker (ZeroMQ DEALER, protocol 1.8).

    ``endpoint``: default ``$DROVER_BROKER``, else tcp://127.0.0.1:7470.
    A comma-separated list (``tcp://a:7470,tcp://b:7470,tcp://c:7470``)
    names the members of a broker group (1.6): the client talks to the
    leader, follows DV_ENOTLEADER's hint, moves on through the list when
    its member dies or goes silent, resends what is safe to resend (reads,
    submits: each gets an automatic idempotency key) and waits for
    accepted jobs by id; a write whose answer never came raises
    :class:`errors.LeaderChanged`. ``endpoint`` is the member in use.
    ``key``/``broker_key``: CURVE, as libdrover: our key file (``.key``,
    from ``drover keygen``) and the broker's public key (a ``.pub`` file or
    a 40-character Z85 string); default ``$DROVER_KEY`` /
    ``$DROVER_BROKER_KEY``. ``timeout``: seconds every request/reply call
    waits (each call may override it); ``connect_timeout``: for the
    ``hello`` sent on connecting (a refused CURVE key raises
    :class:`errors.Perm` at once).

    Lists (:meth:`models`, :meth:`datasets`, :meth:`workers`,
    :meth:`jobs`, :meth:`dead_list`) come in pages from a 1.7 broker (a
    reply header holds 64 KiB) and are returned whole: the client asks for
    page after page, each one request with its own timeout.

    Not thread-safe: one client per thread (see the module docstring).
    """

    def __init__(self, endpoint: Optional[str] = None, *,
                 key: Optional[str] = None, broker_key: Optional[str] = None,
                 timeout: Optional[float] = 30.0,
                 connect_timeout: Optional[float] = 5.0,
                 name: Optional[str] = None,
                 context: Optional[zmq.Context] = None) -> None:
        self._core_init(endpoint, name or f"drover-python {__version__}")
        self.timeout = timeout
        self._owner = threading.get_ident()
        self._sock: Optional[zmq.Socket] = None
        self._mon: Optional[zmq.Socket] = None
        self._monitor: Optional[zmq.Socket] = None
        self._ctx = context or zmq.Context.instance()
        key = key or P.os.environ.get("DROVER_KEY") or None
        broker_key = broker_key or P.os.environ.get("DROVER_BROKER_KEY") or None
        self._key, self._broker_key = key, broker_key
        self.key_id: Optional[str] = None
        if self._multi:
            self._connect_group(connect_timeout)
            return
        sock = _dealer(self._ctx)
        self._sock = sock
        monitor = None
        try:
            self.key_id = _use_keys(sock, key, broker_key)
            monitor = sock.get_monitor_socket(_MONITOR_EVENTS)
            self._monitor = monitor
            _connect(sock, self.endpoint)
            try:
                w = self._call("hello", {"client": name or
                                         f"drover-python {__version__}"},
                               ("welcome",), timeout=connect_timeout)
            except errors.Timeout:
                raise _no_broker(self.endpoint, connect_timeout) from None
            self._welcome(w)
        except BaseException:
            self._monitor = None
            if monitor is not None:
                sock.disable_monitor()
                monitor.close(0)
            sock.close(0)
            self._sock = None
            raise
        self._monitor = None
        sock.disable_monitor()
        monitor.close(0)

    # ------------------------------------------------------ connection

    def _connect_group(self, connect_timeout: Optional[float]) -> None:
        """Reach the leader of the group the endpoint list names."""
        try:
            self._start_group()
            self._pump(lambda: self._phase == "up", connect_timeout)
        except errors.Timeout:
            self.close()
            if self._group_error is not None:
                raise self._group_error from None
            raise errors.Timeout(
                f"no leader of the broker group {','.join(self.endpoints)} "
                f"answered within {connect_timeout} s (are they running? "
                "an election going on?)") from None
        except BaseException:
            self.close()
            raise

    def _io_open(self, endpoint: str) -> None:
        self._close_sock(0)
        sock = _dealer(self._ctx)
        try:
            self.key_id = _use_keys(sock, self._key, self._broker_key)
            self._mon = sock.get_monitor_socket(_GROUP_EVENTS)
            _connect(sock, endpoint)
        except BaseException:
            self._sock = sock
            self._close_sock(0)
            raise
        self._sock = sock

    def _io_send(self, h: Dict[str, Any], frames: Sequence[Any] = ()
                 ) -> None:
        assert self._sock is not None
        if frames:
            self._sock.send_multipart([P.pack(h), *frames], copy=False)
        else:
            self._sock.send(P.pack(h))

    def _io_events(self) -> List[str]:
        return _group_events(self._mon)

    def _close_sock(self, linger: int) -> None:
        if self._mon is not None and self._sock is not None:
            try:
                self._sock.disable_monitor()
            except zmq.ZMQError:
                pass
        if self._mon is not None:
            self._mon.close(0)
            self._mon = None
        if self._sock is not None:
            self._sock.close(linger)
            self._sock = None

    def _check_monitor(self) -> None:
        mon = getattr(self, "_monitor", None)
        if mon is None or not mon.poll(0):
            return
        from zmq.utils.monitor import recv_monitor_message
        ev = recv_monitor_message(mon)
        if ev["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            raise _refused(self.endpoint, self.key_id, ev["value"])
        if self.key_id:
            raise errors.Perm(f"CURVE handshake with {self.endpoint} "
                              "failed: is broker_key the broker's public "
                              "key, and does it run with --secret-key?")
        raise errors.Perm(f"the broker at {self.endpoint} refused a plain "
                          "connection: it requires CURVE (key=, broker_key=)")

    def close(self) -> None:
        """Close the socket (pending jobs are abandoned; their results stay
        on the broker for ``result_get``)."""
        self._close_sock(200)
        self._pending.clear()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self._close_sock(0)
        except Exception:
            pass

    def rebind(self) -> None:
        """Make the calling thread this client's owner (hand-over)."""
        self._owner = threading.get_ident()

    @property
    def pending(self) -> int:
        """Requests and jobs still waiting for an answer."""
        return self._waiting()

    # ----------------------------------------------------------- I/O

    def _sock_or_raise(self) -> zmq.Socket:
        if self._sock is None:
            raise errors.Invalid("client closed")
        if threading.get_ident() != self._owner:
            raise RuntimeError("drover.Client is not thread-safe: use one "
                               "client per thread (or rebind())")
        return self._sock

    def _send(self, h: Dict[str, Any], frames: Sequence[Any] = ()) -> None:
        s = self._sock_or_raise()
        if frames:
            s.send_multipart([P.pack(h), *frames], copy=False)
        else:
            s.send(P.pack(h))

    def _drain(self) -> None:
        """Dispatch every message already waiting."""
        s = self._sock_or_raise()
        while True:
            try:
                msg = _recv(s, zmq.NOBLOCK)
            except zmq.Again:
                return
            self._dispatch(msg)

    def _pump(self, done: Callable[[], bool], timeout: Optional[float]
              ) -> None:
        """Receive and dispatch until done() or timeout (None: forever);
        raises errors.Timeout."""
        s = self._sock_or_raise()
        deadline = None if timeout is None else time.monotonic() + timeout
        dispatch = self._dispatch
        multi = self._multi
        while not done():
            try:
                msg = _recv(s, zmq.NOBLOCK)
            except zmq.Again:
                if multi:
                    self._tick()
                    s = self._sock_or_raise()
                    if done():
                        return
                elif self._monitor is not None:
                    self._check_monitor()
                if deadline is None:
                    wait = 1000 if self._monitor is None else 50
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise errors.Timeout(
                            f"no answer from the broker at {self.endpoint} "
                            f"within {timeout} s") from None
                    wait = int(left * 1000) + 1
                    if self._monitor is not None:
                        wait = min(wait, 50)
                if multi:
                    wait = min(wait, 20 if self._move_to else 50)
                s.poll(wait)
                continue
            dispatch(msg)
            if multi:
                self._last_rx = time.monotonic()

    def _call(self, t: str, fields: Dict[str, Any],
              want: Tuple[str, ...], frames: Sequence[Any] = (),
              timeout: Any = "default") -> Dict[str, Any]:
        rep = self._call_frames(t, fields, want, frames, timeout)
        return rep[0]

    def _call_frames(self, t: str, fields: Dict[str, Any],
                     want: Tuple[str, ...], frames: Sequence[Any] = (),
                     timeout: Any = "default"
                     ) -> Tuple[Dict[str, Any], List[Any]]:
        req, rid, timeout = self._request(want, timeout)
        try:
            if not self._hold(req, t, fields, frames):
                self._send(P.header(t, rid, **fields), frames)
            self._pump(lambda: req.finished, timeout)
        finally:
            self._pending.pop(rid, None)
        return req.outcome()

    def _then(self, r: Any, fn: Callable[[Any], Any]) -> Any:
        return fn(r)

    def _drive(self, gen: Pages) -> Any:
        """Send a list's requests (_api._pages), one page after another."""
        return drive(gen, self._call)

    def _send_ack(self, f: Dict[str, Any]) -> None:
        """A stream ack, not answered (lost while the group has no leader
        for us: the broker then resends from the last ack it stored)."""
        if not self._multi or self._phase == "up":
            self._send(P.header("ack", 0, **f))

    def ping(self, timeout: Any = "default") -> float:
        """Round trip to the broker in seconds."""
        t0 = time.monotonic()
        self._call("ping", {}, ("pong",), timeout=timeout)
        return time.monotonic() - t0

    # ------------------------------------------------------- submits

    def _submit(self, fields: Dict[str, Any], frames: Sequence[Any],
                on_progress: Optional[Callable[[Progress], Any]] = None
                ) -> Job:
        st = P._JobState(on_progress)
        rid = self._open(st)
        try:
            if self._multi:
                self._keyed(fields)
            if not self._hold(st, "submit", fields, frames):
                self._send(P.header("submit", rid, **fields), frames)
        except BaseException:
            self._pending.pop(rid, None)
            raise
        return Job(self, st, fields["kind"])

    def submit(self, kind: str, payload: Payload = b"", *,
               queue: Optional[str] = None,
               on_progress: Optional[Callable[[Progress], Any]] = None,
               fields: Optional[Dict[str, Any]] = None,
               **opts: Any) -> Job:
        """Submit one job of any kind with raw fields and frame 1 = payload.

        ``opts``: max_attempts, durability ("commit"/"none"), priority,
        deadline_ms, timeout_ms, backoff_ms, idempotency_key. ``fields``:
        kind-specific header fields (``ms``, ``model``, ...). Prefer the
        typed helpers (submit_echo, submit_infer, submit_train, ...).
        """
        f = P.submit_fields(kind, queue, opts)
        f.update(fields or {})
        return self._submit(f, [payload], on_progress)

    def submit_echo(self, payload: Payload = b"", *,
                    queue: Optional[str] = None, **opts: Any) -> Job:
        """An echo job: its result's ``payload`` is the same bytes."""
        return self._submit(P.submit_fields("echo", queue, opts), [payload])

    def submit_sleep(self, ms: int, payload: Payload = b"", *,
                     queue: Optional[str] = None, **opts: Any) -> Job:
        """A sleep job (waits ms on a worker, then echoes payload)."""
        f = P.submit_fields("sleep", queue, opts)
        f["ms"] = int(ms)
        return self._submit(f, [payload])

    def echo(self, payload: Payload = b"", *, queue: Optional[str] = None,
             timeout: Any = "default", **opts: Any) -> bytes:
        """Round trip of payload through a worker; returns the bytes."""
        t = self.timeout if timeout == "default" else timeout
        return bytes(self.submit_echo(payload, queue=queue, **opts)
                     .result(t).payload)

    def sleep(self, ms: int, *, queue: Optional[str] = None,
              timeout: Any = "default", **opts: Any) -> Result:
        t = self.timeout if timeout == "default" else timeout
        return self.submit_sleep(ms, queue=queue, **opts).result(t)

    def submit_infer(self, model: str, X: Any, *,
                     queue: Optional[str] = None, **opts: Any) -> Job:
        """One infer job on X (rows x features; sent as one request, no
        copy when X is C-contiguous float32: do not modify X until the job
        is accepted)."""
        f, buf = P.infer_submit(model, X, queue, opts)
        return self._submit(f, [buf])

    def submit_many(self, kind: str, payloads: Sequence[Any], *,
                    queue: Optional[str] = None, model: Optional[str] = None,
                    ms: Optional[int] = None, **opts: Any) -> List[Job]:
        """Many jobs of one kind in few messages (``submit_many``, 1.4; one
        ``submit`` each with an older broker). ``payloads``: bytes for
        echo/sleep, arrays (rows x features) for infer with ``model``.
        Each is its own job with its own :class:`Job`."""
        items = P.many_items(kind, payloads, queue, model, ms, opts)
        return self._submit_items(items)

    def _submit_items(self, items: Sequence[Tuple[Dict[str, Any], Any]]
                      ) -> List[Job]:
        jobs: List[Job] = []
        if self.broker_minor < 4:
            for f, buf in items:
                jobs.append(self._submit(f, [buf]))
            return jobs
        for group in P.group_items(items, MANY_BYTES):
            jobs.extend(self._send_many(group))
        return jobs

    def _send_many(self, group: Sequence[Tuple[Dict[str, Any], Any]]
                   ) -> List[Job]:
        h, frames, states = self._open_many(group)
        if h is not None:
            self._send(h, frames)
        return [Job(self, st, f["kind"]) for st, (f, _) in zip(states, group)]

    # ---------------------------------------------------------- infer

    def _resolve(self, model: str) -> str:
        """NAME@VERSION for a reference (pins the version)."""
        m = self.model(model)
        return f"{m['name']}@{m['version']}"

    def predict(self, model: str, X: Any, *, batch: int = 4096,
                queue: Optional[str] = None, window: int = 1024,
                timeout: Any = "default", **opts: Any) -> Prediction:
        """Run model on every row of X through the broker's workers.

        X is split into requests of at most ``batch`` rows (and half a
        frame), submitted ``submit_many`` at a time with up to ``window``
        in flight; with more than one request the model version is pinned
        first (a newer push does not change the answer half-way). One
        request returns a view of the received frame; several are copied
        into one new array. ``timeout``: seconds without the next result.
        """
        t = self.timeout if timeout == "default" else timeout
        x, ranges = self._input_ranges(X, batch)
        if len(ranges) == 1:
            res = self.submit_infer(model, x, queue=queue, **opts).result(t)
            out = res.output
            assert out is not None
            return Prediction(out, res.classes, res.model or model)
        pinned = self._resolve(model)
        items = P.infer_items(pinned, x, ranges, queue, opts)
        got = P._Gather(x.shape[0], ranges, pinned)
        jobs: List[Tuple[int, Job]] = []
        nxt = 0
        done_count = 0
        try:
            while done_count < len(items):
                # keep the window full
                if nxt < len(items) and len(jobs) < window:
                    k = min(len(items) - nxt, window - len(jobs))
                    new = self._submit_items(items[nxt:nxt + k])
                    jobs.extend(zip(range(nxt, nxt + k), new))
                    nxt += k
                idx, job = jobs[0]
                got.add(idx, job.result(t))
                jobs.pop(0)
                done_count += 1
        except BaseException:
            self._abandon([j._s for _, j in jobs])
            raise
        return got.prediction()

    def infer(self, model: str, X: Any, **kw: Any) -> np.ndarray:
        """:meth:`predict`'s output alone: rows x outputs float32 (class
        probabilities, columns in the model's class order, for a
        classifier; the predicted value for a regressor)."""
        return self.predict(model, X, **kw).output

    # ------------------------------------------------ train / evaluate

    def submit_train(self, model: str, data: Any = None, y: Any = None, *,
                     algo: str, dataset: Optional[str] = None,
                     eval_dataset: Optional[str] = None,
                     target: Optional[str] = None, task: Optional[str] = None,
                     columns: Optional[Sequence[str]] = None,
                     created_unix: Optional[int] = None,
                     checkpoint_ms: Optional[int] = None,
                     queue: Optional[str] = None,
                     on_progress: Optional[Callable[[Progress], Any]] = None,
                     submit_opts: Optional[Dict[str, Any]] = None,
                     **params: Any) -> Job:
        """A train job: registers the trained model as the next version of
        ``model``. Data: ``data`` (a CSV path, CSV bytes, or an array X
        with ``y``: sent as CSV with columns ``columns`` or x0.., target
        last) or ``dataset`` (a stored data set ``NAME[@VERSION]``).
        ``params``: epochs, batch, patience, seed, lr, l2, tol, scale,
        hidden (as ``drover train``); ``schema_change=True`` lets the model
        take other inputs or give other outputs than ``model``'s latest
        (else the job fails with :class:`errors.Shape`)."""
        f, payload = P.train_submit(model, data, y, algo, dataset,
                                    eval_dataset, target, task, columns,
                                    created_unix, checkpoint_ms, queue,
                                    submit_opts, params)
        return self._submit(f, [payload], on_progress)

    def train(self, model: str, data: Any = None, y: Any = None, *,
              timeout: Optional[float] = None, **kw: Any) -> Result:
        """:meth:`submit_train` and wait (timeout: None = as long as it
        takes); returns the :class:`Result` (``.model`` is NAME@VERSION
        registered, ``header['sha256']`` the file's digest)."""
        return self.submit_train(model, data, y, **kw).result(timeout)

    def submit_evaluate(self, model: str, data: Any = None, y: Any = None,
                        *, dataset: Optional[str] = None,
                        columns: Optional[Sequence[str]] = None,
                        target: Optional[str] = None,
                        queue: Optional[str] = None, **opts: Any) -> Job:
        f, payload = P.evaluate_submit(model, data, y, dataset, columns,
                                       target, queue, opts)
        return self._submit(f, [payload])

    def evaluate(self, model: str, data: Any = None, y: Any = None, *,
                 timeout: Any = "default", **kw: Any) -> Dict[str, Any]:
        """A model's metrics on labelled data, computed by a worker (what
        ``drover local eval`` prints). With an array X, the CSV columns
        are named as the model's features must be: pass ``columns`` (and
        ``target``) unless the model was trained on x0.. / target."""
        t = self.timeout if timeout == "default" else timeout
        res = self.submit_evaluate(model, data, y, **kw).result(t)
        m = res.metrics or {}
        m["model"] = res.model
        return m

    # -------------------------------------------------------- data sets

    def dataset_push(self, name: str, data: Any, y: Any = None, *,
                     columns: Optional[Sequence[str]] = None,
                     target: Optional[str] = None) -> Dict[str, Any]:
        """Store a data set version from a CSV path, CSV bytes, or an array
        X with y (columns x0.. and target); uploaded in 4 MiB chunks.
        Returns the ``dataset`` record."""
        up = P._Upload(name, data, y, columns, target)
        while True:
            f, chunk = up.chunk()
            h = self._call("dataset_push", f, ("ok", "dataset"), [chunk])
            record = up.answered(h)
            if record is not None:
                return record

    def wait_result(self, job: int, *, timeout: Optional[float] = None,
                    interval: float = 0.05) -> Result:
        """result_get, retried while the job is unfinished (``drover jobs
        result --wait-ms``)."""
        deadline = P._Deadline(timeout)
        while True:
            try:
                return self.result_get(job)
            except errors.NoEntry:
                st = self.job(job).get("state")
                if st in FINISHED_STATES:
                    try:
                        return self.result_get(job)
                    except errors.NoEntry:
                        raise errors.NoEntry(
                            f"job {job} is {st} and its result is no "
                            "longer kept", job=job) from None
            if deadline.passed():
                raise errors.Timeout(f"job {job}: no result within "
                                     f"{timeout} s", job=job)
            time.sleep(interval)

    def watch(self, job: int, *, interval: float = 0.2,
              timeout: Optional[float] = None) -> Iterator[Dict[str, Any]]:
        """Yield the job's ``job`` record each time it changes (state,
        attempts, progress), until it ends (the last one is final)."""
        w = P._Watch(job, timeout)
        while True:
            j = self.job(job)
            if w.changed(j):
                yield j
            if w.over(j):
                return
            time.sleep(interval)

    # --------------------------------------------------------- streams

    def follow(self, queue: str, consumer: str, *,
               window: Optional[int] = None, start: Optional[str] = None
               ) -> Stream:
        """Follow queue's result stream as consumer (resumes after its
        acked position; ``start`` "earliest"/"latest" for a new one)."""
        st = P._StreamState(queue, consumer)
        rid = self._open(st)
        f = {"queue": queue, "consumer": consumer, "window": window,
             "from": start}
        try:
            if not self._hold(st, "follow", f):
                self._send(P.header("follow", rid, **f))
            self._pump(st.answered, self.timeout)
        except BaseException:
            self._pending.pop(rid, None)
            raise
        self._followed(rid, st)
        return Stream(self, rid, st, queue, consumer)
