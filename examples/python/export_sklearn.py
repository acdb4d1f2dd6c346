#!/usr/bin/python3
"""Train a scikit-learn Pipeline, export it as a Drover model, and serve it.

    # a local cluster in another terminal (prints READY ipc:///tmp/dv/c):
    drover up --workers 1 --endpoint ipc:///tmp/dv/c --data /tmp/dv/data
    # then:
    PYTHONPATH=clients/python /usr/bin/python3 \\
        examples/python/export_sklearn.py --broker ipc:///tmp/dv/c

Steps: fit StandardScaler + LogisticRegression on data/iris_train.csv, write
iris-sklearn.drvm with drover.export.from_sklearn, check it in-process with
`drover local predict`, then -- given a broker (--broker or $DROVER_BROKER)
-- push it with `drover models push` and run the test set through the
queue with `drover infer`, comparing the served probabilities with
scikit-learn's. Without a broker it stops after the local check.

Needs python3-sklearn, python3-numpy, python3-msgpack, and the `drover`
CLI ($DROVER_BIN, else `drover` on PATH).
"""

import argparse
import csv
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from drover import export

ROOT = Path(__file__).resolve().parents[2]


def read_csv(path):
    """(feature names, X, target column as text) of a bundled CSV."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    X = np.array([[float(v) for v in r[:-1]] for r in rows[1:]])
    return rows[0][:-1], X, [r[-1] for r in rows[1:]]


def probabilities(csv_text):
    """The p_* columns of `drover local predict` / `drover infer` output."""
    rows = list(csv.reader(io.StringIO(csv_text)))
    return np.array([[float(v) for v in r[2:]] for r in rows[1:]])


def drover(exe, *args):
    r = subprocess.run([exe, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"drover {' '.join(args)} failed:\n{r.stderr}")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("DV_DATA_DIR",
                                                     ROOT / "data"),
                    help="folder of the bundled CSVs (default: data/)")
    ap.add_argument("--broker", default=os.environ.get("DROVER_BROKER"),
                    help="broker endpoint to push to and infer through")
    ap.add_argument("--name", default="iris-sklearn",
                    help="model name in the broker's registry")
    ap.add_argument("--out", default="iris-sklearn.drvm",
                    help="where to write the model file")
    args = ap.parse_args()
    exe = os.environ.get("DROVER_BIN") or shutil.which("drover")
    if not exe:
        sys.exit("no drover CLI: set DROVER_BIN or put drover on PATH")
    train_csv = Path(args.data) / "iris_train.csv"
    test_csv = Path(args.data) / "iris_test.csv"

    # 1. Train in scikit-learn (classes 0, 1, 2: numeric labels).
    names, X, y = read_csv(train_csv)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(X, [int(v) for v in y])
    _, X_test, _ = read_csv(test_csv)
    want = model.predict_proba(X_test)

    # 2. Export: one softmax layer behind a "standard" scaler.
    export.from_sklearn(model, names, target="target", path=args.out)
    print(drover(exe, "local", "inspect", args.out).stdout, end="")

    # 3. In-process check: Drover computes in float32.
    local = probabilities(drover(exe, "local", "predict", "--model",
                                 args.out, "--data", str(test_csv)).stdout)
    print(f"local predict: max |p - sklearn p| = "
          f"{np.abs(local - want).max():.2g}")

    if not args.broker:
        print("no --broker given: start `drover up` and pass its endpoint "
              "to push and serve the model")
        return
    # 4. Push to the broker's registry and serve through the queue.
    print(drover(exe, "models", "push", args.out, "--name", args.name,
                 "--broker", args.broker).stdout, end="")
    served = drover(exe, "infer", "--model", args.name, "--data",
                    str(test_csv), "--broker", args.broker)
    got = probabilities(served.stdout)
    print(served.stderr, end="")
    print(f"served: {len(got)} rows, max |p - sklearn p| = "
          f"{np.abs(got - want).max():.2g}")
    if np.abs(got - want).max() > 1e-5:
        sys.exit("served probabilities differ from scikit-learn's")


if __name__ == "__main__":
    main()
