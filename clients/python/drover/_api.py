"""Request/reply calls shared by the blocking and the asyncio client.

Each method sends one request and shapes its reply. ``self._call`` returns
the reply header (blocking client) or an awaitable of it (asyncio client);
``self._then(r, fn)`` applies fn to it either way, so every method here
returns a value in :class:`drover.Client` and a coroutine in
:class:`drover.aio.Client`.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Optional, Sequence, Union

from . import _proto as P
from . import errors
from ._proto import Result

Payload = Union[bytes, bytearray, memoryview]


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
        ...}]."""
        return self._then(self._call("workers", {}, ("worker_list",)),
                          _get("workers", []))

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
        """Every stored model version (``model`` records), sorted."""
        return self._then(self._call("model_list", {}, ("models",)),
                          _get("models", []))

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
        """Stored data sets (those this key may read)."""
        return self._then(self._call("dataset_list", {}, ("datasets",)),
                          _get("datasets", []))

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
             queue: Optional[str] = None, limit: Optional[int] = None
             ) -> Any:
        """Jobs, newest first: [{job, state, attempts, ...}]."""
        return self._then(self._call("job_list", {"state": state,
                                                  "queue": queue,
                                                  "limit": limit},
                                     ("jobs",)), _get("jobs", []))

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
        """Dead letters: {total, jobs: [...]}, oldest death first."""
        return self._then(
            self._call("dead_list", {"queue": queue, "limit": limit},
                       ("dead_jobs",)),
            lambda h: {"total": h.get("total", 0), "jobs": h.get("jobs", [])})

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

    # ------------------------------------------------------------- admin

    def audit(self, since_ms: int = 0) -> Any:
        """The audit log since since_ms (admin keys): {entries, more}."""
        return self._call("audit_list", {"since_ms": since_ms}, ("audit",))

    def admin_reload(self) -> Any:
        """Reread the authorized keys (admin keys); returns their count."""
        return self._then(self._call("admin_reload", {}, ("ok",)),
                          _get("keys", 0))
