"""Model and data set files in a broker group (issue 18).

A file over DV_REPL_INLINE_BYTES (4 MiB) travels outside the Raft log: the
entry carries its SHA-256 and size, the bytes go member to member on the
files channel as a blob (DIR/raft/blobs/SHA), and the file is a hard link
to it.

test_large_files_as_blobs: a 12 MB data set and a model over 4 MiB pushed
to a group of 3: the log grows by a few entries and far fewer bytes than
the files, their bytes are in no segment file, every member holds the same
bytes (as links to its blobs); the leader is killed: the new one lists the
data set and infers with the model, and the killed member, restarted,
places the files again from its blobs.

test_stopped_follower_fetches: a follower SIGSTOPped during a push (the
leader and the other follower are a majority: acknowledged) gets the file
once continued.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from pathlib import Path

import numpy as np

import ha

INLINE = 4 << 20  # DV_REPL_INLINE_BYTES
DROVER = str(Path(ha.BROKER).parent / "drover")


def files(m: ha.Member) -> dict:
    """(size, SHA-256) of every file under the member's datasets/ and
    models/."""
    out = {}
    for sub in ("datasets", "models"):
        root = m.data / sub
        for p in sorted(root.rglob("*")) if root.exists() else []:
            if p.is_file():
                out[str(p.relative_to(m.data))] = (
                    p.stat().st_size,
                    hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def same_files(g: ha.Group, among=None) -> dict:
    """Wait until every running member holds the same files; returns them."""
    g.caught_up()
    running = [m for m in (among or g.members)
               if m.proc and m.proc.alive() and not m.proc.stopped]

    def equal():
        views = [files(m) for m in running]
        return [views[0]] if all(v == views[0] for v in views) else None
    return ha.wait_for("every member holding the same files", equal, 60,
                       0.2)[0]


def segments(m: ha.Member) -> int:
    """Bytes of the member's Raft log segment files (open and closed)."""
    raft = m.data / "raft"
    return sum(p.stat().st_size for p in raft.iterdir()
               if p.is_file() and (p.name.startswith("open-")
                                   or p.name[:1].isdigit()))


def in_segments(m: ha.Member, sample: bytes) -> bool:
    raft = m.data / "raft"
    return any(sample in p.read_bytes() for p in raft.iterdir()
               if p.is_file() and (p.name.startswith("open-")
                                   or p.name[:1].isdigit()))


def listed(m: ha.Member, name: str):
    h = ha.raw_request(m.cep, "dataset_list", 10)
    if not h or h.get("t") != "datasets":
        return None
    return next((d for d in h.get("datasets", []) if d.get("name") == name),
                None)


def wide_csv(rows: int, seed: int = 0) -> bytes:
    """A data set of 11 features: 125,000 rows are ~12.5 MB."""
    lines = [",".join(f"c{i}" for i in range(11)) + ",target"]
    for r in range(rows):
        lines.append(",".join(f"{(r * 7 + i + seed) % 1000}.{i:04d}"
                              for i in range(11)) + f",{r % 3}")
    return ("\n".join(lines) + "\n").encode()


def big_model(tmp: Path) -> bytes:
    """An mlp on iris with hidden layers 1100,1100: ~4.9 MB of weights."""
    out = tmp / "big.drvm"
    root = Path(__file__).resolve().parents[2]
    subprocess.run([DROVER, "local", "train", "--algo", "mlp", "--data",
                    str(root / "data" / "iris.csv"), "--hidden", "1100,1100",
                    "--epochs", "1", "--threads", "1", "--out", str(out)],
                   check=True, timeout=120, capture_output=True)
    return out.read_bytes()


def check_blobs(m: ha.Member, held: dict) -> None:
    """Each file over INLINE is a hard link to the member's blob of it."""
    for rel, (size, sha) in held.items():
        if size > INLINE:
            blob = m.data / "raft" / "blobs" / sha
            assert blob.exists(), (m.id, rel, sha)
            assert os.stat(m.data / rel).st_ino == blob.stat().st_ino, \
                (m.id, rel)


def test_large_files_as_blobs():
    g = ha.Group(workers=1)
    ok = False
    try:
        model = big_model(g.dir)
        assert len(model) > INLINE, len(model)
        csv = wide_csv(125_000)
        assert len(csv) > 12_000_000, len(csv)
        g.caught_up()
        before = g.leader().cluster()["last"]
        seg0 = {m.id: segments(m) for m in g.members}
        t0 = time.monotonic()
        with g.client() as c:
            rec = c.dataset_push("wide", csv)
            pushed = time.monotonic() - t0
            c.model_push("big", model)
        assert rec.get("rows") == 125_000, rec
        held = same_files(g)
        big = {k: v for k, v in held.items() if v[0] > INLINE}
        assert len(big) >= 2, f"a stored file under 4 MiB: {held}"
        grew = g.leader().cluster()["last"] - before
        seg = {m.id: segments(m) - seg0[m.id] for m in g.members}
        total = sum(size for size, _ in big.values())
        print(f"12 MB data set pushed in {pushed:.2f} s; log +{grew} "
              f"entries, segment bytes +{seg} for {total} bytes of files")
        assert not any(".part" in k or ".tmp." in k for k in held), held
        assert grew < 40, grew  # a few batches, not one per chunk
        assert all(b < total // 8 for b in seg.values()), (seg, total)
        for m in g.members:
            check_blobs(m, held)
            for rel in big:  # its bytes are in no segment
                data = (m.data / rel).read_bytes()
                mid = len(data) // 2
                assert not in_segments(m, data[mid:mid + 64]), (m.id, rel)
        new = g.kill_leader()
        d = ha.wait_for("the data set on the new leader",
                        lambda: listed(new, "wide"), 30, 0.2)
        assert d.get("rows") == 125_000, d
        with g.client() as c:
            p = c.predict("big", np.array([[5.1, 3.5, 1.4, 0.2]],
                                          np.float32))
            assert p.output.shape == (1, 3), p.output.shape
        again = same_files(g)  # the killed member placed them again
        assert again == held, (again, held)
        for m in g.members:
            check_blobs(m, held)
        ok = True
    finally:
        if not ok:
            print(g.logs())
        g.close(keep=not ok)


def test_stopped_follower_fetches():
    g = ha.Group(workers=0)
    ok = False
    try:
        lead = g.leader()
        stopped = next(m for m in g.members if m is not lead)
        stopped.proc.pause()
        with g.client() as c:  # the leader and one follower: a majority
            rec = c.dataset_push("while-stopped", wide_csv(60_000, 1))
        assert rec.get("rows") == 60_000, rec
        up = [m for m in g.members if m is not stopped]
        held = same_files(g, up)
        assert any(size > INLINE for size, _ in held.values()), held
        assert files(stopped) != held
        stopped.proc.resume()
        again = same_files(g)  # it fetches the blob it lacked
        assert again == held, (again, held)
        check_blobs(stopped, held)
        ok = True
    finally:
        if not ok:
            print(g.logs())
        g.close(keep=not ok)
