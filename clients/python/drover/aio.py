"""The asyncio Drover client (zmq.asyncio): the surface of
:class:`drover.Client`, with coroutines.

    import asyncio, drover.aio

    async def main():
        async with drover.aio.Client() as c:      # connects (hello)
            job = await c.submit_echo(b"hi")
            res = await job                        # or await job.result(5)
            probs = await c.infer("iris", X)

A background task reads the socket and completes the jobs and requests in
flight, so any number of coroutines may use one client at once (one event
loop; the client is not thread-safe). Request/reply methods
(``status``, ``models``, ``job``, ``dead_list``, ...) are coroutines with
the same arguments and results as in :class:`drover.Client`; a list that
comes in pages (protocol 1.7) is fetched page after page by the same code
(drover._api), so both clients return the same. Arrays follow
the same rules: inputs are sent without a copy (do not modify them until
the job is accepted; :meth:`Client.infer` returns only when all is done),
outputs are read-only views of the received frames.
"""

from __future__ import annotations

import asyncio
import collections
import os
import time
from typing import (Any, AsyncIterator, Callable, Deque, Dict, List,
                    Optional, Sequence, Tuple, Union)

import numpy as np
import zmq
import zmq.asyncio

from . import _proto as P
from . import errors
from ._api import Pages, _Api, adrive
from ._proto import Prediction, Progress, Result
from ._version import __version__
from .client import (_GROUP_EVENTS, _MONITOR_EVENTS, FINISHED_STATES,
                     MANY_BYTES, _connect, _dealer, _group_events,
                     _no_broker, _recv, _refused, _use_keys)

Payload = Union[bytes, bytearray, memoryview]


class _Waiter:
    """An asyncio.Event a pending state sets when something arrives."""

    def __init__(self, state: Any) -> None:
        self.ev = asyncio.Event()
        state._waker = self.ev.set

    async def until(self, cond: Callable[[], bool],
                    timeout: Optional[float], what: str) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not cond():
            self.ev.clear()
            if cond():
                return
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise errors.Timeout(f"{what}: no answer within {timeout} s")
            try:
                await asyncio.wait_for(self.ev.wait(), left)
            except asyncio.TimeoutError:
                raise errors.Timeout(f"{what}: no answer within {timeout} s"
                                     ) from None


class Job(P._JobBase):
    """A submitted job (asyncio). ``await job`` is ``await job.result()``.

    ``id`` is None until the broker accepted it (``await job.wait_id()``
    waits); ``done()``, ``progress`` and ``cancel()`` as in
    :class:`drover.Job`."""

    def __init__(self, client: "Client", state: P._JobState, kind: str):
        super().__init__(client, state, kind)
        self._w = _Waiter(state)

    def __repr__(self) -> str:
        return f"<drover.aio.Job {self.kind} id={self._s.id}>"

    @property
    def id(self) -> Optional[int]:
        return self._s.id

    def done(self) -> bool:
        return self._s.finished and (not self._s.fetch_by_id
                                     or self._s.res is not None)

    async def wait_id(self, timeout: Any = "default") -> int:
        """Wait for the broker to accept the job; its id (or the refusal)."""
        t = self._c.timeout if timeout == "default" else timeout
        s = self._s
        await self._w.until(lambda: s.accepted or s.finished, t, "submit")
        if s.id is None:
            raise s.exc if s.exc else errors.Format("no job id")
        return s.id

    async def result(self, timeout: Optional[float] = None) -> Result:
        """The result (raising the job's error), as :meth:`drover.Job.result`."""
        s = self._s
        await self._w.until(lambda: s.finished, timeout, f"job {s.id}")
        if s.exc is not None:
            raise s.exc
        if s.fetch_by_id and s.res is None:
            s.res = await self._c.wait_result(s.id, timeout=timeout)
        assert s.res is not None
        return s.res.raise_for_error()

    def __await__(self) -> Any:
        return self.result().__await__()

    async def cancel(self) -> bool:
        if self._s.finished:
            return False
        try:
            await self._c.cancel(await self.wait_id())
        except errors.NoEntry:
            return False
        return True


