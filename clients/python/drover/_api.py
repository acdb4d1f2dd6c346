"""Request/reply calls shared by the blocking and the asyncio client.

Each method sends one request and shapes its reply. ``self._call`` returns
the reply header (blocking client) or an awaitable of it (asyncio client);
``self._then(r, fn)`` applies fn to it either way, so every method here
returns a value in :class:`drover.Client` and a coroutine in
:class:`drover.aio.Client`.

Lists (models, data sets, workers, jobs, dead letters; stream consumers
since 1.8) come in pages (protocol 1.7): a reply that stopped before the
end carries ``next``, and the same request again with ``from`` set to it
returns the following page.
:func:`_pages` holds that loop once, as a generator that yields each
request and is sent each reply; ``self._drive(gen)`` runs it, sending the
requests with ``self._call`` (:func:`drive` in the blocking client,
:func:`adrive` in the asyncio one), and returns what the generator returns.
"""

from __future__ import annotations

import os
from contextlib import closing
from typing import (Any, Awaitable, Callable, Dict, Generator, List, Optional,
                    Sequence, Tuple, Union)

from . import _proto as P
from . import errors
from ._proto import Result

Payload = Union[bytes, bytearray, memoryview]

#: job_list's limit when none is given, and the largest (the broker's)
JOBS_LIMIT = 100
JOBS_MAX = 10000
#: dead_list's limit when none is given (the broker's)
DEAD_LIMIT = 1000

#: one request of a paged list: (type, fields, reply types wanted)
Request = Tuple[str, Dict[str, Any], Tuple[str, ...]]
#: a list's request generator: yields requests, is sent their replies,
#: returns the shaped result
Pages = Generator[Request, Dict[str, Any], Any]
#: what a paged list returns, from (items, next, last reply header)
Shape = Callable[[List[Any], Any, Dict[str, Any]], Any]


def _items(items: List[Any], nxt: Any, h: Dict[str, Any]) -> List[Any]:
    return items


def _pages(t: str, fields: Dict[str, Any], want: Tuple[str, ...], key: str,
           *, limit: Optional[int] = None, from_: Any = None,
           shape: Shape = _items) -> Pages:
    """The requests of list t until its end (or limit items), as a
    generator: it yields each request (t, fields, want), is sent the reply
    header, and returns shape(items, next, last reply): the array ``key``
    of every page, in order, and the ``next`` to continue from (None at the
    end of the list).

    Each page asks for what is still wanted (``limit`` applies per
    request) and for ``from`` = the previous reply's ``next``, echoed
    unchanged (a name and version, or a number: the broker's business). A
    broker before 1.7 never sends ``next``: one page. A page that is empty
    or whose ``next`` is the ``from`` just sent ends the list (next None):
    a broker that never moves on must not keep the client asking forever
    (the items of a page whose ``next`` is its ``from`` are left out: such
    a page kept nothing new, it repeats one that came already).
    """
    items: List[Any] = []
    frm = from_
    while True:
        f = dict(fields)
        if limit is not None:
            f["limit"] = limit - len(items)
        if frm is not None:
            f["from"] = frm
        h = yield t, f, want
        page = h.get(key) or []
        nxt = h.get("next")
        if nxt is not None and frm is not None and nxt == frm:
            # a page starts at from: next == from says it kept nothing,
            # so what it holds (a broker ignoring from) came already
            return shape(items, None, h)
        items.extend(page)
        if nxt is not None and not page:
            nxt = None  # an empty page that says "more": stop here
        if nxt is None or (limit is not None and len(items) >= limit):
            return shape(items, nxt, h)
        frm = nxt


def drive(gen: Pages, call: Callable[..., Dict[str, Any]]) -> Any:
    """Run a request generator (:func:`_pages`) with a blocking call:
    its return value. An error of a call leaves the generator closed."""
    with closing(gen):
        reply: Optional[Dict[str, Any]] = None
        while True:
            try:
                req = gen.send(reply)  # type: ignore[arg-type]
            except StopIteration as stop:
                return stop.value
            reply = call(*req)


async def adrive(gen: Pages, call: Callable[..., Awaitable[Dict[str, Any]]]
                 ) -> Any:
    """:func:`drive` for a call that returns an awaitable (asyncio)."""
    with closing(gen):
        reply: Optional[Dict[str, Any]] = None
        while True:
            try:
                req = gen.send(reply)  # type: ignore[arg-type]
            except StopIteration as stop:
                return stop.value
            reply = await call(*req)


