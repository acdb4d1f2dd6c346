"""Wire protocol 1.8 pieces shared by the blocking and the asyncio client.

Nothing here touches a socket: encoding of headers and frames, decoding of
replies into :class:`Result` and friends, key files, and the dispatch of
incoming messages to the requests waiting for them (:class:`_Core`).
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import re
import stat
import time
from dataclasses import dataclass
from typing import (Any, Callable, Dict, Iterable, List, Optional, Sequence,
                    Tuple, Union)

import msgpack
import numpy as np

from . import errors
from ._version import PROTOCOL_VERSION

#: Default client endpoint (libdrover's DROVER_DEFAULT_ENDPOINT).
DEFAULT_ENDPOINT = "tcp://127.0.0.1:7470"
#: Default queue of every job (libdrover: NULL queue -> "default").
DEFAULT_QUEUE = "default"
#: max_frame_bytes (docs/PROTOCOL.md, Limits); welcome may say otherwise.
MAX_FRAME_BYTES = 268435456
MAX_ROWS = 1000000
#: submit_many: requests per message (protocol bound).
MAX_MANY = 256
#: dataset_push chunk size (the C client's).
DATASET_CHUNK = 4 << 20
F32 = np.dtype("<f4")
#: job states after which nothing more happens to a job
FINISHED_STATES = ("done", "failed", "dead", "expired", "cancelled")

Buffer = Union[bytes, bytearray, memoryview]


#: Broker groups (endpoint lists, protocol 1.6). While requests wait, a
#: member silent this many seconds is probed with a ``ping`` (a SIGSTOPped
#: leader never closes its connections: silence is all a client sees).
SILENCE_S = 0.4
#: seconds a probe ``ping`` or the ``hello`` to a member may go unanswered
#: before the client moves on to the next endpoint of the list. With
#: SILENCE_S it bounds how long a dead or stopped leader goes unnoticed
#: (about 1 s: raft elects the next one in 1-2 s).
PROBE_S = 0.5
#: seconds between tries of the next endpoint when nobody names a leader
#: (an election in progress, every member down): the contract's ~100 ms.
RETRY_S = 0.1
#: seconds between two moves that follow ``leader`` hints: two members with
#: stale hints pointing at each other cost 20 tries a second, not a spin.
HINT_GAP_S = 0.05
#: seconds a move after DV_ENOTLEADER waits for the other requests in
#: flight on that member to be answered DV_ENOTLEADER too (then they are
#: resent, not failed as writes with an unknown outcome).
NOTLEADER_GRACE_S = 0.2
#: requests that change nothing: resent to the new leader when the old one
#: left without answering (other writes fail with errors.LeaderChanged).
READS = frozenset(("ping", "hello", "cluster", "status", "workers",
                   "model_list", "model_get", "dataset_list", "dataset_get",
                   "job_get", "job_list", "result_get", "dead_list",
                   "audit_list", "consumer_list"))
_ANY_HOST = ("0.0.0.0", "*", "::", "[::]", "")


def resolve_endpoint(endpoint: Optional[str]) -> str:
    """endpoint, else $DROVER_BROKER, else tcp://127.0.0.1:7470."""
    if endpoint:
        return endpoint
    return os.environ.get("DROVER_BROKER") or DEFAULT_ENDPOINT


def parse_endpoints(spec: str) -> List[str]:
    """The members of a comma-separated endpoint list (one for a single
    broker)."""
    eps = [e.strip() for e in spec.split(",") if e.strip()]
    if not eps:
        raise errors.Invalid(f"no broker endpoint in {spec!r}")
    return eps


def leader_endpoint(hint: Optional[str], endpoints: Sequence[str],
                    current: str) -> Optional[str]:
    """The endpoint to reach the leader a DV_ENOTLEADER's ``leader`` hint
    names (None: no hint). A hint bound to any address (tcp://0.0.0.0:P,
    tcp://*:P) becomes the list entry with port P, else the current
    member's host with port P."""
    if not hint:
        return None
    if hint in endpoints:
        return hint
    m = re.match(r"^tcp://(.*):(\d+)$", hint)
    if m and m.group(1) in _ANY_HOST:
        port = m.group(2)
        for e in endpoints:
            if e.startswith("tcp://") and e.rsplit(":", 1)[-1] == port:
                return e
        c = re.match(r"^tcp://(.*):\d+$", current)
        if c:
            return f"tcp://{c.group(1)}:{port}"
    return hint


def auto_key() -> str:
    """An automatic idempotency key: 128 random bits, hex."""
    return os.urandom(16).hex()


def pack(header: Dict[str, Any]) -> bytes:
    return msgpack.packb(header, use_bin_type=True)


def unpack(buf: Buffer) -> Any:
    return msgpack.unpackb(buf, raw=False, strict_map_key=False)


def header(t: str, rid: int, **fields: Any) -> Dict[str, Any]:
    """A message header: v, t, rid, then fields (None values left out)."""
    h: Dict[str, Any] = {"v": list(PROTOCOL_VERSION), "t": t, "rid": rid}
    for k, v in fields.items():
        if v is not None:
            h[k] = v
    return h


# ------------------------------------------------------------- key files

def _zpl_values(path: str) -> Dict[str, str]:
    """The `section/key = "value"` pairs of a czmq zcert (ZPL) file."""
    out: Dict[str, str] = {}
    section = ""
    with open(path, "r", encoding="utf-8") as f:
        for raw in f:
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            if not line[0].isspace():
                section = line.strip()
                continue
            if "=" not in line:
                continue
            k, v = line.split("=", 1)
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
                v = v[1:-1]
            out[f"{section}/{k.strip()}"] = v
    return out


@dataclass
class KeyPair:
    """A CURVE key read from a zcert file: Z85 public (and secret) key."""

    id: str
    public: bytes
    secret: Optional[bytes] = None


