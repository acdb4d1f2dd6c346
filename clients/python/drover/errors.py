"""Exceptions named after Drover's wire errors (docs/PROTOCOL.md, Errors).

Every error the broker or a worker reports arrives as ``{name, text}``;
the client raises the subclass of :class:`DroverError` registered for
``name`` (``DV_ENOMODEL`` -> :class:`NoModel`, ...), carrying ``.code``
(the ``DV_E`` name) and ``.text`` (the broker's reason). A name this
client does not know (a newer broker's) raises :class:`DroverError` itself
with that ``.code``.

Client-side conditions use the same classes: no answer in time is
:class:`Timeout` (``DV_ETIMEDOUT``, also a built-in :class:`TimeoutError`),
a bad argument caught before sending is :class:`Invalid`, a refused CURVE
handshake is :class:`Perm`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type


class DroverError(Exception):
    """An error from the broker, a worker, or this client.

    ``code`` is the wire name (``"DV_ESHAPE"``), ``text`` the reason, and
    ``job`` the job id when the error is about a job (else ``None``).
    """

    code = "DV_EUNKNOWN"

    def __init__(self, text: str = "", code: Optional[str] = None,
                 job: Optional[int] = None) -> None:
        if code is not None:
            self.code = code
        self.text = text
        self.job = job
        super().__init__(f"{self.code}: {text}" if text else self.code)


_BY_CODE: Dict[str, Type[DroverError]] = {}


def _register(code: str, doc: str, *bases: type) -> Type[DroverError]:
    name = _NAMES[code]
    cls = type(name, (DroverError,) + bases,
               {"code": code, "__doc__": f"``{code}``: {doc}",
                "__module__": __name__})
    _BY_CODE[code] = cls
    return cls


_NAMES = {
    "DV_EINVAL": "Invalid",
    "DV_EFORMAT": "Format",
    "DV_EDTYPE": "DType",
    "DV_EVERSION": "Version",
    "DV_EMSGSIZE": "MsgSize",
    "DV_ESHAPE": "Shape",
    "DV_ENAN": "NaN",
    "DV_ENOMODEL": "NoModel",
    "DV_ENOENT": "NoEntry",
    "DV_ECHECKSUM": "Checksum",
    "DV_ENOMEM": "NoMemory",
    "DV_ECANCELED": "Canceled",
    "DV_EIO": "IO",
    "DV_ENOSPC": "NoSpace",
    "DV_EACCES": "Access",
    "DV_ETRUNC": "Truncated",
    "DV_EDIVERGED": "Diverged",
    "DV_EQUEUEFULL": "QueueFull",
    "DV_ETIMEDOUT": "Timeout",
    "DV_EEXPIRED": "Expired",
    "DV_EQUARANTINED": "Quarantined",
    "DV_EPERM": "Perm",
    "DV_ELIMIT": "Limit",
    "DV_ENOTLEADER": "NotLeader",
}

Invalid = _register("DV_EINVAL", "a request field is out of range.",
                    ValueError)
Format = _register("DV_EFORMAT", "malformed header, CSV or message.")
DType = _register("DV_EDTYPE", "a tensor dtype other than f32.")
Version = _register("DV_EVERSION", "unsupported protocol major version.")
MsgSize = _register("DV_EMSGSIZE", "a size or count over the limits.")
Shape = _register("DV_ESHAPE",
                  "tensor shape and frame disagree, or input width is not "
                  "the model's.")
NaN = _register("DV_ENAN", "NaN or infinity in an input.")
NoModel = _register("DV_ENOMODEL", "unknown model name, version or alias.")
NoEntry = _register("DV_ENOENT",
                    "unknown job, data set, consumer or kept result.",
                    LookupError)
Checksum = _register("DV_ECHECKSUM", "a file's checksum does not match.")
NoMemory = _register("DV_ENOMEM", "the worker could not allocate.")
Canceled = _register("DV_ECANCELED", "the job was cancelled.")
IO = _register("DV_EIO", "broker storage failure, or worker lost.")
NoSpace = _register("DV_ENOSPC", "broker storage full.")
Access = _register("DV_EACCES", "storage or key file access refused.")
Truncated = _register("DV_ETRUNC", "a model file shorter or longer than "
                      "its header says.")
Diverged = _register("DV_EDIVERGED", "training diverged.")
QueueFull = _register("DV_EQUEUEFULL", "the queue is over its limits: "
                      "retry later.")
Timeout = _register("DV_ETIMEDOUT",
                    "no answer in time (client side), or a run longer than "
                    "the job's timeout_ms.", TimeoutError)
Expired = _register("DV_EEXPIRED", "the job had not started by its "
                    "deadline.")
Quarantined = _register("DV_EQUARANTINED", "workers died running the job.")
Perm = _register("DV_EPERM", "the key lacks the role, queue or ownership "
                 "(or the CURVE handshake was refused).", PermissionError)
Limit = _register("DV_ELIMIT", "a per-key or per-connection limit.")
NotLeader = _register("DV_ENOTLEADER",
                      "the broker is a member of a broker group but not its "
                      "leader: nothing was done, the request is safe to "
                      "send again to the leader (``.leader``: its client "
                      "endpoint, None while no leader is known). A client "
                      "given a list of endpoints follows it by itself.")
NotLeader.leader = None  # type: ignore[attr-defined]


class LeaderChanged(IO):  # type: ignore[misc,valid-type]
    """The broker group's leader changed (the member the client talked to
    died, went silent, or stepped down) before a write was answered: it may
    or may not have been applied. Check (``job``, ``model``, ...) and retry.
    Only a client given a list of endpoints raises it; a submit is never
    failed this way (it is resent with its idempotency key)."""

#: Alias: the wire name is DV_ETIMEDOUT.
TimedOut = Timeout


def error_class(code: str) -> Type[DroverError]:
    """The exception class for a wire error name (DroverError if unknown)."""
    return _BY_CODE.get(code, DroverError)


def from_wire(err: object, job: Optional[int] = None) -> DroverError:
    """The exception for an ``error`` map ``{name, text}`` from the wire."""
    if isinstance(err, dict):
        code = str(err.get("name", "DV_EUNKNOWN"))
        text = str(err.get("text", ""))
    else:
        code, text = "DV_EFORMAT", f"malformed error: {err!r}"
    cls = error_class(code)
    return cls(text, code=code, job=job)


def from_reply(h: Dict[str, Any]) -> DroverError:
    """The exception for an ``error`` message: as :func:`from_wire`, and a
    :class:`NotLeader` gets the message's ``leader`` hint."""
    e = from_wire(h.get("error"), h.get("job"))
    if isinstance(e, NotLeader):
        hint = h.get("leader")
        e.leader = hint if isinstance(hint, str) and hint else None
        if e.leader:
            e.args = (f"{e.args[0]} (leader: {e.leader})",)
    return e


__all__ = ["DroverError", "LeaderChanged", "TimedOut", "error_class",
           "from_wire", "from_reply"] + list(
    _NAMES.values())
