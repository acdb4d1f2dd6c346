"""Blobs and the files channel of a broker group (issue 18).

test_wiped_member_gets_blobs: two data sets over DV_REPL_INLINE_BYTES are
pushed and one removed; the log is made long enough for a snapshot (the
first comes after 1,024 entries, 256 kept behind it): every member's blob of the
removed one is collected, the kept one's stays; a follower's data dir is
removed and the member restarted: it rejoins from the leader's snapshot
(which carries the file as a ref) and fetches the blob. Then the whole
group stops, member 1's blobs are removed, and members 1 and 2 start
(member 1 first, so it most likely leads): whichever leads, both serve
and hold the file (a leader lacking a blob fetches it from the followers
before it serves).

test_push_without_majority: both followers SIGSTOPped: a push of a large
data set is never acknowledged, and once they continue no member holds
it.

test_push_without_blob_majority: both followers are up but cannot store a
blob (their blobs folder replaced by a file): the push fails once
DV_BLOB_WAIT_MS (10 s) and 0.1 s per MiB passed, as a lost commit does,
and once their folders are back no member holds the file.

test_hostile_channel: a raw DEALER sends the leader's files channel
garbage, wrong types, unknown shas, offsets past the end, huge lengths,
unsolicited chunks, haves without hello, frames too many and a message too
large; the leader answers what it should (none, or one chunk of at most
DV_BLOB_CHUNK_BYTES with the file's bytes), ignores the rest, and the
group keeps replicating.
"""

from __future__ import annotations

import re
import shutil
import time

import msgpack
import zmq

import ha
from test_files import INLINE, check_blobs, files, listed, same_files, \
    wide_csv

#: past a snapshot (1024) and its trailing entries (256)
ENTRIES = 1024 + 256 + 100
CHUNK = 1 << 20  # DV_BLOB_CHUNK_BYTES


def produce_entries(g: ha.Group, hist: ha.History, last: int) -> None:
    """Echo jobs one at a time (a commit each) until the leader's log
    reaches index last."""
    n = 0
    while (g.leader().cluster() or {}).get("last", 0) < last:
        assert n < 5000, "too few log entries for a snapshot"
        p = ha.Producer(g, hist, f"b{n // 100}", "ha-blobs", window=1,
                        limit=100)
        p.run()
        assert p.error is None, repr(p.error)
        n += 100


def blob_shas(m: ha.Member) -> set:
    d = m.data / "raft" / "blobs"
    return {p.name for p in d.iterdir() if len(p.name) == 64} \
        if d.exists() else set()


def test_wiped_member_gets_blobs():
    g = ha.Group(workers=2)
    hist = ha.History(g.dir / "history.jsonl")
    ok = False
    try:
        with g.client() as c:
            c.dataset_push("keep", wide_csv(60_000, 2))
            c.dataset_push("drop", wide_csv(60_000, 3))
        held = same_files(g)
        big = {k: v for k, v in held.items() if v[0] > INLINE}
        keep = {v[1] for k, v in big.items() if "/keep/" in k}
        drop = {v[1] for k, v in big.items() if "/drop/" in k}
        assert keep and drop, held
        with g.client() as c:
            c.dataset_rm("drop")
        produce_entries(g, hist, ENTRIES)
        for m in g.members:  # collected at the snapshot, on every member
            ha.wait_for(f"member {m.id} collecting the removed blob",
                        lambda: not (blob_shas(m) & drop), 60, 0.2)
            assert keep <= blob_shas(m), (m.id, blob_shas(m))
        lead = g.leader()
        wiped = next(m for m in g.members if m is not lead)
        wiped.proc.kill()
        shutil.rmtree(wiped.data)
        wiped.start()
        held = same_files(g)
        snaps = [f.name for f in (wiped.data / "raft").iterdir()
                 if f.name.startswith("snapshot")]
        assert snaps, f"member {wiped.id} rebuilt without a snapshot"
        check_blobs(wiped, held)
        assert any("/keep/" in k for k in held), held
        # a leader that lacks a blob fetches it before serving
        for m in g.members:
            assert m.proc.stop() == 0, m.proc.tail()
        one, two, three = g.members
        shutil.rmtree(one.data / "raft" / "blobs")
        one.start()
        time.sleep(0.5)
        two.start()
        lead = g.leader(among=[one, two])
        print(f"member {lead.id} leads with members 1 and 2 up "
              f"(member 1's blobs were removed)")
        d = ha.wait_for("the data set on the leader",
                        lambda: listed(lead, "keep"), 60, 0.2)
        assert d.get("rows") == 60_000, d
        # member 1 fetched its blobs before serving if it leads, else from
        # the leader after the election: wait either way
        ha.wait_for("member 1's files", lambda: files(one) == held, 60, 0.2)
        check_blobs(one, held)
        ok = True
    finally:
        if not ok:
            print(g.logs())
        g.close(keep=not ok)


def test_push_without_majority():
    g = ha.Group(workers=0)
    ok = False
    try:
        lead = g.leader()
        rest = [m for m in g.members if m is not lead]
        for m in rest:
            m.proc.pause()
        failed = None
        try:
            with g.client(timeout=15, connect_timeout=15) as c:
                c.dataset_push("lonely", wide_csv(60_000, 4))
        except ha.errors.DroverError as e:
            failed = e
        assert failed is not None, "a push without a majority acknowledged"
        for m in rest:
            m.proc.resume()
        same_files(g)
        for m in g.members:
            assert not any("lonely" in k for k in files(m)), (m.id,
                                                               files(m))
        print(f"refused: {failed!r}")
        ok = True
    finally:
        if not ok:
            print(g.logs())
        g.close(keep=not ok)


