#!/usr/bin/python3
"""producer.py — submit work to a Drover broker from Python.

Run against a local cluster:

    drover up &                                   # broker + workers
    PYTHONPATH=clients/python python3 examples/python/producer.py [N]

It pushes a model trained with `drover local train` if none named
'example-iris' exists (or trains one through the queue), runs the iris test
split through it in requests of 8 rows (many in flight), submits N echo
jobs pipelined with submit_many, and prints what came back. $DROVER_BROKER
picks another broker; $DROVER_KEY / $DROVER_BROKER_KEY turn CURVE on.
"""

import os
import sys
import time

import numpy as np

import drover

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("DV_DATA_DIR", os.path.join(HERE, "..", "..", "data"))


def ensure_model(c: drover.Client) -> str:
    try:
        m = c.model("example-iris")
        return f"{m['name']}@{m['version']}"
    except drover.errors.NoModel:
        res = c.train("example-iris", os.path.join(DATA, "iris_train.csv"),
                      algo="softmax", timeout=120)
        print(f"trained {res.model} on a worker")
        return res.model


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    with drover.Client() as c:
        print(f"connected to {c.broker_name} at {c.endpoint} "
              f"(protocol 1.{c.broker_minor})")
        ref = ensure_model(c)
        raw = np.loadtxt(os.path.join(DATA, "iris_test.csv"), delimiter=",",
                         skiprows=1, dtype=np.float32)
        X, y = raw[:, :-1], raw[:, -1].astype(int)
        pred = c.predict(ref, X, batch=8)
        acc = np.mean(pred.class_index == y)
        print(f"{ref}: {len(X)} rows, accuracy {acc:.3f}; first row "
              f"{dict(zip(pred.classes, pred.output[0].round(3)))}")

        t0 = time.monotonic()
        window, jobs, done = 4096, [], 0
        sent = 0
        while done < n:
            if sent < n and len(jobs) - done <= window - 256:
                k = min(256 * 4, n - sent)
                jobs += c.submit_many("echo", [b"ping"] * k, queue="example")
                sent += k
            jobs[done].result(30)
            done += 1
        dt = time.monotonic() - t0
        print(f"{n} echo jobs in {dt:.2f} s: {n / dt:,.0f} jobs/s")
        q = c.status()["queues"]["example"]
        print(f"queue 'example': done {q['done']}, failed {q['failed']}")


if __name__ == "__main__":
    try:
        main()
    except drover.DroverError as e:
        sys.exit(f"producer: {e}")