def load_key(path: str) -> KeyPair:
    """Load a `drover keygen` key file (.key: with the secret; .pub).

    As libdrover: a .key file readable by group or others is refused
    (:class:`errors.Access`), a .key without a secret is a Format error.
    """
    try:
        st = os.stat(path)
    except OSError as e:
        raise errors.NoEntry(f"{path}: {e.strerror}") from None
    if path.endswith(".key") and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise errors.Access(f"{path}: a secret key file must not be open to "
                            "others (chmod 600)")
    try:
        vals = _zpl_values(path)
    except (OSError, UnicodeDecodeError) as e:
        raise errors.Format(f"{path}: not a key file: {e}") from None
    pub = vals.get("curve/public-key")
    if not pub or len(pub) != 40:
        raise errors.Format(f"{path}: no curve/public-key (czmq zcert "
                            "format expected)")
    sec = vals.get("curve/secret-key")
    if sec is not None and len(sec) != 40:
        raise errors.Format(f"{path}: curve/secret-key is not a Z85 key")
    if sec is None and path.endswith(".key"):
        raise errors.Format(f"{path}: no curve/secret-key (a .key file holds "
                            "the secret; the public half goes in .pub)")
    name = vals.get("metadata/name")
    if not name:
        base = os.path.basename(path)
        name = base.rsplit(".", 1)[0] if "." in base[1:] else base
    return KeyPair(name, pub.encode(), sec.encode() if sec else None)


def broker_public_key(spec: str) -> bytes:
    """The broker's Z85 public key from a .pub file or a 40-char Z85 string."""
    if len(spec) == 40 and not os.path.exists(spec):
        return spec.encode()
    return load_key(spec).public


# --------------------------------------------------------------- tensors

def as_input(x: Any, name: str = "X") -> np.ndarray:
    """x as a 2-D C-contiguous little-endian float32 array.

    The caller's array is returned itself when it already is one (no copy),
    else a new array: the caller's object is never written to.
    """
    a = np.asarray(x)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2:
        raise errors.Invalid(f"{name} must be 2-D (rows x features), not "
                             f"{a.ndim}-D")
    if a.dtype != F32 or not a.flags.c_contiguous:
        if a.dtype.kind not in "fiub":
            raise errors.Invalid(f"{name} must be numeric, not {a.dtype}")
        a = np.ascontiguousarray(a, dtype=F32)
    return a