def _jobs_limit(limit: Optional[int]) -> int:
    """A job list's wanted count: 1 .. 10,000 (default 100), as the broker
    bounds one request's."""
    n = JOBS_LIMIT if limit is None else int(limit)
    return max(1, min(JOBS_MAX, n))


def _jobs_page(items: List[Any], nxt: Any, h: Dict[str, Any]
               ) -> Dict[str, Any]:
    return {"jobs": items, "next": nxt}


def _dead_page(items: List[Any], nxt: Any, h: Dict[str, Any]
               ) -> Dict[str, Any]:
    return {"total": h.get("total", 0), "jobs": items}


def _get(key: str, default: Any) -> Callable[[Dict[str, Any]], Any]:
    return lambda h: h.get(key, default)


def _dead_fields(job: Optional[int], all_: bool, queue: Optional[str]
                 ) -> Dict[str, Any]:
    if (job is None) == (not all_):
        raise errors.Invalid("give a job id or all=True")
    if job is not None:
        return {"job": int(job)}
    return {"all": True, "queue": queue}


def _model_with_schema(want_schema: bool) -> Callable[[Any], Dict[str, Any]]:
    def shape(rep: Any) -> Dict[str, Any]:
        h, fr = rep
        h = dict(h)
        if want_schema and h.get("schema") == 1 and fr:
            h["schema"] = P.unpack(fr[0])
        return h
    return shape


def _forgotten(api: "_Api", queue: str, consumer: str
               ) -> Callable[[Dict[str, Any]], Dict[str, Any]]:
    """consumer_forget's reply as it is, once the client's own stream of
    that consumer (if any) is ended."""
    def shape(h: Dict[str, Any]) -> Dict[str, Any]:
        api._forgot(queue, consumer)
        return h
    return shape


def _one_dead(job: int) -> Callable[[Dict[str, Any]], Dict[str, Any]]:
    def shape(h: Dict[str, Any]) -> Dict[str, Any]:
        jobs = h.get("jobs", [])
        if not jobs:
            raise errors.NoEntry(f"job {job} is not dead", job=job)
        return jobs[0]
    return shape