class Stream(P._StreamBase):
    """A followed result stream (asyncio): ``async for r in stream``,
    ``await stream.get(timeout)``, ``await stream.ack(seq)``,
    ``await stream.close()``."""

    def __init__(self, client: "Client", rid: int, state: P._StreamState,
                 waiter: _Waiter, queue: str, consumer: str):
        super().__init__(client, rid, state, queue, consumer)
        self._w = waiter

    def __aiter__(self) -> AsyncIterator[Result]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Result]:
        while True:
            r = await self.get(None)
            if r is None:
                return
            yield r

    async def get(self, timeout: Optional[float] = None) -> Optional[Result]:
        s = self._s
        try:
            await self._w.until(lambda: bool(s.results) or s.exc is not None
                                or s.closed, timeout, "follow")
        except errors.Timeout:
            return None
        return self._take()

    async def ack(self, seq: Union[int, Result, None] = None, *,
                  wait: bool = False) -> Optional[int]:
        f = P.ack_fields(self.queue, self.consumer, seq, self.last_seq)
        if not wait:
            if not self._c._multi or self._c._phase == "up":
                await self._c._send(P.header("ack", 0, **f))
            return None
        return (await self._c._call("ack", f, ("ok",))).get("acked")

    async def close(self) -> Optional[int]:
        if self._s.closed:
            return None
        self._s.closed = True
        self._w.ev.set()
        self._c._pending.pop(self._rid, None)
        try:
            return (await self._c._call(
                "unfollow", {"queue": self.queue,
                             "consumer": self.consumer}, ("ok",))
                    ).get("acked")
        except errors.DroverError:
            return None

    async def __aenter__(self) -> "Stream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