def test_push_without_blob_majority():
    g = ha.Group(workers=0)
    ok = False
    try:
        lead = g.leader()
        rest = [m for m in g.members if m is not lead]
        for m in rest:  # (root ignores permissions: a file, not a chmod)
            blobs = m.data / "raft" / "blobs"
            blobs.rename(m.data / "raft" / "blobs.away")
            blobs.write_bytes(b"")
        failed = None
        t0 = time.monotonic()
        try:
            with g.client(timeout=40, connect_timeout=40) as c:
                c.dataset_push("unheld", wide_csv(60_000, 7))
        except ha.errors.DroverError as e:
            failed = e
        took = time.monotonic() - t0
        assert failed is not None, "acknowledged without a majority's blob"
        assert took >= 10, took
        for m in rest:
            blobs = m.data / "raft" / "blobs"
            blobs.unlink()
            (m.data / "raft" / "blobs.away").rename(blobs)
        same_files(g)
        for m in g.members:
            assert not any("unheld" in k for k in files(m)), (m.id,
                                                              files(m))
        log = lead.log.read_text(errors="replace")
        assert "reached no majority" in log, lead.proc.tail()
        print(f"refused after {took:.1f} s: {failed!r}")
        ok = True
    finally:
        if not ok:
            print(g.logs())
        g.close(keep=not ok)


def files_endpoint(m: ha.Member) -> str:
    """The member's files channel, from its log (its last start)."""
    eps = re.findall(r"files channel on (tcp://\S+)",
                     m.log.read_text(errors="replace"))
    assert eps, m.proc.tail()
    return eps[-1]


def test_hostile_channel():
    g = ha.Group(workers=0)
    ok = False
    ctx = zmq.Context.instance()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    try:
        with g.client() as c:
            c.dataset_push("target", wide_csv(60_000, 5))
        held = same_files(g)
        lead = g.leader()
        rel, (size, sha_hex) = next((k, v) for k, v in held.items()
                                    if v[0] > INLINE)
        data = (lead.data / rel).read_bytes()
        sha = bytes.fromhex(sha_hex)
        s.connect(files_endpoint(lead))

        def send(obj) -> None:
            s.send(msgpack.packb(obj, use_bin_type=True))

        def reply() -> dict:
            assert s.poll(10_000), "no answer from the files channel"
            frames = s.recv_multipart()
            assert len(frames) == 1, frames
            return msgpack.unpackb(frames[0], raw=False)

        unknown = b"\x01" * 32
        ignored = [
            b"\xc1\xff not msgpack",
            msgpack.packb([1, 2, 3]),
            msgpack.packb({"t": 5}),
            msgpack.packb({"t": "nonsense", "sha": sha}),
            msgpack.packb({"t": "get", "sha": "x" * 32, "off": 0,
                           "len": 10}),
            msgpack.packb({"t": "get", "sha": sha[:31], "off": 0,
                           "len": 10}, use_bin_type=True),
            msgpack.packb({"t": "get", "sha": sha, "off": -1, "len": -1},
                          use_bin_type=True),
            msgpack.packb({"t": "get", "sha": sha, "off": "0", "len": 1.5},
                          use_bin_type=True),
            msgpack.packb({"t": "chunk", "sha": sha, "off": 0,
                           "data": b"x" * 10}, use_bin_type=True),
            msgpack.packb({"t": "chunk", "sha": unknown, "off": 99,
                           "data": 7}, use_bin_type=True),
            msgpack.packb({"t": "have", "sha": sha}, use_bin_type=True),
            msgpack.packb({"t": "none", "sha": sha}, use_bin_type=True),
            msgpack.packb({"t": "offer", "sha": sha, "size": 1 << 60},
                          use_bin_type=True),
            msgpack.packb({"t": "hello", "id": 0}),
            msgpack.packb({"t": "hello", "id": "2"}),
            msgpack.packb({"t": "hello", "id": 1 << 40}),
        ]
        for raw in ignored:
            s.send(raw)
        s.send_multipart([b"a", b"b", b"c"])  # frames too many
        # none of those was answered: the next answer is this get's
        send({"t": "get", "sha": unknown, "off": 0, "len": 10})
        r = reply()
        assert r == {"t": "none", "sha": unknown}, r
        send({"t": "get", "sha": sha, "off": size + 10, "len": 10})
        assert reply() == {"t": "none", "sha": sha}
        send({"t": "get", "sha": sha, "off": 0, "len": 0})
        assert reply() == {"t": "none", "sha": sha}
        send({"t": "get", "sha": sha, "off": 0, "len": (1 << 64) - 1})
        r = reply()
        assert r["t"] == "chunk" and r["off"] == 0, r["t"]
        assert r["data"] == data[:CHUNK], len(r["data"])
        send({"t": "get", "sha": sha, "off": size - 5, "len": 100})
        r = reply()
        assert r["data"] == data[-5:] and r["off"] == size - 5, r
        # a hello, then a have for a sha nobody offered: ignored
        send({"t": "hello", "id": 2})
        send({"t": "have", "sha": unknown})
        # too large for the channel: the connection is dropped
        s.send(b"\x00" * (3 << 20))
        s.close(0)
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(files_endpoint(lead))
        send({"t": "get", "sha": unknown, "off": 0, "len": 1})
        assert reply() == {"t": "none", "sha": unknown}
        # it still leads, serves and replicates
        assert g.leader() is lead
        with g.client() as c:
            c.dataset_push("after", wide_csv(60_000, 6))
        after = same_files(g)
        assert any("/after/" in k for k in after), after
        ok = True
    finally:
        s.close(0)
        if not ok:
            print(g.logs())
        g.close(keep=not ok)