class _Api:
    """The broker's request/reply messages as methods."""

    _call: Callable[..., Any]
    _call_frames: Callable[..., Any]
    _then: Callable[[Any, Callable[[Any], Any]], Any]
    #: runs a request generator (_pages): drive() or adrive()
    _drive: Callable[[Pages], Any]
    #: ends the client's own stream of a forgotten consumer (_proto._Core)
    _forgot: Callable[[str, str], None]
    broker_minor: int

    # ------------------------------------------------------------ basics

    def status(self, queues_from: Optional[str] = None) -> Any:
        """The broker's counts (``status_info``: workers, queued, running,
        ..., ``queues`` map: name -> {queued, running, done, ...})."""
        return self._call("status", {"queues_from": queues_from},
                          ("status_info",))

    def cluster(self) -> Any:
        """The broker group as the member this client talks to sees it
        (1.6; any member answers, followers too): {self, leader, term,
        commit, applied, last, members: [{id, raft, client, worker, http,
        voter, role, match}]} (a member's lag is last - match). A single
        broker answers members [] and self 0."""
        return self._call("cluster", {}, ("cluster",))

    def workers(self) -> Any:
        """Connected workers: [{name, capacity, running, models, state,
        ...}], all of them (fetched in pages from a 1.7 broker). An entry
        whose ``models`` or ``datasets`` list is long has it cut to about
        8 KiB of names and then carries ``models_total`` /
        ``datasets_total``, the full count (1.7)."""
        return self._drive(_pages("workers", {}, ("worker_list",),
                                  "workers"))

    # ------------------------------------------------------------ models

    def model_push(self, name: str, model: Union[str, os.PathLike, Payload],
                   *, signature: Optional[bytes] = None,
                   signer: Optional[str] = None,
                   schema_change: bool = False) -> Any:
        """Store a .drvm file (a path or its bytes) as the next version of
        name; returns the ``model`` record. A file that takes other inputs
        or gives other outputs than name's latest is refused
        (:class:`drover.errors.Shape`) unless ``schema_change`` (broker
        1.5)."""
        data = P.csv_bytes(model)
        return self._call("model_push", {"name": name,
                                         "sha256": P.sha256(data),
                                         "signature": signature,
                                         "signer": signer,
                                         "schema_change":
                                             True if schema_change else None},
                          ("model",), [data])

    def models(self) -> Any:
        """Every stored model version (``model`` records), sorted by
        name and version; a long list is fetched in pages (1.7), one
        request each, transparently."""
        return self._drive(_pages("model_list", {}, ("models",), "models"))

    def model(self, name: str, version: Optional[int] = None, *,
              schema: bool = False) -> Any:
        """One version's record (``NAME``, ``NAME@VERSION`` or
        ``NAME@ALIAS``; default the latest). With schema: adds ``schema``
        {features, target, classes, labels_numeric}."""
        return self._then(self._call_frames(
            "model_get", {"name": name, "version": version,
                          "schema": 1 if schema else None}, ("model",)),
            _model_with_schema(schema))

    def model_alias(self, name: str, alias: str, version: int, *,
                    schema_change: bool = False) -> Any:
        """Point NAME@ALIAS at version; ``ok`` {name, alias, version,
        previous} (previous 0: new alias). Moving it to a version of
        another schema needs ``schema_change`` (broker 1.5)."""
        return self._call("model_alias", {"name": name, "alias": alias,
                                          "version": int(version),
                                          "schema_change":
                                              True if schema_change else None},
                          ("ok",))

    def model_unalias(self, name: str, alias: str) -> Any:
        """Remove an alias; ``ok`` {..., previous}."""
        return self._call("model_alias", {"name": name, "alias": alias},
                          ("ok",))

    def model_gc(self, name: str, keep: int = 1) -> Any:
        """Remove every version but the newest keep (aliased ones stay);
        returns the removed versions."""
        return self._then(self._call("model_gc", {"name": name,
                                                  "keep": int(keep)},
                                     ("ok",)), _get("removed", []))

    def model_rm(self, name: str, version: Optional[int] = None) -> Any:
        """Remove one version (default: all); returns how many went."""
        return self._then(self._call("model_rm", {"name": name,
                                                  "version": version},
                                     ("ok",)), _get("removed", 0))

    def model_config(self, name: str, *,
                     max_batch_rows: Optional[int] = None,
                     max_delay_us: Optional[int] = None) -> Any:
        """Read (no settings given) or set a model's batching settings
        (admins); returns {name, max_batch_rows, max_delay_us}."""
        return self._call("model_config", {"name": name,
                                           "max_batch_rows": max_batch_rows,
                                           "max_delay_us": max_delay_us},
                          ("ok",))

    # --------------------------------------------------------- data sets

    def datasets(self) -> Any:
        """Stored data set versions (those this key may read), sorted by
        name and version; a long list is fetched in pages (1.7),
        transparently."""
        return self._drive(_pages("dataset_list", {}, ("datasets",),
                                  "datasets"))

    def dataset(self, name: str, version: Optional[int] = None) -> Any:
        """One data set version's record (default: latest)."""
        return self._call("dataset_get", {"name": name, "version": version},
                          ("dataset",))

    def dataset_rm(self, name: str, version: Optional[int] = None) -> Any:
        """Remove one version (default: all); returns how many went."""
        return self._then(self._call("dataset_rm", {"name": name,
                                                    "version": version},
                                     ("ok",)), _get("removed", 0))

    def dataset_share(self, name: str, readers: Sequence[str]) -> Any:
        """Who else may read it: key ids, ["*"] every key, [] nobody."""
        return self._call("dataset_share", {"name": name,
                                            "readers": list(readers)},
                          ("ok",))

    # -------------------------------------------------------------- jobs

    def job(self, job: int) -> Any:
        """Where a job is: the ``job`` record (state, attempts, queue,
        progress, ...)."""
        return self._call("job_get", {"job": int(job)}, ("job",))

    def jobs(self, *, state: Optional[str] = None,
             queue: Optional[str] = None, limit: Optional[int] = None,
             from_: Optional[int] = None) -> Any:
        """Jobs, newest first: [{job, state, attempts, ...}], at most limit
        (1 .. 10,000; default 100), in a state and/or of a queue. ``from_``
        (broker 1.7): only jobs with an id up to it. More than one reply
        holds are fetched in pages (1.7), transparently; past 10,000, page
        with :meth:`jobs_page`."""
        return self._drive(self._jobs(state, queue, limit, from_, _items))

    def jobs_page(self, *, state: Optional[str] = None,
                  queue: Optional[str] = None, limit: Optional[int] = None,
                  from_: Optional[int] = None) -> Any:
        """As :meth:`jobs`, with where the list goes on: {jobs: [...],
        next: a job id, None at the end}. ``jobs_page(..., from_=next)``
        returns the following jobs, so a caller can walk any number::

            page = c.jobs_page(limit=10000)
            while page["next"] is not None:
                page = c.jobs_page(limit=10000, from_=page["next"])
        """
        return self._drive(self._jobs(state, queue, limit, from_,
                                      _jobs_page))

    def _jobs(self, state: Optional[str], queue: Optional[str],
              limit: Optional[int], from_: Optional[int], shape: Shape
              ) -> Pages:
        if from_ is not None and self.broker_minor < 7:
            raise errors.Invalid(
                f"jobs from_= needs a broker of protocol 1.7 (this one "
                f"speaks 1.{self.broker_minor}, which would ignore it)")
        return (yield from _pages(
            "job_list", {"state": state, "queue": queue}, ("jobs",), "jobs",
            limit=_jobs_limit(limit),
            from_=None if from_ is None else int(from_), shape=shape))

    def cancel(self, job: int) -> Any:
        """Cancel a queued or running job; returns what it was (queued /
        running). :class:`errors.NoEntry` when unknown or finished."""
        return self._then(self._call("job_cancel", {"job": int(job)},
                                     ("ok",)), _get("was", ""))

    def result_get(self, job: int) -> Any:
        """A finished job's kept :class:`Result` (any client may fetch
        it); :class:`errors.NoEntry` when unknown, unfinished or dropped.
        A failed job's result is returned, not raised."""
        return self._then(self._call_frames("result_get", {"job": int(job)},
                                            ("result",)),
                          lambda r: Result(r[0], r[1]))

    # ------------------------------------------------------ dead letters

    def dead_list(self, *, queue: Optional[str] = None,
                  limit: Optional[int] = None) -> Any:
        """Dead letters: {total, jobs: [...]}, oldest death first, at
        most limit (default 1,000) of them; a list longer than one reply
        holds is fetched in pages (1.7), transparently. ``total``: how many
        there are (of the queue)."""
        return self._drive(_pages(
            "dead_list", {"queue": queue}, ("dead_jobs",), "jobs",
            limit=DEAD_LIMIT if limit is None else int(limit),
            shape=_dead_page))

    def dead_show(self, job: int) -> Any:
        """One dead job (:class:`errors.NoEntry` when it is not dead)."""
        return self._then(self._call("dead_list", {"job": int(job)},
                                     ("dead_jobs",)), _one_dead(job))

    def dead_requeue(self, job: Optional[int] = None, *, all: bool = False,
                     queue: Optional[str] = None) -> Any:
        """Requeue a dead job (or all, of a queue): {count, requeued:
        [{job, new_job}]}."""
        return self._call("dead_requeue", _dead_fields(job, all, queue),
                          ("ok",))

    def dead_purge(self, job: Optional[int] = None, *, all: bool = False,
                   queue: Optional[str] = None) -> Any:
        """Drop a dead job (or all, of a queue); returns how many."""
        return self._then(self._call("dead_purge",
                                     _dead_fields(job, all, queue), ("ok",)),
                          _get("purged", 0))

    # -------------------------------------------------- stream consumers

    def consumers(self, queue: Optional[str] = None) -> Any:
        """The result-stream consumers the broker keeps (1.8; with CURVE,
        admin keys): [{queue, consumer, acked, last, followed, window,
        in_flight, owner}], sorted by queue, then name (byte order), of
        queue (default: all). ``acked``: every result up to it is handled;
        ``last``: the queue's last result given out (lag = last - acked);
        ``window`` and ``in_flight`` (sent, not acknowledged) only while a
        connection follows it, ``owner`` (a key id) only when it has one.
        A long list is fetched in pages, transparently. A broker before 1.8
        raises :class:`errors.Format` (an unknown message type)."""
        return self._drive(_pages("consumer_list", {"queue": queue},
                                  ("consumers",), "consumers"))

    def consumer_forget(self, queue: str, consumer: str) -> Any:
        """Remove a consumer for good (1.8; with CURVE, its owner with the
        consumer role on queue, or an admin): its stored position goes, a
        client following it gets no more results, and a later ``follow``
        of the name starts anew (``start``). Returns the ``ok`` reply
        {queue, consumer, acked: the position it had} once the removal is
        stored; a :class:`Stream` of this client following it ends.
        :class:`errors.NoEntry` when there is no such consumer (or
        queue)."""
        return self._then(self._call("consumer_forget",
                                     {"queue": queue, "consumer": consumer},
                                     ("ok",)),
                          _forgotten(self, queue, consumer))

    # ------------------------------------------------------------- admin

    def audit(self, since_ms: int = 0) -> Any:
        """The audit log since since_ms (admin keys): {entries, more}."""
        return self._call("audit_list", {"since_ms": since_ms}, ("audit",))

    def admin_reload(self) -> Any:
        """Reread the authorized keys (admin keys); returns their count."""
        return self._then(self._call("admin_reload", {}, ("ok",)),
                          _get("keys", 0))
