#!/usr/bin/python3
"""bench_python — the Python client's throughput beside the C client's.

Starts its own broker (ipc endpoints in a temp dir, --data) and workers,
then measures, against that same cluster in the same run:

  echo:  jobs/s of one Python process submitting 1-byte echo jobs
         pipelined (submit_many, up to --window in flight), durable
         (commit) and durability none; beside `drover submit --echo 1
         --count N` (libdrover, window 10,000) with the same durability.
  infer: rows/s of predict() on MLP 256-512-256-10 (bench/serve's model:
         one epoch of `drover local train` on generated data, 256 -> 10
         classes) at B = 1 and 256 rows per request, every request in
         flight at once as `drover infer --batch B` does it; beside
         `drover infer --batch B` on the same rows (its own timer, which
         excludes reading the CSV).

Each figure is the best of --repeat runs (the machine is shared). Writes
bench/results/python.json and prints the goals of issue 16: echo >= 25k
jobs/s, infer at 256 rows/request >= 0.9 x the C client.

    DROVER_BIN=... DROVER_BROKER_BIN=... DROVER_WORKER_BIN=... \\
        PYTHONPATH=clients/python /usr/bin/python3 bench/python/bench_python.py
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "clients" / "python"))
import drover  # noqa: E402


def binary(env: str, name: str) -> str:
    return os.environ.get(env) or str(ROOT / "build" / "release" / "bin" /
                                      name)


DROVER = binary("DROVER_BIN", "drover")
BROKER = binary("DROVER_BROKER_BIN", "drover-broker")
WORKER = binary("DROVER_WORKER_BIN", "drover-worker")


def start(args, log):
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log,
                         start_new_session=True)
    line = b""
    end = time.monotonic() + 30
    while time.monotonic() < end:
        line = p.stdout.readline()
        if line.startswith(b"READY") or not line:
            break
    if not line.startswith(b"READY"):
        p.kill()
        raise SystemExit(f"{args[0]} did not start")
    threading.Thread(target=lambda: p.stdout.read(), daemon=True).start()
    return p


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def echo_python(c: drover.Client, n: int, window: int, dur: str) -> float:
    q = collections.deque()
    sent = done = 0
    t0 = time.perf_counter()
    while done < n:
        if sent < n and len(q) <= window - 1024:
            k = min(1024, n - sent)
            q.extend(c.submit_many("echo", [b"x"] * k, queue="bench-py",
                                   durability=dur))
            sent += k
        q.popleft().result(60)
        done += 1
    return n / (time.perf_counter() - t0)


def echo_c(cep: str, n: int, dur: str) -> float:
    r = subprocess.run([DROVER, "submit", "--echo", "1", "--count", str(n),
                        "--durability", dur, "--queue", "bench-c",
                        "--broker", cep], capture_output=True, timeout=300)
    m = re.search(rb"\(([\d.]+) jobs/s\)", r.stdout + r.stderr)
    if r.returncode != 0 or not m:
        raise SystemExit(f"drover submit failed: {r.stderr.decode()}")
    return float(m.group(1))


def infer_python(c: drover.Client, ref: str, X: np.ndarray, b: int) -> float:
    n_req = -(-len(X) // b)
    t0 = time.perf_counter()
    out = c.predict(ref, X, batch=b, window=n_req, timeout=300).output
    dt = time.perf_counter() - t0
    assert out.shape[0] == len(X)
    return len(X) / dt


def infer_c(cep: str, ref: str, csv: Path, b: int, rows: int) -> float:
    r = subprocess.run([DROVER, "infer", "--model", ref, "--data", str(csv),
                        "--batch", str(b), "--out", os.devnull,
                        "--broker", cep], capture_output=True, timeout=600)
    m = re.search(rb"(\d+) rows in (\d+) jobs on \S+: ([\d.]+) s", r.stderr)
    if r.returncode != 0 or not m:
        raise SystemExit(f"drover infer failed: {r.stderr.decode()}")
    assert int(m.group(1)) == rows
    return rows / float(m.group(3))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=100000)
    ap.add_argument("--window", type=int, default=4096)
    ap.add_argument("--rows-b1", type=int, default=20000)
    ap.add_argument("--rows-b256", type=int, default=131072)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" /
                                         "python.json"))
    a = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="dvbp-"))
    cep, wep = f"ipc://{tmp}/c", f"ipc://{tmp}/w"
    log = open(tmp / "log", "wb")
    procs = []
    try:
        procs.append(start([BROKER, "--client", cep, "--worker", wep,
                            "--data", str(tmp / "data")], log))
        blas = max(1, (os.cpu_count() or 1) // a.workers)
        for i in range(a.workers):
            procs.append(start([WORKER, "--broker", wep, "--name", f"w{i}",
                                "--blas-threads", str(blas)], log))
        # MLP 256-512-256-10, as bench/serve builds it
        rng = np.random.default_rng(2026)
        n_train = 4096
        Xtr = rng.standard_normal((n_train, 256)).astype(np.float32)
        W = rng.standard_normal((256, 10)).astype(np.float32)
        ytr = np.argmax(Xtr @ W, axis=1)
        train_csv = tmp / "train.csv"
        train_csv.write_bytes(drover.to_csv(Xtr, ytr))
        model_file = tmp / "mlp.drvm"
        subprocess.run([DROVER, "local", "train", "--algo", "mlp",
                        "--hidden", "512,256", "--batch", "256", "--epochs",
                        "1", "--patience", "0", "--data", str(train_csv),
                        "--out", str(model_file)], check=True,
                       capture_output=True)
        results = {"bench": "python", "transport": "ipc",
                   "workers": a.workers, "cpus": os.cpu_count(),
                   "python": platform.python_version(),
                   "pyzmq": __import__("zmq").__version__,
                   "repeat": a.repeat}
        with drover.Client(cep, timeout=120) as c:
            ref = "bench-mlp@" + str(c.model_push("bench-mlp",
                                                  str(model_file))["version"])
            echo = {"jobs": a.jobs, "payload_bytes": 1,
                    "python_window": a.window}
            for dur in ("commit", "none"):
                echo_python(c, 5000, a.window, dur)  # warm up
                py = max(echo_python(c, a.jobs, a.window, dur)
                         for _ in range(a.repeat))
                cc = max(echo_c(cep, a.jobs, dur) for _ in range(a.repeat))
                echo[dur] = {"python_jobs_per_s": round(py),
                             "c_jobs_per_s": round(cc),
                             "python_over_c": round(py / cc, 3)}
                print(f"echo {dur:6s}: python {py:9,.0f} jobs/s   "
                      f"C {cc:9,.0f} jobs/s   ({py / cc:.2f} x)", flush=True)
            results["echo"] = echo
            infer = {"model": "mlp 256-512-256-10"}
            for b, rows in ((1, a.rows_b1), (256, a.rows_b256)):
                X = rng.standard_normal((rows, 256)).astype(np.float32)
                csv = tmp / f"x{b}.csv"
                csv.write_bytes(drover.to_csv(X))
                infer_python(c, ref, X[:min(rows, 2048)], b)  # warm up
                py = max(infer_python(c, ref, X, b) for _ in range(a.repeat))
                cc = max(infer_c(cep, ref, csv, b, rows)
                         for _ in range(a.repeat))
                infer[f"b{b}"] = {"rows": rows,
                                  "python_rows_per_s": round(py),
                                  "c_rows_per_s": round(cc),
                                  "python_over_c": round(py / cc, 3)}
                print(f"infer B={b:<3d}: python {py:9,.0f} rows/s   "
                      f"C {cc:9,.0f} rows/s   ({py / cc:.2f} x)", flush=True)
            results["infer"] = infer
        best_echo = max(results["echo"][d]["python_jobs_per_s"]
                        for d in ("commit", "none"))
        ratio = results["infer"]["b256"]["python_over_c"]
        results["goals"] = {
            "echo_jobs_per_s": best_echo, "echo_goal": 25000,
            "echo_met": best_echo >= 25000,
            "infer_256_over_c": ratio, "infer_goal": 0.9,
            "infer_met": ratio >= 0.9}
        print(f"goals (issue 16): echo {best_echo:,} jobs/s (>= 25,000: "
              f"{'met' if best_echo >= 25000 else 'NOT met'}); infer B=256 "
              f"{ratio:.2f} x C (>= 0.9: "
              f"{'met' if ratio >= 0.9 else 'NOT met'})")
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {a.out}")
    finally:
        for p in reversed(procs):
            stop(p)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
