#!/usr/bin/python3
"""bench/fleet — echo jobs/s through one drover-broker as idle workers are
attached: N raw workers (pyzmq DEALERs that register, serving a queue no job
uses, and then stay quiet) beside one real drover-worker that runs the jobs.
Every dispatch and every worker message used to walk the whole worker
table, so a broker slowed down as an operator added workers.

For N in (0, 1000, 3000): `drover submit --echo 100 --count 30000`, the
median of 3 rounds, and its ratio to N = 0 from the same run. Writes
bench/results/fleet.json (--out). Figures, never assertions; ipc:// only,
processes stopped by the PIDs started here.

usage: fleet.py [--bin-dir DIR] [--broker-bin FILE] [--out FILE]
(--broker-bin: another build's drover-broker, the rest from --bin-dir)
"""

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import tempfile

import msgpack
import zmq

COUNTS = (0, 1000, 3000)


def rate(bin_dir: str, broker: str, n: int, rounds: int = 3) -> float:
    d = tempfile.mkdtemp(prefix="dv-fleet-")
    cep, wep = f"ipc://{d}/c.sock", f"ipc://{d}/w.sock"
    # Idle workers never heartbeat here: a minute of silence is allowed.
    b = subprocess.Popen([broker, "--client", cep,
                          "--worker", wep, "--heartbeat-ms", "60000"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True)
    ctx = zmq.Context()
    ctx.max_sockets = n + 64
    socks, w, rates = [], None, []
    try:
        assert b.stdout is not None and b.stdout.readline().startswith("READY")
        for i in range(n):
            s = ctx.socket(zmq.DEALER)
            s.setsockopt(zmq.LINGER, 0)
            s.connect(wep)
            s.send(msgpack.packb({"v": [1, 7], "t": "register", "rid": 1,
                                  "worker": f"idle{i}", "capacity": 1,
                                  "models": [], "queues": ["idle"]}))
            socks.append(s)
        for s in socks:
            s.recv()  # welcome
        w = subprocess.Popen([f"{bin_dir}/drover-worker", "--broker", wep,
                              "--heartbeat-ms", "60000"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             text=True)
        assert w.stdout is not None and w.stdout.readline().startswith("READY")
        for _ in range(rounds):
            out = subprocess.run([f"{bin_dir}/drover", "--broker", cep,
                                  "submit", "--echo", "100", "--count",
                                  "30000"], capture_output=True, text=True,
                                 timeout=300).stdout
            m = re.search(r"\(([\d.]+) jobs/s\)", out)
            rates.append(float(m.group(1)) if m else 0.0)
    finally:
        for p in (w, b):
            if p:
                p.terminate()
                p.wait()
        for s in socks:
            s.close()
        ctx.term()
        shutil.rmtree(d, ignore_errors=True)
    return sorted(rates)[len(rates) // 2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", default="build/release/bin")
    ap.add_argument("--broker-bin", default=None)
    ap.add_argument("--out", default="bench/results/fleet.json")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 2 * max(COUNTS) + 1024)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    counts = [n for n in COUNTS if 2 * n + 256 <= want]
    cells, base = [], 0.0
    print("echo jobs/s through one broker with idle workers attached "
          "(median of 3)")
    for n in counts:
        r = rate(a.bin_dir, a.broker_bin or f"{a.bin_dir}/drover-broker", n)
        base = base or r
        cells.append({"idle_workers": n, "jobs_per_s": r,
                      "x_no_idle": round(r / base, 3) if base else 0})
        print(f"  {n:5d} idle workers: {r:9.0f} jobs/s  "
              f"({r / base if base else 0:.2f} x none)", flush=True)
    with open(a.out, "w") as f:
        json.dump({"bench": "fleet", "cells": cells}, f, indent=2)
        f.write("\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
