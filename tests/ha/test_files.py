"""Model and data set files in a broker group (issue 18).

test_large_file_in_chunks: a data set whose stored file is larger than
DV_REPL_CHUNK_BYTES (4 MiB) is pushed through the group: it reaches the
other members as chunks (each its own Raft entry) and is completed by the
batch that acknowledges the push; every member then holds the same bytes.
The leader is killed: the new leader lists the data set and the killed
member, restarted, rebuilds the same file from the log.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import ha

CHUNK = 4 << 20  # DV_REPL_CHUNK_BYTES


def files(m: ha.Member) -> dict:
    """SHA-256 of every file under the member's datasets/ and models/."""
    out = {}
    for sub in ("datasets", "models"):
        root = m.data / sub
        for p in sorted(root.rglob("*")) if root.exists() else []:
            if p.is_file():
                out[str(p.relative_to(m.data))] = (
                    p.stat().st_size,
                    hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def same_files(g: ha.Group) -> dict:
    """Wait until every running member holds the same files; returns them."""
    g.caught_up()
    running = [m for m in g.members if m.proc and m.proc.alive()]

    def equal():
        views = [files(m) for m in running]
        return views[0] if all(v == views[0] for v in views) else None
    return ha.wait_for("every member holding the same files", equal, 60,
                       0.2)


def listed(m: ha.Member, name: str):
    h = ha.raw_request(m.cep, "dataset_list", 10)
    if not h or h.get("t") != "datasets":
        return None
    return next((d for d in h.get("datasets", []) if d.get("name") == name),
                None)


def test_large_file_in_chunks():
    g = ha.Group(workers=1)
    ok = False
    try:
        rows = 120_000  # 12 columns of 8 digits: well past one chunk
        lines = ["," .join(f"c{i}" for i in range(11)) + ",target"]
        for r in range(rows):
            lines.append(",".join(f"{(r * 7 + i) % 1000}.{i:04d}"
                                  for i in range(11)) + f",{r % 3}")
        csv = ("\n".join(lines) + "\n").encode()
        before = g.leader().cluster()["last"]
        with g.client() as c:
            rec = c.dataset_push("wide", csv)
        assert rec.get("rows") == rows, rec
        held = same_files(g)
        big = [size for k, (size, _) in held.items() if size > CHUNK]
        assert big, f"no stored file past one chunk: {held}"
        # It went as chunks: an entry each, besides the batch completing it.
        grew = g.leader().cluster()["last"] - before
        assert grew >= -(-big[0] // CHUNK) + 1, (grew, big)
        assert not any(k.endswith(".part") for k in held), held
        new = g.kill_leader()
        d = ha.wait_for("the data set on the new leader",
                        lambda: listed(new, "wide"), 30, 0.2)
        assert d.get("rows") == rows, d
        again = same_files(g)  # the killed member rebuilt from the log
        assert again == held, (again, held)
        ok = True
    finally:
        if not ok:
            print(g.logs())
        g.close(keep=not ok)