class Client(P._Core, _Api):
    """An asyncio connection to a Drover broker; arguments as
    :class:`drover.Client` (an endpoint list follows a broker group's
    leader the same way). Use ``async with Client(...) as c`` or
    ``c = await Client(...).connect()``; ``await c.close()`` at the end."""

    def __init__(self, endpoint: Optional[str] = None, *,
                 key: Optional[str] = None, broker_key: Optional[str] = None,
                 timeout: Optional[float] = 30.0,
                 connect_timeout: Optional[float] = 5.0,
                 name: Optional[str] = None,
                 context: Optional[zmq.asyncio.Context] = None) -> None:
        self._core_init(endpoint, name or f"drover-python {__version__} aio")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._name = name
        self._ctx = context or zmq.asyncio.Context.instance()
        self._key = key or os.environ.get("DROVER_KEY") or None
        self._broker_key = (broker_key or os.environ.get("DROVER_BROKER_KEY")
                            or None)
        self.key_id: Optional[str] = None
        self._sock: Optional[zmq.asyncio.Socket] = None
        self._reader: Optional[asyncio.Task] = None
        self._handshake_error: Optional[errors.DroverError] = None
        self._raw: Optional[zmq.Socket] = None
        self._mon: Optional[zmq.Socket] = None
        self._mon_raw: Optional[zmq.Socket] = None
        self._ticker: Optional[asyncio.Task] = None

    async def connect(self) -> "Client":
        """Open the socket and say hello (raises as drover.Client does)."""
        if self._multi:
            return await self._connect_group()
        sock = _dealer(self._ctx)
        self._sock = sock
        monitor = None
        watcher = None
        try:
            self.key_id = _use_keys(sock, self._key, self._broker_key)
            monitor = sock.get_monitor_socket(_MONITOR_EVENTS)
            _connect(sock, self.endpoint)
            self._reader = asyncio.ensure_future(self._read_loop())
            req = P._Req(("welcome",))
            w = _Waiter(req)
            rid = self._open(req)
            watcher = asyncio.ensure_future(self._watch(monitor, req))
            await self._send(P.header("hello", rid, client=self._name or
                                      f"drover-python {__version__} aio"))
            try:
                await w.until(lambda: req.finished, self.connect_timeout,
                              "hello")
            except errors.Timeout:
                raise _no_broker(self.endpoint, self.connect_timeout) from None
            finally:
                self._pending.pop(rid, None)
            self._welcome(req.outcome()[0])
        except BaseException:
            await self.close()
            raise
        finally:
            if watcher is not None:
                watcher.cancel()
            if monitor is not None:
                if not sock.closed:
                    sock.disable_monitor()
                monitor.close(0)
        return self

    async def _watch(self, monitor: Any, req: P._Req) -> None:
        """Fail the hello when the handshake is refused."""
        from zmq.utils.monitor import parse_monitor_message
        msg = await monitor.recv_multipart()
        ev = parse_monitor_message(msg)
        if ev["event"] == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            req.exc = _refused(self.endpoint, self.key_id, ev["value"])
        else:
            req.exc = errors.Perm(f"CURVE handshake with {self.endpoint} "
                                  "failed (wrong broker key, or a plain "
                                  "client against a CURVE broker)")
        req.finished = True
        if req._waker:
            req._waker()

    # ------------------------------------------- broker groups (1.6)

    async def _connect_group(self) -> "Client":
        """Reach the leader of the group the endpoint list names."""
        try:
            self._start_group()
            self._ticker = asyncio.ensure_future(self._tick_loop())
            deadline = P._Deadline(self.connect_timeout)
            while self._phase != "up":
                if deadline.passed():
                    if self._group_error is not None:
                        raise self._group_error
                    raise errors.Timeout(
                        "no leader of the broker group "
                        f"{','.join(self.endpoints)} answered within "
                        f"{self.connect_timeout} s (are they running? an "
                        "election going on?)")
                await asyncio.sleep(0.01)
        except BaseException:
            await self.close()
            raise
        return self

    async def _tick_loop(self) -> None:
        """_Core's clock: probes, timeouts and moves to another member."""
        try:
            while True:
                await asyncio.sleep(0.02 if self._move_to else 0.05)
                self._tick()
        except asyncio.CancelledError:
            return

    def _io_open(self, endpoint: str) -> None:
        self._close_sock()
        sock = _dealer(self._ctx)
        self._sock = sock
        self.key_id = _use_keys(sock, self._key, self._broker_key)
        mon = sock.get_monitor_socket(_GROUP_EVENTS)
        self._mon = mon
        self._mon_raw = zmq.Socket.shadow(mon.underlying)
        self._raw = zmq.Socket.shadow(sock.underlying)
        _connect(sock, endpoint)
        self._reader = asyncio.ensure_future(self._read_loop(sock))

    def _io_send(self, h: Dict[str, Any], frames: Sequence[Any] = ()
                 ) -> None:
        # a DEALER with no high-water mark queues at once: no await
        assert self._raw is not None
        if frames:
            self._raw.send_multipart([P.pack(h), *frames], copy=False)
        else:
            self._raw.send(P.pack(h))

    def _io_events(self) -> List[str]:
        return _group_events(self._mon_raw)

    def _close_sock(self) -> None:
        """Drop the socket, its monitor and its reader (moving on)."""
        if self._reader is not None:
            if self._reader is not asyncio.current_task():
                self._reader.cancel()
            self._reader = None
        if self._mon is not None:
            if self._sock is not None:
                try:
                    self._sock.disable_monitor()
                except zmq.ZMQError:
                    pass
            self._mon.close(0)
            self._mon = None
        self._raw = self._mon_raw = None
        if self._sock is not None:
            self._sock.close(0)
            self._sock = None

    async def _read_loop(self, sock: Optional[zmq.asyncio.Socket] = None
                         ) -> None:
        sock = sock or self._sock
        assert sock is not None
        # the same socket as a plain zmq.Socket: NOBLOCK reads need no future
        raw = zmq.Socket.shadow(sock.underlying)
        multi = self._multi
        try:
            while True:
                msg = await sock.recv_multipart(copy=False)
                self._dispatch(msg)
                while True:  # what else is waiting, without the event loop
                    try:
                        msg = _recv(raw, zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self._dispatch(msg)
                if multi:
                    self._last_rx = time.monotonic()
        except (asyncio.CancelledError, zmq.ZMQError):
            return

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except BaseException:
                pass
            self._ticker = None
        if self._mon is not None:
            self._close_sock()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except BaseException:
                pass
            self._reader = None
        if self._sock is not None:
            self._sock.close(200)
            self._sock = None
        self._pending.clear()

    async def __aenter__(self) -> "Client":
        return await self.connect()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    @property
    def pending(self) -> int:
        return self._waiting()

    # ----------------------------------------------------------- I/O

    async def _send(self, h: Dict[str, Any], frames: Sequence[Any] = ()
                    ) -> None:
        if self._sock is None:
            raise errors.Invalid("client not connected (await connect())")
        if self._multi:
            self._io_send(h, frames)
        elif frames:
            await self._sock.send_multipart([P.pack(h), *frames], copy=False)
        else:
            await self._sock.send(P.pack(h))

    async def _call_frames(self, t: str, fields: Dict[str, Any],
                           want: Tuple[str, ...], frames: Sequence[Any] = (),
                           timeout: Any = "default"
                           ) -> Tuple[Dict[str, Any], List[Any]]:
        req, rid, timeout = self._request(want, timeout)
        w = _Waiter(req)
        try:
            if not self._hold(req, t, fields, frames):
                await self._send(P.header(t, rid, **fields), frames)
            await w.until(lambda: req.finished, timeout, t)
        finally:
            self._pending.pop(rid, None)
        return req.outcome()

    async def _call(self, t: str, fields: Dict[str, Any],
                    want: Tuple[str, ...], frames: Sequence[Any] = (),
                    timeout: Any = "default") -> Dict[str, Any]:
        return (await self._call_frames(t, fields, want, frames, timeout))[0]

    async def _then_co(self, co: Any, fn: Callable[[Any], Any]) -> Any:
        return fn(await co)

    def _then(self, r: Any, fn: Callable[[Any], Any]) -> Any:
        return self._then_co(r, fn)

    def _drive(self, gen: Pages) -> Any:
        """A coroutine sending a list's requests (_api._pages), one page
        after another."""
        return adrive(gen, self._call)

    async def ping(self, timeout: Any = "default") -> float:
        t0 = time.monotonic()
        await self._call("ping", {}, ("pong",), timeout=timeout)
        return time.monotonic() - t0

    # ------------------------------------------------------- submits

    async def _submit(self, fields: Dict[str, Any], frames: Sequence[Any],
                      on_progress: Optional[Callable[[Progress], Any]] = None
                      ) -> Job:
        st = P._JobState(on_progress)
        job = Job(self, st, fields["kind"])
        rid = self._open(st)
        try:
            if self._multi:
                self._keyed(fields)
            if not self._hold(st, "submit", fields, frames):
                await self._send(P.header("submit", rid, **fields), frames)
        except BaseException:
            self._pending.pop(rid, None)
            raise
        return job

    async def submit(self, kind: str, payload: Payload = b"", *,
                     queue: Optional[str] = None,
                     on_progress: Optional[Callable[[Progress], Any]] = None,
                     fields: Optional[Dict[str, Any]] = None,
                     **opts: Any) -> Job:
        f = P.submit_fields(kind, queue, opts)
        f.update(fields or {})
        return await self._submit(f, [payload], on_progress)

    async def submit_echo(self, payload: Payload = b"", *,
                          queue: Optional[str] = None, **opts: Any) -> Job:
        return await self._submit(P.submit_fields("echo", queue, opts),
                                  [payload])

    async def submit_sleep(self, ms: int, payload: Payload = b"", *,
                           queue: Optional[str] = None, **opts: Any) -> Job:
        f = P.submit_fields("sleep", queue, opts)
        f["ms"] = int(ms)
        return await self._submit(f, [payload])

    async def echo(self, payload: Payload = b"", *,
                   queue: Optional[str] = None, timeout: Any = "default",
                   **opts: Any) -> bytes:
        t = self.timeout if timeout == "default" else timeout
        job = await self.submit_echo(payload, queue=queue, **opts)
        return bytes((await job.result(t)).payload)

    async def sleep(self, ms: int, *, queue: Optional[str] = None,
                    timeout: Any = "default", **opts: Any) -> Result:
        t = self.timeout if timeout == "default" else timeout
        return await (await self.submit_sleep(ms, queue=queue, **opts)
                      ).result(t)

    async def submit_infer(self, model: str, X: Any, *,
                           queue: Optional[str] = None, **opts: Any) -> Job:
        f, buf = P.infer_submit(model, X, queue, opts)
        return await self._submit(f, [buf])

    async def submit_many(self, kind: str, payloads: Sequence[Any], *,
                          queue: Optional[str] = None,
                          model: Optional[str] = None,
                          ms: Optional[int] = None, **opts: Any
                          ) -> List[Job]:
        items = P.many_items(kind, payloads, queue, model, ms, opts)
        return await self._submit_items(items)

    async def _submit_items(self, items: Sequence[P.Item]) -> List[Job]:
        jobs: List[Job] = []
        if self.broker_minor < 4:
            for f, buf in items:
                jobs.append(await self._submit(f, [buf]))
            return jobs
        for group in P.group_items(items, MANY_BYTES):
            h, frames, states = self._open_many(group)
            if h is not None:
                await self._send(h, frames)
            jobs.extend(Job(self, st, f["kind"])
                        for st, (f, _) in zip(states, group))
        return jobs

    async def predict(self, model: str, X: Any, *, batch: int = 4096,
                      queue: Optional[str] = None, window: int = 1024,
                      timeout: Any = "default", **opts: Any) -> Prediction:
        """As :meth:`drover.Client.predict`."""
        t = self.timeout if timeout == "default" else timeout
        x, ranges = self._input_ranges(X, batch)
        if len(ranges) == 1:
            res = await (await self.submit_infer(model, x, queue=queue,
                                                 **opts)).result(t)
            assert res.output is not None
            return Prediction(res.output, res.classes, res.model or model)
        m = await self.model(model)
        pinned = f"{m['name']}@{m['version']}"
        items = P.infer_items(pinned, x, ranges, queue, opts)
        got = P._Gather(x.shape[0], ranges, pinned)
        inflight: Deque[Tuple[int, Job]] = collections.deque()
        nxt = 0
        try:
            for _ in range(len(items)):
                if nxt < len(items) and len(inflight) < window:
                    k = min(len(items) - nxt, window - len(inflight))
                    new = await self._submit_items(items[nxt:nxt + k])
                    inflight.extend(zip(range(nxt, nxt + k), new))
                    nxt += k
                idx, job = inflight.popleft()
                got.add(idx, await job.result(t))
        except BaseException:
            self._abandon([j._s for _, j in inflight])
            raise
        return got.prediction()

    async def infer(self, model: str, X: Any, **kw: Any) -> np.ndarray:
        return (await self.predict(model, X, **kw)).output

    async def submit_train(self, model: str, data: Any = None, y: Any = None,
                           *, algo: str, dataset: Optional[str] = None,
                           eval_dataset: Optional[str] = None,
                           target: Optional[str] = None,
                           task: Optional[str] = None,
                           columns: Optional[Sequence[str]] = None,
                           created_unix: Optional[int] = None,
                           checkpoint_ms: Optional[int] = None,
                           queue: Optional[str] = None,
                           on_progress: Optional[Callable[[Progress], Any]]
                           = None,
                           submit_opts: Optional[Dict[str, Any]] = None,
                           **params: Any) -> Job:
        f, payload = P.train_submit(model, data, y, algo, dataset,
                                    eval_dataset, target, task, columns,
                                    created_unix, checkpoint_ms, queue,
                                    submit_opts, params)
        return await self._submit(f, [payload], on_progress)

    async def train(self, model: str, data: Any = None, y: Any = None, *,
                    timeout: Optional[float] = None, **kw: Any) -> Result:
        job = await self.submit_train(model, data, y, **kw)
        return await job.result(timeout)

    async def submit_evaluate(self, model: str, data: Any = None,
                              y: Any = None, *,
                              dataset: Optional[str] = None,
                              columns: Optional[Sequence[str]] = None,
                              target: Optional[str] = None,
                              queue: Optional[str] = None, **opts: Any
                              ) -> Job:
        f, payload = P.evaluate_submit(model, data, y, dataset, columns,
                                       target, queue, opts)
        return await self._submit(f, [payload])

    async def evaluate(self, model: str, data: Any = None, y: Any = None, *,
                       timeout: Any = "default", **kw: Any) -> Dict[str, Any]:
        t = self.timeout if timeout == "default" else timeout
        res = await (await self.submit_evaluate(model, data, y, **kw)
                     ).result(t)
        m = res.metrics or {}
        m["model"] = res.model
        return m

    async def dataset_push(self, name: str, data: Any, y: Any = None, *,
                           columns: Optional[Sequence[str]] = None,
                           target: Optional[str] = None) -> Dict[str, Any]:
        up = P._Upload(name, data, y, columns, target)
        while True:
            f, chunk = up.chunk()
            h = await self._call("dataset_push", f, ("ok", "dataset"), [chunk])
            record = up.answered(h)
            if record is not None:
                return record

    async def wait_result(self, job: int, *, timeout: Optional[float] = None,
                          interval: float = 0.05) -> Result:
        deadline = P._Deadline(timeout)
        while True:
            try:
                return await self.result_get(job)
            except errors.NoEntry:
                st = (await self.job(job)).get("state")
                if st in FINISHED_STATES:
                    return await self.result_get(job)
            if deadline.passed():
                raise errors.Timeout(f"job {job}: no result within "
                                     f"{timeout} s", job=job)
            await asyncio.sleep(interval)

    async def watch(self, job: int, *, interval: float = 0.2,
                    timeout: Optional[float] = None
                    ) -> AsyncIterator[Dict[str, Any]]:
        w = P._Watch(job, timeout)
        while True:
            j = await self.job(job)
            if w.changed(j):
                yield j
            if w.over(j):
                return
            await asyncio.sleep(interval)

    async def follow(self, queue: str, consumer: str, *,
                     window: Optional[int] = None,
                     start: Optional[str] = None) -> Stream:
        st = P._StreamState(queue, consumer)
        w = _Waiter(st)
        rid = self._open(st)
        f = {"queue": queue, "consumer": consumer, "window": window,
             "from": start}
        try:
            if not self._hold(st, "follow", f):
                await self._send(P.header("follow", rid, **f))
            await w.until(st.answered, self.timeout, "follow")
        except BaseException:
            self._pending.pop(rid, None)
            raise
        self._followed(rid, st)
        return Stream(self, rid, st, w, queue, consumer)
