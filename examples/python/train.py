#!/usr/bin/python3
"""train.py — train a model on a worker from Python, then use it.

    drover up &
    PYTHONPATH=clients/python python3 examples/python/train.py

Stores the digits training split as a data set, trains an MLP on it through
the queue while printing its progress, evaluates the new version on the
test split (also on a worker), points the alias 'example-digits@prod' at it
and runs a few test rows through the alias.
"""

import os
import sys

import numpy as np

import drover

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("DV_DATA_DIR", os.path.join(HERE, "..", "..", "data"))


def show(p: drover.Progress) -> None:
    print(f"  epoch {p.epoch}/{p.epochs} loss {p.loss:.4f} "
          f"({p.ms} ms, ~{p.eta_ms} ms left)")


def main() -> None:
    with drover.Client() as c:
        ds = c.dataset_push("example-digits",
                            os.path.join(DATA, "digits_train.csv"))
        print(f"data set {ds['name']}@{ds['version']}: {ds['rows']} rows, "
              f"{ds['columns']} columns")
        job = c.submit_train("example-digits",
                             dataset=f"{ds['name']}@{ds['version']}",
                             algo="mlp", hidden=[64], epochs=40,
                             on_progress=show)
        print(f"training as job {job.id}")
        res = job.result(timeout=600)
        print(f"registered {res.model}")
        m = c.evaluate(res.model, os.path.join(DATA, "digits_test.csv"))
        print(f"test accuracy {m['accuracy']:.4f}, f1_macro "
              f"{m['f1_macro']:.4f} on {m['rows']} rows")
        version = int(res.model.split("@")[1])
        c.model_alias("example-digits", "prod", version)
        raw = np.loadtxt(os.path.join(DATA, "digits_test.csv"),
                         delimiter=",", skiprows=1, dtype=np.float32)
        pred = c.predict("example-digits@prod", raw[:5, :-1])
        print(f"example-digits@prod -> {pred.model}: predicted "
              f"{pred.labels}, true {raw[:5, -1].astype(int).tolist()}")


if __name__ == "__main__":
    try:
        main()
    except drover.DroverError as e:
        sys.exit(f"train: {e}")