def tensor_buffer(a: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array, without a copy."""
    return memoryview(a).cast("B")


def tensor_map(frame: int, rows: int, cols: int) -> Dict[str, Any]:
    return {"frame": frame, "dtype": "f32", "shape": [rows, cols]}


def read_tensor(desc: Any, frames: Sequence[Buffer]) -> np.ndarray:
    """A read-only float32 view of the frame a tensor map names."""
    if not isinstance(desc, dict):
        raise errors.Format("tensor: not a map")
    idx = desc.get("frame")
    shape = desc.get("shape")
    if desc.get("dtype") != "f32":
        raise errors.DType(f"tensor dtype {desc.get('dtype')!r}")
    if (not isinstance(idx, int) or idx < 1 or idx > len(frames)
            or not isinstance(shape, list)):
        raise errors.Format(f"tensor map {desc!r} names no frame")
    buf = frames[idx - 1]
    n = math.prod(shape)
    if len(buf) != n * 4:
        raise errors.Shape(f"tensor {shape}: frame of {len(buf)} bytes")
    a = np.frombuffer(buf, dtype=F32, count=n).reshape(shape)
    a.flags.writeable = False  # a view of the received frame: copy to write
    return a


# ------------------------------------------------------------------ CSV

def _fmt_col(col: np.ndarray) -> List[str]:
    if col.dtype.kind == "f":
        if col.dtype.itemsize <= 4:
            return [format(float(v), ".9g") for v in col]
        return [repr(float(v)) for v in col]
    if col.dtype.kind in "iub":
        return [str(int(v)) for v in col]
    out = []
    for v in col:
        s = str(v)
        if any(c in s for c in ',"\n\r'):
            s = '"' + s.replace('"', '""') + '"'
        out.append(s)
    return out


def to_csv(X: Any, y: Any = None, columns: Optional[Sequence[str]] = None,
           target: str = "target") -> bytes:
    """CSV text (header line, then rows) of features X and optional target y.

    Columns are named ``columns`` or ``x0, x1, ...``; y goes last as
    ``target``. Floats are written with enough digits to read back the
    same value (float32: 9, float64: repr).
    """
    Xa = np.asarray(X)
    if Xa.ndim == 1:
        Xa = Xa.reshape(-1, 1)
    if Xa.ndim != 2:
        raise errors.Invalid("X must be 2-D")
    names = list(columns) if columns is not None else [
        f"x{i}" for i in range(Xa.shape[1])]
    if len(names) != Xa.shape[1]:
        raise errors.Invalid(f"{len(names)} column names for "
                             f"{Xa.shape[1]} columns")
    cols = [_fmt_col(Xa[:, j]) for j in range(Xa.shape[1])]
    if y is not None:
        ya = np.asarray(y)
        if ya.ndim != 1 or len(ya) != Xa.shape[0]:
            raise errors.Invalid("y must be 1-D with one value per row of X")
        cols.append(_fmt_col(ya))
        names.append(target)
    buf = io.StringIO()
    buf.write(",".join(names) + "\n")
    for row in zip(*cols):
        buf.write(",".join(row))
        buf.write("\n")
    return buf.getvalue().encode()


def csv_bytes(data: Any, y: Any = None, columns: Optional[Sequence[str]]
              = None, target: Optional[str] = None) -> bytes:
    """Training or evaluation data as CSV bytes: a path (str/PathLike),
    bytes (CSV text), or an array X with y."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, (str, os.PathLike)):
        with open(data, "rb") as f:
            return f.read()
    return to_csv(data, y, columns, target or "target")


# ---------------------------------------------------------- decoded replies

@dataclass
class Progress:
    """A train job's progress report (at most 5 a second)."""

    job: int
    epoch: int
    epochs: int
    loss: float
    ms: int
    eta_ms: int = 0
    eval: Optional[float] = None

    @classmethod
    def from_header(cls, h: Dict[str, Any]) -> "Progress":
        return cls(h.get("job", 0), h.get("epoch", 0), h.get("epochs", 0),
                   float(h.get("loss", 0.0)), h.get("ms", 0),
                   h.get("eta_ms", 0), h.get("eval"))


class Result:
    """A finished job's result (``done`` or ``failed``).

    ``header`` is the decoded result header (every field the broker sent);
    ``frames`` its payload frames as read-only memoryviews of the received
    ZeroMQ frames. ``output`` and ``payload`` are views of them, no copies.
    """

    __slots__ = ("header", "frames", "_classes")

    def __init__(self, header: Dict[str, Any], frames: Sequence[Buffer]):
        self.header = header
        self.frames = list(frames)
        self._classes: Optional[List[str]] = None

    def __repr__(self) -> str:
        return (f"Result(job={self.job}, state={self.state!r}, "
                f"attempts={self.attempts})")

    @property
    def job(self) -> int:
        return self.header.get("job", 0)

    @property
    def state(self) -> str:
        return self.header.get("state", "")

    @property
    def ok(self) -> bool:
        return self.state == "done"

    @property
    def attempts(self) -> int:
        return self.header.get("attempts", 0)

    @property
    def worker(self) -> str:
        return self.header.get("worker", "")

    @property
    def model(self) -> Optional[str]:
        """``NAME@VERSION`` that ran (infer, evaluate) or was trained."""
        return self.header.get("model")

    @property
    def seq(self) -> int:
        """Position in the queue's result stream (streamed results; else 0)."""
        return self.header.get("seq", 0)

    @property
    def queue(self) -> Optional[str]:
        return self.header.get("queue")

    @property
    def errors(self) -> List[Dict[str, Any]]:
        """Failed attempts, oldest first ({attempt, error, text, ...})."""
        return self.header.get("errors", [])

    @property
    def error(self) -> Optional[errors.DroverError]:
        """The exception of a failed job, None when done."""
        if self.state == "done":
            return None
        return errors.from_wire(self.header.get("error"), self.job)

    def raise_for_error(self) -> "Result":
        err = self.error
        if err is not None:
            raise err
        return self

    @property
    def payload(self) -> memoryview:
        """Frame 1 (echo/sleep: the bytes sent), a read-only memoryview."""
        return memoryview(self.frames[0]) if self.frames else memoryview(b"")

    @property
    def output(self) -> Optional[np.ndarray]:
        """An infer job's output (rows x outputs), a read-only float32 view
        of the received frame; None for other kinds."""
        desc = self.header.get("output")
        if desc is None:
            return None
        return read_tensor(desc, self.frames)

    @property
    def classes(self) -> Optional[List[str]]:
        """A classifier's class labels, in output column order (else None)."""
        if self._classes is None:
            c = self.header.get("classes")
            if isinstance(c, dict):  # 1.2: a long list travels as a frame
                idx = c.get("frame", 0)
                if not isinstance(idx, int) or not 1 <= idx <= len(
                        self.frames):
                    raise errors.Format("classes names no frame")
                c = unpack(self.frames[idx - 1])
            self._classes = [str(v) for v in c] if c else None
        return self._classes

    @property
    def metrics(self) -> Optional[Dict[str, Any]]:
        """An evaluate job's metrics map (``confusion`` as a k x k array)."""
        m = self.header.get("metrics")
        if m is None:
            return None
        m = dict(m)
        conf = self.header.get("confusion")
        if isinstance(conf, dict):  # 1.2: large confusion as a u32 frame
            k = conf["shape"][0]
            idx = conf["frame"]
            m["confusion"] = np.frombuffer(self.frames[idx - 1],
                                           dtype="<u4").reshape(k, k)
        elif "confusion" in m:
            n = m.get("n_classes", 0)
            c = np.asarray(m["confusion"], dtype=np.uint32)
            if n and c.size == n * n:
                c = c.reshape(n, n)
            m["confusion"] = c
        return m

    @property
    def batch(self) -> Optional[Dict[str, int]]:
        """Infer: the forward pass the job ran in ({rows, jobs})."""
        return self.header.get("batch")


@dataclass
class Prediction:
    """An infer call's outcome: ``output`` (rows x outputs, float32:
    class probabilities in ``classes`` order for a classifier, the value
    for a regressor), ``classes`` (None for regression), ``model``
    (``NAME@VERSION`` that ran)."""

    output: np.ndarray
    classes: Optional[List[str]]
    model: str

    @property
    def class_index(self) -> np.ndarray:
        """Index of the most probable class per row (first one on ties,
        as `drover infer` prints it)."""
        if self.classes is None:
            raise errors.Invalid("a regression model has no classes")
        return np.argmax(self.output, axis=1)

    @property
    def labels(self) -> List[str]:
        """The most probable class's label per row."""
        return [self.classes[i] for i in self.class_index]  # type: ignore


# ------------------------------------------------- requests in flight

class _Pending:
    """Something waiting for messages under one rid.

    With an endpoint list, ``msg`` is what was sent (type, fields, frames),
    kept for a resend to the next leader, and ``unsent`` says it waits for
    that resend (answered DV_ENOTLEADER, or the member left)."""

    __slots__ = ("rid", "msg", "unsent")

    def __init__(self) -> None:
        self.msg: Optional[Tuple[str, Dict[str, Any], Sequence[Any]]] = None
        self.unsent = False

    def on_message(self, t: str, h: Dict[str, Any], frames: List[Buffer]
                   ) -> bool:
        """Take one message; True when this rid expects nothing more."""
        raise NotImplementedError

    def wake(self) -> None:  # the asyncio client overrides
        pass


class _Req(_Pending):
    """A request answered by one reply of a type in ``want``."""

    __slots__ = ("want", "reply", "frames", "exc", "finished", "_waker")

    def __init__(self, want: Tuple[str, ...]):
        super().__init__()
        self.want = want
        self.reply: Optional[Dict[str, Any]] = None
        self.frames: List[Buffer] = []
        self.exc: Optional[BaseException] = None
        self.finished = False
        self._waker: Optional[Callable[[], None]] = None

    def on_message(self, t, h, frames):
        if t == "error":
            self.exc = errors.from_reply(h)
        elif t in self.want:
            self.reply, self.frames = h, frames
        else:
            self.exc = errors.Format(f"broker answered {t!r}, expected "
                                     f"{' or '.join(self.want)}")
        self.fail(None)
        return True

    def fail(self, exc: Optional[BaseException]) -> None:
        """Finish (with exc when given) and wake the waiting caller."""
        if exc is not None:
            self.exc = exc
        self.finished = True
        if self._waker:
            self._waker()

    def outcome(self) -> Tuple[Dict[str, Any], List[Buffer]]:
        """The finished request's reply and frames, or raise its error."""
        if self.exc is not None:
            raise self.exc
        assert self.reply is not None
        return self.reply, self.frames


class _Internal(_Req):
    """A request of the client itself (the ``hello`` to a member, a probe
    ``ping``): ``done`` runs once it is answered; never resent."""

    __slots__ = ("done",)

    def __init__(self, want: Tuple[str, ...],
                 done: Callable[["_Internal"], None]):
        super().__init__(want)
        self.done = done

    def on_message(self, t, h, frames):
        super().on_message(t, h, frames)
        self.done(self)
        return True


class _JobState(_Pending):
    """A submitted job: accepted (or refused), progress, then result.

    ``by_id``: its result will not come on this rid (a duplicate, or the
    job was accepted by a leader that has since left): fetch it by job id.
    ``resent``: sent again after a leader left without accepting it."""

    __slots__ = ("id", "duplicate", "accepted", "res", "exc", "finished",
                 "on_progress", "last_progress", "_waker", "_cb", "by_id",
                 "resent")

    def __init__(self, on_progress: Optional[Callable[[Progress], Any]]
                 = None, cb: Optional[Callable[["_JobState"], Any]] = None):
        super().__init__()
        self.id: Optional[int] = None
        self.duplicate = False
        self.accepted = False
        self.res: Optional[Result] = None
        self.exc: Optional[BaseException] = None
        self.finished = False
        self.on_progress = on_progress
        self.last_progress: Optional[Progress] = None
        self._waker: Optional[Callable[[], None]] = None
        self._cb = cb
        self.by_id = False
        self.resent = False

    def on_message(self, t, h, frames):
        if t == "accepted":
            self.id = h.get("job")
            self.accepted = True
            self.msg = None  # never resent now: let its payload go
            if h.get("duplicate"):
                # No result comes on this rid: the caller fetches it. A
                # resent submit's duplicate is our own first send, which
                # the old leader stored: not the caller's duplicate.
                if self.resent:
                    self.by_id = True
                else:
                    self.duplicate = True
                self._finish()
                return True
            if self._waker:
                self._waker()
            return False
        if t == "progress":
            p = Progress.from_header(h)
            self.last_progress = p
            if self.on_progress is not None:
                self.on_progress(p)
            return False
        if t == "result":
            self.res = Result(h, frames)
            if self.id is None:
                self.id = self.res.job
            self.accepted = True
        elif t == "error":
            self.exc = errors.from_reply(h)
        else:
            self.exc = errors.Format(f"unexpected {t!r} for a submit")
        self._finish()
        return True

    @property
    def fetch_by_id(self) -> bool:
        """The result is fetched with result_get, not received."""
        return self.duplicate or self.by_id

    def _finish(self) -> None:
        self.finished = True
        if self._waker:
            self._waker()
        if self._cb is not None:
            self._cb(self)


class _StreamState(_Pending):
    """A `follow`: its `ok`, then streamed results until unfollowed."""

    __slots__ = ("ok", "results", "exc", "_waker", "closed", "names")

    def __init__(self, queue: Optional[str] = None,
                 consumer: Optional[str] = None) -> None:
        super().__init__()
        self.ok: Optional[Dict[str, Any]] = None
        self.results: List[Result] = []
        self.exc: Optional[BaseException] = None
        self._waker: Optional[Callable[[], None]] = None
        self.closed = False
        #: (queue, consumer) it follows
        self.names = (queue, consumer)

    def on_message(self, t, h, frames):
        if t == "ok" and self.ok is None:
            self.ok = h
        elif t == "result":
            self.results.append(Result(h, frames))
        elif t == "error":
            self.exc = errors.from_reply(h)
        if self._waker:
            self._waker()
        return False

    def answered(self) -> bool:
        """The follow has its ``ok`` or its refusal."""
        return self.ok is not None or self.exc is not None

    def take(self) -> Optional[Result]:
        """The next result received (None: none yet), or raise the error
        the stream got (once)."""
        if self.exc is not None:
            exc, self.exc = self.exc, None
            raise exc
        return self.results.pop(0) if self.results else None


def _is_not_leader(h: Dict[str, Any]) -> bool:
    err = h.get("error")
    return isinstance(err, dict) and err.get("name") == "DV_ENOTLEADER"


class _Core:
    """Request ids, pending table and message dispatch (no I/O), and with
    a list of endpoints (a broker group) the leader following: which
    member to talk to, when to move on, what to resend.

    The clients provide the I/O for the group: ``_io_open(endpoint)``
    replaces the socket by one connected to endpoint, ``_io_send(h,
    frames)`` sends at once on it, ``_io_events()`` returns the connection
    events seen since the last call; and they call ``_tick()`` at least
    every 50 ms while anything waits, and set ``_last_rx`` on receiving.
    """

    #: seconds a request waits for its reply (None: forever); set by the
    #: client classes
    timeout: Optional[float]
    endpoint: str

    def _core_init(self, endpoint: Optional[str] = None,
                   name: str = "") -> None:
        self._pending: Dict[int, _Pending] = {}
        self._next_rid = 0
        #: errors that came with rid 0 or an unknown rid (e.g. a refused ack)
        self.unsolicited_errors: List[errors.DroverError] = []
        self.broker_minor = 0
        self.limits: Dict[str, Any] = {}
        self.broker_name = ""
        #: the members given (one: a single broker, today's behaviour)
        self.endpoints = parse_endpoints(resolve_endpoint(endpoint))
        self.endpoint = self.endpoints[0]
        self._multi = len(self.endpoints) > 1
        self._hello_name = name
        self._phase = "up"  # "hello": waiting for a member's welcome
        self._ep_i = 0  # list index of the member tried last
        self._move_to: Optional[str] = None
        self._move_at = 0.0
        self._grace_until = 0.0
        self._moved_at = -1e9
        self._hello_at = 0.0
        self._last_rx = 0.0
        self._probe: Optional[_Internal] = None
        self._probe_at = 0.0
        #: why the last member tried was refused (constructor errors)
        self._group_error: Optional[BaseException] = None
        #: how many times the client moved to another member
        self.moves = 0
        #: submit_many messages in flight by their own rid (endpoint lists:
        #: a member that is not the leader answers the whole message)
        self._many: Dict[int, List[_JobState]] = {}

    def _waiting(self) -> int:
        """Requests and jobs of the caller still waiting for an answer."""
        if not self._multi:
            return len(self._pending)
        return sum(not isinstance(p, _Internal)
                   for p in self._pending.values())

    def _rid(self) -> int:
        self._next_rid += 1
        return self._next_rid

    def _welcome(self, w: Dict[str, Any]) -> None:
        """What the broker's ``welcome`` says: its minor version, limits
        and name."""
        v = w.get("v", [1, 0])
        self.broker_minor = v[1] if isinstance(v, list) and len(v) == 2 else 0
        self.limits = dict(w.get("limits") or {})
        self.broker_name = w.get("broker", "")

    def _open(self, state: _Pending) -> int:
        """A new request id with state waiting for its answers."""
        rid = self._rid()
        self._pending[rid] = state
        return rid

    def _keyed(self, fields: Dict[str, Any]) -> Dict[str, Any]:
        """A submit's fields with an automatic idempotency key when the
        client follows a group and the caller gave none (a resend to the
        next leader then never runs the job twice)."""
        if self._multi and "idempotency_key" not in fields:
            fields["idempotency_key"] = auto_key()
        return fields

    def _hold(self, p: _Pending, t: str, fields: Dict[str, Any],
              frames: Sequence[Any] = ()) -> bool:
        """Before sending request p: with an endpoint list, keep what is
        sent for a resend; True when it must wait (no member welcomed us
        yet: it goes out then)."""
        if not self._multi:
            return False
        p.msg = (t, fields, list(frames))
        if self._phase != "up" or self._move_to is not None:
            p.unsent = True
            return True
        return False

    def _open_many(self, group: Sequence[Tuple[Dict[str, Any], Any]]
                   ) -> Tuple[Optional[Dict[str, Any]], List[Any],
                              List[_JobState]]:
        """One ``submit_many`` of group's (fields, bytes) items: its header,
        its frame, and a waiting job state for each item (in order). The
        header is None when the message must wait (see _hold)."""
        reqs = []
        states = []
        multi = self._multi
        held = multi and (self._phase != "up" or self._move_to is not None)
        for f, buf in group:
            st = _JobState()
            if multi:
                self._keyed(f)
                st.msg = ("submit", dict(f), [buf])
                st.unsent = held
            f["rid"] = self._open(st)  # f is this request's own dict
            f["bytes"] = len(buf)
            reqs.append(f)
            states.append(st)
        if held:
            return None, [], states
        rid = self._rid()
        if multi:
            self._many[rid] = states
        h = header("submit_many", rid, requests=reqs)
        return h, [join([b for _, b in group])], states

    def _request(self, want: Tuple[str, ...], timeout: Any
                 ) -> Tuple[_Req, int, Optional[float]]:
        """A new request awaiting a reply of a type in want: its state, its
        id and its timeout ("default": the client's)."""
        req = _Req(want)
        return req, self._open(req), (self.timeout if timeout == "default"
                                      else timeout)

    def _followed(self, rid: int, st: _StreamState) -> None:
        """After a ``follow`` was answered: raise its refusal (forgetting
        the stream), else return."""
        if st.ok is None:
            self._pending.pop(rid, None)
            assert st.exc is not None
            raise st.exc

    def _forgot(self, queue: str, consumer: str) -> None:
        """After ``consumer_forget`` of (queue, consumer) succeeded: a
        stream of ours following it ends (the broker sends it nothing
        more, and a resend of its ``follow`` to a group's new leader would
        start the consumer anew); its results received stay readable."""
        for rid, p in list(self._pending.items()):
            if (isinstance(p, _StreamState) and not p.closed
                    and p.names == (queue, consumer)):
                del self._pending[rid]
                p.closed = True
                if p._waker:
                    p._waker()

    def _abandon(self, states: Sequence[_Pending]) -> None:
        """Forget jobs nobody will wait for (their results get dropped)."""
        gone = set(map(id, states))
        self._pending = {r: p for r, p in self._pending.items()
                         if id(p) not in gone}

    # ------------------------------------------- broker groups (1.6)

    def _io_open(self, endpoint: str) -> None:
        raise NotImplementedError

    def _io_send(self, h: Dict[str, Any], frames: Sequence[Any] = ()
                 ) -> None:
        raise NotImplementedError

    def _io_events(self) -> List[str]:
        """"dropped" (the connection closed or could not be made) or
        "handshake" (CURVE refused) for each event since the last call."""
        raise NotImplementedError

    def _many_error(self, rid: int, h: Dict[str, Any]) -> None:
        """An ``error`` under a submit_many message's own rid: DV_ENOTLEADER
        (its jobs wait for a resend) or a refusal of the whole message."""
        jobs = self._many.pop(rid)
        if _is_not_leader(h):
            for st in jobs:
                if not st.accepted and not st.finished:
                    st.unsent = True
            self._not_leader(0, None, h.get("leader"))
            return
        exc = errors.from_reply(h)
        for st in jobs:
            if not st.accepted and not st.finished:
                st.exc = exc
                st._finish()
                self._pending = {r: p for r, p in self._pending.items()
                                 if p is not st}

    def _not_leader(self, rid: int, p: Optional[_Pending], hint: Any
                    ) -> None:
        """Request rid was answered DV_ENOTLEADER: nothing was done, so it
        waits for a resend to the leader the hint names."""
        if isinstance(p, _Internal):
            del self._pending[rid]
            if p is self._probe:
                self._probe = None
        elif p is not None:
            p.unsent = True
        if self._move_to is not None:
            return
        now = time.monotonic()
        target = leader_endpoint(hint if isinstance(hint, str) else None,
                                 self.endpoints, self.endpoint)
        if target is None or target == self.endpoint:
            self._lost(now)  # no leader known yet: the next one, ~100 ms
            return
        self._move_to = target
        self._move_at = max(now, self._moved_at + HINT_GAP_S)
        self._grace_until = now + NOTLEADER_GRACE_S

    def _lost(self, now: float) -> None:
        """The member does not serve us: try the next endpoint of the list
        (RETRY_S after the last try at the soonest)."""
        if self._move_to is not None:
            return
        self._ep_i = (self._ep_i + 1) % len(self.endpoints)
        self._move_to = self.endpoints[self._ep_i]
        self._move_at = max(now, self._moved_at + RETRY_S)
        self._grace_until = 0.0

    def _hello_done(self, req: _Internal) -> None:
        if req.exc is not None:
            self._group_error = req.exc
            self._lost(time.monotonic())
            return
        assert req.reply is not None
        self._welcome(req.reply)
        self._phase = "up"
        self._group_error = None
        self._last_rx = time.monotonic()
        if self._move_to is None:
            self._flush()

    def _probe_done(self, req: _Internal) -> None:
        if req is self._probe:
            self._probe = None

    def _flush(self) -> None:
        """Send every request waiting for a leader, oldest first."""
        for rid in sorted(self._pending):
            p = self._pending[rid]
            if not p.unsent or p.msg is None:
                continue
            p.unsent = False
            t, f, frames = p.msg
            self._io_send(header(t, rid, **f), frames)

    def _tick(self) -> None:
        """With an endpoint list: read the connection's events, probe a
        silent member, move on to another one when it is due."""
        now = time.monotonic()
        for ev in self._io_events():
            if ev == "handshake":
                self._group_error = errors.Perm(
                    f"CURVE handshake with {self.endpoint} failed: a "
                    "refused key, a wrong broker key, or a plain client "
                    "against a CURVE broker")
            self._lost(now)
        if self._many and self._phase == "up":  # forget answered ones
            self._many = {r: js for r, js in self._many.items()
                          if any(not st.accepted and not st.finished
                                 for st in js)}
        if self._move_to is None:
            if self._phase == "hello":
                if now - self._hello_at > PROBE_S:
                    self._lost(now)
            elif self._probe is not None:
                if now - self._probe_at > PROBE_S:
                    self._lost(now)
            elif self._pending and now - self._last_rx > SILENCE_S:
                self._probe = _Internal(("pong",), self._probe_done)
                rid = self._open(self._probe)
                self._probe_at = now
                self._io_send(header("ping", rid))
        if self._move_to is None or now < self._move_at:
            return
        if now < self._grace_until and any(
                not p.unsent and not isinstance(p, (_Internal, _StreamState))
                for p in self._pending.values()):
            return  # the others' DV_ENOTLEADER may still be on the way
        self._move(self._move_to, now)

    def _move(self, target: str, now: float) -> None:
        """Connect to target and say hello; what was in flight on the old
        member is resent once welcomed (reads, follows, submits not yet
        accepted), awaited by job id (accepted jobs), or failed with
        errors.LeaderChanged (other writes)."""
        old = self.endpoint
        self._move_to = None
        self._grace_until = 0.0
        self._probe = None
        self._many.clear()
        for rid, p in list(self._pending.items()):
            if isinstance(p, _Internal):
                del self._pending[rid]
            elif isinstance(p, _JobState) and p.accepted:
                p.by_id = True
                del self._pending[rid]
                p._finish()
            elif p.unsent or p.msg is None:
                continue
            elif isinstance(p, _JobState):
                p.unsent = p.resent = True
            elif isinstance(p, _StreamState) or p.msg[0] in READS:
                p.unsent = True
            elif isinstance(p, _Req):
                del self._pending[rid]
                p.fail(errors.LeaderChanged(
                    f"the broker group's leader changed ({old} left) "
                    f"before '{p.msg[0]}' was answered: it may or may not "
                    "have been done; check and retry"))
        if target in self.endpoints:
            self._ep_i = self.endpoints.index(target)
        self.endpoint = target
        self._phase = "hello"
        self._moved_at = self._hello_at = now
        self.moves += 1
        self._io_open(target)
        hello = _Internal(("welcome",), self._hello_done)
        rid = self._open(hello)
        self._io_send(header("hello", rid, client=self._hello_name))

    def _start_group(self) -> None:
        """Connect to the first endpoint of the list (the constructor)."""
        self.moves = -1
        self._move(self.endpoints[0], time.monotonic())

    def _input_ranges(self, X: Any, batch: int
                      ) -> Tuple[np.ndarray, List[Tuple[int, int]]]:
        """predict's input as float32 and the row ranges of its requests
        (at most batch rows and half a frame each)."""
        x = as_input(X)
        rows, cols = x.shape
        if rows == 0:
            raise errors.Invalid("X has no rows")
        maxf = int(self.limits.get("max_frame_bytes", MAX_FRAME_BYTES))
        return x, split_rows(rows, cols, batch, maxf)

    def _dispatch(self, msg: List[Any]) -> None:
        """One received multipart message (zmq Frames)."""
        try:
            h = unpack(msg[0].buffer)
        except Exception:  # an undecodable header: nothing to route it to
            return
        if not isinstance(h, dict):
            return
        t = h.get("t")
        payload = [f.buffer for f in msg[1:]] if len(msg) > 1 else []
        pending = self._pending
        if t == "accepted_many":
            for pair in h.get("accepted", ()):
                p = pending.get(pair[0])
                if p is not None and p.on_message(
                        "accepted", {"job": pair[1]}, []):
                    del pending[pair[0]]
            return
        if t == "results":
            buf = payload[0] if payload else memoryview(b"")
            off = 0
            for e in h.get("results", ()):
                parts = []
                for n in e.get("frames", ()):
                    parts.append(buf[off:off + n])
                    off += n
                rid = e.get("rid", 0)
                p = pending.get(rid)
                if p is not None and p.on_message("result", e, parts):
                    del pending[rid]
            return
        rid = h.get("rid", 0)
        p = pending.get(rid) if rid else None
        if p is None:
            if t == "error" and rid in self._many:
                self._many_error(rid, h)
            elif t == "error":
                self.unsolicited_errors.append(errors.from_reply(h))
                del self.unsolicited_errors[:-100]
            return
        if t == "error" and self._multi and _is_not_leader(h):
            self._not_leader(rid, p, h.get("leader"))
            return
        if p.on_message(t, h, payload):
            pending.pop(rid, None)


# ------------------------------------------------------------- submits

_SUBMIT_OPTS = ("max_attempts", "durability", "priority", "deadline_ms",
                "timeout_ms", "backoff_ms", "idempotency_key")


def submit_fields(kind: str, queue: Optional[str], opts: Dict[str, Any]
                  ) -> Dict[str, Any]:
    """The common fields of a submit (unknown options are an error)."""
    f: Dict[str, Any] = {"queue": queue or DEFAULT_QUEUE, "kind": kind}
    for k, v in opts.items():
        if k not in _SUBMIT_OPTS:
            raise TypeError(f"unknown submit option {k!r}")
        if v is not None:
            f[k] = v
    key = f.get("idempotency_key")
    if key is not None and len(key.encode()) > 256:
        raise errors.Invalid("idempotency_key over 256 bytes")
    return f


_TRAIN_KEYS = ("algo", "scale", "epochs", "batch", "patience", "seed", "lr",
               "l2", "tol", "hidden")


def train_map(algo: str, params: Dict[str, Any]) -> Dict[str, Any]:
    m: Dict[str, Any] = {"algo": algo}
    for k, v in params.items():
        if k not in _TRAIN_KEYS:
            raise TypeError(f"unknown training parameter {k!r}")
        if v is None:
            continue
        if k in ("lr", "l2", "tol"):
            v = float(v)
        elif k == "hidden":
            v = [int(x) for x in v]
        elif k != "scale":
            v = int(v)
        m[k] = v
    return m


def sha256(data: Buffer) -> bytes:
    return hashlib.sha256(data).digest()


def split_rows(rows: int, cols: int, batch: int, max_frame: int
               ) -> List[Tuple[int, int]]:
    """[start, end) row ranges of at most batch rows and half a frame."""
    per = max(1, int(batch))
    half = max(1, (max_frame // 2) // max(1, cols * 4))
    per = min(per, half, MAX_ROWS)
    return [(s, min(rows, s + per)) for s in range(0, rows, per)]


def chunks_of(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def train_submit(model: str, data: Any, y: Any, algo: str,
                 dataset: Optional[str], eval_dataset: Optional[str],
                 target: Optional[str], task: Optional[str],
                 columns: Optional[Sequence[str]],
                 created_unix: Optional[int], checkpoint_ms: Optional[int],
                 queue: Optional[str], submit_opts: Optional[Dict[str, Any]],
                 params: Dict[str, Any]) -> Tuple[Dict[str, Any], bytes]:
    """A train submit's fields and frame 1."""
    f = submit_fields("train", queue, submit_opts or {})
    f["model"] = model
    params = dict(params)
    if params.pop("schema_change", False):
        # the model may take other inputs or give other outputs than the
        # name's latest (else the job fails DV_ESHAPE, nothing stored)
        f["schema_change"] = True
    f["train"] = train_map(algo, params)
    if (data is None) == (dataset is None):
        raise errors.Invalid("give data (a CSV path or bytes, or X with y) "
                             "or dataset=, not both")
    if target is None and y is not None:
        target = "target"
    for k, v in (("target", target), ("task", task),
                 ("created_unix", created_unix),
                 ("checkpoint_ms", checkpoint_ms),
                 ("dataset", dataset), ("eval_dataset", eval_dataset)):
        if v is not None:
            f[k] = v
    payload = b"" if data is None else csv_bytes(data, y, columns, target)
    return f, payload


def evaluate_submit(model: str, data: Any, y: Any, dataset: Optional[str],
                    columns: Optional[Sequence[str]], target: Optional[str],
                    queue: Optional[str], opts: Dict[str, Any]
                    ) -> Tuple[Dict[str, Any], bytes]:
    """An evaluate submit's fields and frame 1."""
    f = submit_fields("evaluate", queue, opts)
    f["model"] = model
    if (data is None) == (dataset is None):
        raise errors.Invalid("give data (a CSV path or bytes, or X with y) "
                             "or dataset=, not both")
    if dataset is not None:
        f["dataset"] = dataset
    payload = b"" if data is None else csv_bytes(data, y, columns, target)
    return f, payload


Item = Tuple[Dict[str, Any], Any]


def infer_submit(model: str, X: Any, queue: Optional[str],
                 opts: Dict[str, Any]) -> Item:
    x = as_input(X)
    f = submit_fields("infer", queue, opts)
    f["model"] = model
    f["input"] = tensor_map(1, x.shape[0], x.shape[1])
    return f, tensor_buffer(x)


def many_items(kind: str, payloads: Sequence[Any], queue: Optional[str],
               model: Optional[str], ms: Optional[int],
               opts: Dict[str, Any]) -> List[Item]:
    """submit_many's requests: one (fields, payload) per job."""
    base = submit_fields(kind, queue, opts)
    if kind == "infer" and not model:
        raise errors.Invalid("infer needs model=")
    if model is not None:
        base["model"] = model
    if ms is not None:
        base["ms"] = int(ms)
    items: List[Item] = []
    for p in payloads:
        f = dict(base)
        if kind == "infer":
            x = as_input(p)
            f["input"] = tensor_map(1, x.shape[0], x.shape[1])
            items.append((f, tensor_buffer(x)))
        elif type(p) is bytes:
            items.append((f, p))
        else:
            items.append((f, memoryview(p).cast("B")))
    return items


def infer_items(pinned: str, x: np.ndarray, ranges: Sequence[Tuple[int, int]],
                queue: Optional[str], opts: Dict[str, Any]) -> List[Item]:
    """One infer request per row range of x, each a view of x's memory."""
    cols = x.shape[1]
    base = submit_fields("infer", queue, opts)
    base["model"] = pinned
    buf = tensor_buffer(x)
    items = []
    for a, b in ranges:
        f = dict(base)
        f["input"] = tensor_map(1, b - a, cols)
        items.append((f, buf[a * cols * 4:b * cols * 4]))
    return items


def group_items(items: Sequence[Item], max_bytes: int) -> List[List[Item]]:
    """Split requests into submit_many messages (<= 256, <= max_bytes)."""
    groups: List[List[Item]] = []
    cur: List[Item] = []
    size = 0
    for it in items:
        n = len(it[1])
        if cur and (len(cur) >= MAX_MANY or size + n > max_bytes):
            groups.append(cur)
            cur, size = [], 0
        cur.append(it)
        size += n
    if cur:
        groups.append(cur)
    return groups


def _addr(b: Any) -> int:
    return np.frombuffer(b, dtype=np.uint8).__array_interface__["data"][0]


def join(bufs: Sequence[Any]) -> Any:
    """One frame of consecutive buffers: a view when they are adjacent
    slices of one object's memory (an infer split), else a joined copy."""
    if len(bufs) == 1:
        return bufs[0]
    first = bufs[0]
    obj = first.obj if isinstance(first, memoryview) else None
    if obj is not None and all(isinstance(b, memoryview) and b.obj is obj
                               and len(b) for b in bufs):
        try:
            end = _addr(first) + len(first)
            for b in bufs[1:]:
                if _addr(b) != end:
                    break
                end += len(b)
            else:
                whole = memoryview(obj).cast("B")
                start = _addr(first) - _addr(whole)
                return whole[start:start + (end - _addr(first))]
        except (TypeError, ValueError):
            pass
    return b"".join(bufs)


# ------------------------------------- what Client and aio.Client share

def ack_fields(queue: str, consumer: str, seq: Any,
               last_seq: Optional[int]) -> Dict[str, Any]:
    """An ``ack``'s fields: seq an int, a Result or None (the last one
    handed out)."""
    if isinstance(seq, Result):
        seq = seq.seq
    if seq is None:
        seq = last_seq
    return {"queue": queue, "consumer": consumer, "seq": int(seq)}


class _Upload:
    """A data set going up in ``dataset_push`` chunks: ``chunk()`` gives the
    next request's fields and bytes, ``answered(h)`` takes its reply and
    returns the ``dataset`` record once the last one is stored."""

    def __init__(self, name: str, data: Any, y: Any,
                 columns: Optional[Sequence[str]], target: Optional[str]):
        self.name = name
        self.blob = csv_bytes(data, y, columns, target)
        self.digest = sha256(self.blob)
        self.view = memoryview(self.blob)
        self.off = 0
        self.sent = 0

    def chunk(self) -> Tuple[Dict[str, Any], memoryview]:
        c = self.view[self.off:self.off + DATASET_CHUNK]
        self.sent = len(c)
        return {"name": self.name, "sha256": self.digest,
                "bytes": len(self.blob), "offset": self.off}, c

    def answered(self, h: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        self.off += self.sent
        if h.get("t") == "dataset":
            return h
        if self.off >= len(self.blob):
            raise errors.Format("broker did not answer the last chunk "
                                "with the data set")
        return None


class _Deadline:
    """``timeout`` seconds from now (None: never) for polling loops."""

    def __init__(self, timeout: Optional[float]):
        self.at = None if timeout is None else time.monotonic() + timeout

    def passed(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at


class _Watch(_Deadline):
    """``watch``'s judgement of each ``job`` record it polls."""

    def __init__(self, job: int, timeout: Optional[float]):
        super().__init__(timeout)
        self.job = job
        self.last: Any = None

    def changed(self, j: Dict[str, Any]) -> bool:
        """The record differs from the last one (state, attempts,
        progress)."""
        key = (j.get("state"), j.get("attempts"), str(j.get("progress")))
        new, self.last = key != self.last, key
        return new

    def over(self, j: Dict[str, Any]) -> bool:
        """The job finished (True), or raise Timeout past the deadline."""
        if j.get("state") in FINISHED_STATES:
            return True
        if self.passed():
            raise errors.Timeout(f"job {self.job} still {j.get('state')}",
                                 job=self.job)
        return False


class _Gather:
    """predict's results, request by request, into one output array."""

    def __init__(self, rows: int, ranges: Sequence[Tuple[int, int]],
                 pinned: str):
        self.rows = rows
        self.ranges = ranges
        self.out: Optional[np.ndarray] = None
        self.classes: Optional[List[str]] = None
        self.model = pinned

    def add(self, idx: int, res: Result) -> None:
        """Request idx's result (raises Format when its shape is off)."""
        o = res.output
        a, b = self.ranges[idx]
        if o is None or o.shape[0] != b - a:
            raise errors.Format(f"rows {a}..: result shape does not "
                                "match the request")
        if self.out is None:
            self.out = np.empty((self.rows, o.shape[1]), dtype=F32)
            self.classes = res.classes
            self.model = res.model or self.model
        self.out[a:b] = o

    def prediction(self) -> Prediction:
        assert self.out is not None
        return Prediction(self.out, self.classes, self.model)


class _JobBase:
    """A submitted job's client, state and kind, and what it reads off
    its state without waiting (drover.Job and drover.aio.Job)."""

    def __init__(self, client: Any, state: _JobState, kind: str):
        self._c = client
        self._s = state
        self.kind = kind

    @property
    def accepted(self) -> bool:
        """True once the broker accepted (stored) the job."""
        return self._s.accepted

    @property
    def duplicate(self) -> bool:
        """True when the idempotency key named an earlier job (``id``)."""
        return self._s.duplicate

    @property
    def progress(self) -> Optional[Progress]:
        """The last training progress report (None: none yet)."""
        return self._s.last_progress


class _StreamBase:
    """A followed stream's client, request id, state and names
    (drover.Stream and drover.aio.Stream)."""

    def __init__(self, client: Any, rid: int, state: _StreamState,
                 queue: str, consumer: str):
        self._c = client
        self._rid = rid
        self._s = state
        self.queue = queue
        self.consumer = consumer
        #: the position the consumer had acknowledged when it followed
        self.acked: int = (state.ok or {}).get("acked", 0)
        #: seq of the last result handed out
        self.last_seq = 0

    def _take(self) -> Optional[Result]:
        """The next result received, noted as the last handed out (None:
        none yet); raises the error the stream got."""
        r = self._s.take()
        if r is not None:
            self.last_seq = r.seq
        return r
