#!/usr/bin/python3
"""Model quality parity: Drover's MLP beside scikit-learn's and PyTorch's.

Generates a grid of synthetic problems (classification: classes, width,
informative share, label noise, imbalance; regression: make_regression and
Friedman #1 with noise), trains the same architecture with the same
hyper-parameters in all three over several seeds, and writes the mean and
spread (min..max) of test accuracy or R^2 and of training time per epoch to
bench/results/parity.json, with a table on stdout. Figures, never assertions.

Same hyper-parameters means:
  * features standardized on the training split (Drover: --scale standard;
    the others get StandardScaler's output);
  * a regression target standardized on the training split for all three
    (Drover does it inside the model; the others predict the scaled target,
    mapped back before scoring);
  * Adam (beta 0.9/0.999, eps 1e-8), the same lr, batch and epochs, a fresh
    shuffle every epoch, no early stopping (Drover --patience 0, sklearn
    n_iter_no_change > epochs) -- or, with --early-stopping, up to 200 epochs
    with validation-split early stopping in all three: 10% held out,
    patience 10, tol 1e-4, the best epoch's model kept (Drover
    --validation-fraction 0.1, which judges the held-out loss; scikit-learn
    early_stopping=True, which judges held-out accuracy or R^2; PyTorch
    written here the way Drover does it);
  * L2: Drover's --l2 is PyTorch's Adam weight_decay (l2 * W added to the
    gradient of the mean loss); scikit-learn's alpha adds alpha * W / batch
    (and halves the MSE), so alpha = l2 * batch (classification) or
    l2 * batch / 2 (regression) is the same penalty.

Drover runs as `drover local train` / `drover local eval --json` on CSV files
written here (DROVER_BIN, else build/release/bin/drover); its time per epoch
is the training time the CLI reports (CSV parse excluded) over the epochs run;
the others' is the wall time of their fit (float64 scikit-learn, float32
PyTorch), all on --threads BLAS/OpenMP threads.
Usage: parity.py [--quick] [--early-stopping] [--seeds N] [--threads N]
       [--out FILE] [--only NAME,...] [--frameworks drover,sklearn,torch]
       [--drover-args "..."]
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Problem:
    """One generated data set and the model trained on it."""

    name: str
    kind: str  # "clf" or "reg"
    gen: dict  # generator and its arguments
    hidden: tuple[int, ...]
    epochs: int
    batch: int = 200
    lr: float = 1e-3
    l2: float = 0.0
    rows: int = 10000  # before the 80/20 split
    early_stop: bool = False  # validation-split early stopping (ES_*)


# Each problem is <= 20k rows so a full run stays within ~10 min on 2 cores.
GRID = [
    Problem("clf2-d8", "clf",
            dict(n_features=8, n_informative=4, n_redundant=2, n_classes=2,
                 flip_y=0.01), (64,), 20, rows=5000),
    Problem("clf3-d32-noise", "clf",
            dict(n_features=32, n_informative=8, n_redundant=4, n_classes=3,
                 flip_y=0.10), (128,), 20, rows=8000),
    Problem("clf5-d64-imb", "clf",
            dict(n_features=64, n_informative=16, n_redundant=8, n_classes=5,
                 flip_y=0.02, weights=[0.5, 0.2, 0.15, 0.1, 0.05]),
            (128, 64), 20, rows=10000),
    Problem("clf10-d256-i64", "clf",
            dict(n_features=256, n_informative=64, n_redundant=0,
                 n_classes=10, flip_y=0.01), (256, 512, 256), 3, batch=256,
            rows=20000),
    Problem("clf20-d128-i32", "clf",
            dict(n_features=128, n_informative=32, n_redundant=16,
                 n_classes=20, flip_y=0.02), (256, 128), 10, rows=20000),
    Problem("clf4-d512-i16", "clf",
            dict(n_features=512, n_informative=16, n_redundant=16,
                 n_classes=4, flip_y=0.05), (128,), 10, rows=8000),
    Problem("clf3-d16-l2", "clf",
            dict(n_features=16, n_informative=10, n_redundant=2, n_classes=3,
                 flip_y=0.05), (64, 64), 30, l2=1e-3, rows=5000),
    Problem("reg-d20-i10", "reg",
            dict(gen="regression", n_features=20, n_informative=10,
                 noise=10.0), (64,), 30, rows=5000),
    Problem("reg-d100-i20-noisy", "reg",
            dict(gen="regression", n_features=100, n_informative=20,
                 noise=50.0), (128, 64), 20, rows=10000),
    Problem("friedman1", "reg",
            dict(gen="friedman1", n_features=10, noise=1.0), (100,), 50,
            rows=5000),
]
QUICK = ["clf3-d32-noise", "reg-d20-i10"]
# --early-stopping: the problems that train in seconds, up to ES_EPOCHS.
ES_GRID = ["clf2-d8", "clf3-d32-noise", "clf5-d64-imb", "clf3-d16-l2",
           "reg-d20-i10", "friedman1"]
ES_EPOCHS, ES_FRACTION, ES_PATIENCE, ES_TOL = 200, 0.1, 10, 1e-4


def make_data(p: Problem, seed: int):
    """Return standardized X_train, X_test, y_train, y_test (80/20)."""
    import numpy as np
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    g = dict(p.gen)
    if p.kind == "clf":
        x, y = datasets.make_classification(n_samples=p.rows,
                                            random_state=seed, **g)
    elif g.pop("gen") == "regression":
        x, y = datasets.make_regression(n_samples=p.rows, random_state=seed,
                                        **g)
    else:
        x, y = datasets.make_friedman1(n_samples=p.rows, random_state=seed,
                                       **g)
    strat = y if p.kind == "clf" else None
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2,
                                          random_state=seed, stratify=strat)
    return (xtr.astype(np.float32), xte.astype(np.float32), ytr, yte)


def write_csv(path: Path, x, y, clf: bool) -> None:
    """Header f0..fN,target; classes as integers."""
    import numpy as np

    cols = [f"f{j}" for j in range(x.shape[1])] + ["target"]
    yy = y.astype(np.int64) if clf else y
    data = np.column_stack([x.astype(np.float64), yy])
    fmt = ["%.9g"] * x.shape[1] + (["%d"] if clf else ["%.9g"])
    np.savetxt(path, data, delimiter=",", header=",".join(cols),
               comments="", fmt=fmt)


def run_drover(p: Problem, seed: int, data, tmp: Path, threads: int,
               extra_args: list[str]) -> tuple[float, float, int]:
    """Train and evaluate with the drover CLI; returns (score, s/epoch,
    epochs run)."""
    xtr, xte, ytr, yte = data
    clf = p.kind == "clf"
    train, test = tmp / "train.csv", tmp / "test.csv"
    write_csv(train, xtr, ytr, clf)
    write_csv(test, xte, yte, clf)
    model = tmp / "m.drvm"
    drover = os.environ.get("DROVER_BIN",
                            str(REPO / "build/release/bin/drover"))
    cmd = [drover, "local", "train", "--algo", "mlp", "--data", str(train),
           "--out", str(model), "--target", "target",
           "--task", "classification" if clf else "regression",
           "--hidden", ",".join(map(str, p.hidden)),
           "--epochs", str(p.epochs), "--batch", str(p.batch),
           "--lr", repr(p.lr), "--l2", repr(p.l2),
           "--seed", str(seed), "--threads", str(threads)] + extra_args
    if p.early_stop:
        cmd += ["--validation-fraction", repr(ES_FRACTION),
                "--patience", str(ES_PATIENCE), "--tol", repr(ES_TOL)]
    else:
        cmd += ["--patience", "0"]
    said = subprocess.run(cmd, check=True, capture_output=True,
                          text=True).stdout
    # "trained mlp (...) on R rows x F features in S.SSs, E epochs": dv_train's
    # own time, without reading the CSV.
    got = re.search(r" in ([0-9.]+)s, ([0-9]+) epoch", said)
    if not got:
        raise RuntimeError(f"unexpected drover output: {said!r}")
    secs, epochs_run = float(got.group(1)), int(got.group(2))
    out = subprocess.run([drover, "local", "eval", "--model", str(model),
                          "--data", str(test), "--json"], check=True,
                         capture_output=True, text=True).stdout
    m = json.loads(out)
    m = m.get("metrics", m)
    score = m["accuracy"] if clf else m["r2"]
    return float(score), secs / epochs_run, epochs_run


def run_sklearn(p: Problem, seed: int, data) -> tuple[float, float, int]:
    """MLPClassifier/MLPRegressor (float64, Glorot init)."""
    import numpy as np
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.exceptions import ConvergenceWarning

    xtr, xte, ytr, yte = data
    clf = p.kind == "clf"
    mu, sd = xtr.mean(0), xtr.std(0)
    sd[sd == 0] = 1
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    kw = dict(hidden_layer_sizes=p.hidden, solver="adam",
              learning_rate_init=p.lr, batch_size=p.batch,
              max_iter=p.epochs, shuffle=True, random_state=seed,
              n_iter_no_change=p.epochs + 1, tol=0.0,
              alpha=p.l2 * p.batch / (1 if clf else 2))
    if p.early_stop:
        kw.update(early_stopping=True, validation_fraction=ES_FRACTION,
                  n_iter_no_change=ES_PATIENCE, tol=ES_TOL)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if clf:
            model = MLPClassifier(**kw).fit(xtr, ytr)
            secs = time.perf_counter() - t0
            score = float((model.predict(xte) == yte).mean())
        else:
            ym, ys = ytr.mean(), ytr.std()
            model = MLPRegressor(**kw).fit(xtr, (ytr - ym) / ys)
            secs = time.perf_counter() - t0
            score = r2(yte, model.predict(xte) * ys + ym)
    return score, secs / model.n_iter_, int(model.n_iter_)


def r2(y, pred) -> float:
    """Coefficient of determination."""
    import numpy as np

    return float(1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def run_torch(p: Problem, seed: int, data) -> tuple[float, float, int]:
    """nn.Sequential of Linear+ReLU, PyTorch's default init, float32."""
    import numpy as np
    import torch

    xtr, xte, ytr, yte = data
    clf = p.kind == "clf"
    mu, sd = xtr.mean(0), xtr.std(0)
    sd[sd == 0] = 1
    xtr, xte = (xtr - mu) / sd, (xte - mu) / sd
    torch.manual_seed(seed)
    n_out = int(ytr.max()) + 1 if clf else 1
    layers: list = []
    width = xtr.shape[1]
    for h in p.hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
        width = h
    layers.append(torch.nn.Linear(width, n_out))
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=p.lr, weight_decay=p.l2)
    x = torch.from_numpy(np.ascontiguousarray(xtr, dtype=np.float32))
    if clf:
        y = torch.from_numpy(ytr.astype(np.int64))
        loss_fn = torch.nn.CrossEntropyLoss()
    else:
        ym, ys = ytr.mean(), ytr.std()
        y = torch.from_numpy(((ytr - ym) / ys).astype(np.float32))[:, None]
        loss_fn = torch.nn.MSELoss()
    gen = torch.Generator().manual_seed(seed)
    if p.early_stop:
        held = torch.randperm(len(x), generator=gen)
        n_val = int(ES_FRACTION * len(x))
        xv, yv = x[held[:n_val]], y[held[:n_val]]
        x, y = x[held[n_val:]], y[held[n_val:]]
    best, stale, best_state, epochs_run = float("inf"), 0, None, 0
    t0 = time.perf_counter()
    for _ in range(p.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for b in range(0, len(x), p.batch):
            idx = perm[b:b + p.batch]
            opt.zero_grad()
            loss = loss_fn(net(x[idx]), y[idx])
            loss.backward()
            opt.step()
        epochs_run += 1
        if p.early_stop:
            with torch.no_grad():
                val = float(loss_fn(net(xv), yv))
            stale = stale + 1 if val > best - ES_TOL else 0
            if val < best:
                best = val
                best_state = copy.deepcopy(net.state_dict())
            if stale >= ES_PATIENCE:
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    secs = time.perf_counter() - t0
    with torch.no_grad():
        out = net(torch.from_numpy(np.ascontiguousarray(xte,
                                                        dtype=np.float32)))
    if clf:
        score = float((out.argmax(1).numpy() == yte).mean())
    else:
        score = r2(yte, out[:, 0].numpy().astype(np.float64) * ys + ym)
    return score, secs / epochs_run, epochs_run


def summarize(vals: list[float]) -> dict:
    """Mean and spread (min, max) of per-seed figures."""
    return {"mean": sum(vals) / len(vals), "min": min(vals),
            "max": max(vals), "runs": vals}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="two small problems, one seed (smoke run)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", default="", help="problem names, comma-separated")
    ap.add_argument("--frameworks", default="drover,sklearn,torch")
    ap.add_argument("--early-stopping", action="store_true",
                    help="validation-split early stopping, up to 200 epochs, "
                    "on the fast problems (writes parity-early-stopping.json)")
    ap.add_argument("--drover-args", default="",
                    help="extra drover local train flags (experiments)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.out is None:
        a.out = str(REPO / "bench/results" / ("parity-early-stopping.json"
                                              if a.early_stopping
                                              else "parity.json"))
    # Thread counts before numpy/torch load their BLAS pools.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(a.threads)
    import torch

    torch.set_num_threads(a.threads)
    names = a.only.split(",") if a.only else (QUICK if a.quick else None)
    if a.early_stopping and names is None:
        names = ES_GRID
    grid = [p for p in GRID if names is None or p.name in names]
    if a.early_stopping:
        grid = [dataclasses.replace(p, epochs=ES_EPOCHS, early_stop=True)
                for p in grid]
    seeds = list(range(1 if a.quick else a.seeds))
    fws = a.frameworks.split(",")
    extra = shlex.split(a.drover_args)
    results = []
    print(f"{'problem':22} {'metric':4} " +
          " ".join(f"{fw:>22}" for fw in fws) + "  gap  s/epoch " +
          "/".join(fws))
    with tempfile.TemporaryDirectory(prefix="dv-parity-") as td:
        for p in grid:
            scores: dict[str, list[float]] = {fw: [] for fw in fws}
            times: dict[str, list[float]] = {fw: [] for fw in fws}
            runs: dict[str, list[float]] = {fw: [] for fw in fws}
            for seed in seeds:
                data = make_data(p, seed)
                for fw in fws:
                    if fw == "drover":
                        s, t, e = run_drover(p, seed, data, Path(td),
                                             a.threads, extra)
                    elif fw == "sklearn":
                        s, t, e = run_sklearn(p, seed, data)
                    else:
                        s, t, e = run_torch(p, seed, data)
                    scores[fw].append(s)
                    times[fw].append(t)
                    runs[fw].append(float(e))
            row = {"problem": p.name, "task": p.kind,
                   "metric": "accuracy" if p.kind == "clf" else "r2",
                   "hidden": list(p.hidden), "epochs": p.epochs,
                   "batch": p.batch, "lr": p.lr, "l2": p.l2, "rows": p.rows,
                   "score": {fw: summarize(scores[fw]) for fw in fws},
                   "early_stopping": p.early_stop,
                   "seconds_per_epoch": {fw: summarize(times[fw])
                                         for fw in fws},
                   "epochs_run": {fw: summarize(runs[fw]) for fw in fws}}
            others = [row["score"][fw]["mean"] for fw in fws if fw != "drover"]
            if "drover" in fws and others:
                row["gap_to_best"] = row["score"]["drover"]["mean"] - max(others)
            results.append(row)
            cells = " ".join(
                f"{row['score'][fw]['mean']:.4f} "
                f"[{row['score'][fw]['min']:.3f},{row['score'][fw]['max']:.3f}]"
                for fw in fws)
            tcells = "/".join(f"{row['seconds_per_epoch'][fw]['mean']:.3f}"
                              for fw in fws)
            gap = row.get("gap_to_best", float("nan"))
            ecells = ("  epochs " + "/".join(
                f"{row['epochs_run'][fw]['mean']:.0f}" for fw in fws)
                if p.early_stop else "")
            print(f"{p.name:22} {row['metric'][:4]:4} {cells} {gap:+.4f} "
                  f"{tcells}{ecells}", flush=True)
    doc = {"bench": "parity", "machine": f"{platform.machine()} "
           f"{platform.release()}", "threads": a.threads, "seeds": seeds,
           "drover_args": extra, "quick": a.quick, "problems": results}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
