"""drover.export: models trained in scikit-learn / PyTorch, written as .drvm
files, predict what the originals predict -- run in-process by `drover local
predict`, and pushed to a real cluster (`drover up`) and served through the
queue by `drover infer`.

Run (see _export_cluster.py for the variables):
  DROVER_BIN=... DROVER_BROKER_BIN=... DROVER_WORKER_BIN=... DV_DATA_DIR=...
  PYTHONPATH=clients/python /usr/bin/python3 -m pytest -q \
      clients/python/tests/test_export.py
"""

from __future__ import annotations

import copy
import csv
import io
import struct
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _export_cluster as ec  # noqa: E402
from drover import export  # noqa: E402

sklearn = pytest.importorskip("sklearn", reason="scikit-learn is not "
                              "installed (Debian: python3-sklearn)")

from sklearn.linear_model import (LinearRegression,  # noqa: E402
                                  LogisticRegression, Ridge)
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import MinMaxScaler, StandardScaler  # noqa: E402

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")

# Probabilities: Drover computes in float32 and prints %.6g; 1e-5 covers
# both with margin. Regression: relative, as diabetes targets are ~25..350.
PROB_ATOL = 1e-5
REG_RTOL = 1e-5

IRIS_NAMES = {"0": "setosa", "1": "versicolor", "2": "virginica"}


# ------------------------------------------------------------------- data


class Data:
    """A CSV (header, last column the target): names, X, target texts."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        self.features = rows[0][:-1]
        self.target = rows[0][-1]
        self.X = np.array([[float(v) for v in r[:-1]] for r in rows[1:]])
        self.y_text = [r[-1] for r in rows[1:]]

    def y_num(self) -> np.ndarray:
        return np.array([float(v) for v in self.y_text])


def derived_csv(src: Path, dst: Path, keep: Callable[[str], bool],
                relabel: Callable[[str], str] = lambda t: t) -> Path:
    """Copy src's rows whose target passes keep, target text relabelled;
    feature text unchanged, so both sides parse the same numbers."""
    lines = src.read_text().splitlines()
    out = [lines[0]]
    for line in lines[1:]:
        head, _, target = line.rpartition(",")
        if keep(target):
            out.append(f"{head},{relabel(target)}")
    dst.write_text("\n".join(out) + "\n")
    return dst


@pytest.fixture(scope="session")
def data(tmp_path_factory) -> Callable[[str], Data]:
    """data(name) -> Data: bundled sets (iris_train, ...) and derived ones:
    iris_bin_* (classes 1 and 2 only: numeric labels not starting at 0),
    iris_named_* (text labels)."""
    src = ec.data_dir()
    tmp = tmp_path_factory.mktemp("data")
    for part in ("train", "test"):
        derived_csv(src / f"iris_{part}.csv", tmp / f"iris_bin_{part}.csv",
                    lambda t: t in ("1", "2"))
        derived_csv(src / f"iris_{part}.csv", tmp / f"iris_named_{part}.csv",
                    lambda t: True, lambda t: IRIS_NAMES[t])
    cache: dict[str, Data] = {}

    def get(name: str) -> Data:
        if name not in cache:
            path = tmp / f"{name}.csv"
            cache[name] = Data(path if path.exists() else src / f"{name}.csv")
        return cache[name]

    return get


# ------------------------------------------------------------------ cases
#
# name -> (data set, estimator factory). Small max_iter: the point is the
# mapping, not the fit; ConvergenceWarning is filtered.

SKLEARN_CASES: dict[str, tuple[str, Callable[[], Any]]] = {
    "ols_raw": ("diabetes", lambda: LinearRegression()),
    "ridge_standard": ("diabetes",
                       lambda: make_pipeline(StandardScaler(), Ridge(2.0))),
    "ridge_standard_no_mean": (
        "diabetes",
        lambda: make_pipeline(StandardScaler(with_mean=False), Ridge(1.0))),
    "ridge_minmax": ("diabetes",
                     lambda: make_pipeline(MinMaxScaler(), Ridge(0.5))),
    "logreg_binary": ("iris_bin",
                      lambda: LogisticRegression(max_iter=1000)),
    "logreg_binary_multinomial": (
        "iris_bin",
        lambda: make_pipeline(StandardScaler(), LogisticRegression(
            multi_class="multinomial", max_iter=1000))),
    "softmax_named_standard": (
        "iris_named",
        lambda: make_pipeline(StandardScaler(),
                              LogisticRegression(max_iter=1000))),
    "softmax_digits_minmax": (
        "digits",
        lambda: make_pipeline(MinMaxScaler(),
                              LogisticRegression(max_iter=300))),
    "mlp_binary_standard": (
        "iris_bin",
        lambda: make_pipeline(StandardScaler(), MLPClassifier(
            (8,), max_iter=300, random_state=1))),
    "mlp_digits_minmax_range": (
        "digits",
        lambda: make_pipeline(MinMaxScaler((-1, 1)), MLPClassifier(
            (32, 16), max_iter=30, random_state=2))),
    "mlp_identity_named": (
        "iris_named",
        lambda: MLPClassifier((6,), activation="identity", max_iter=200,
                              random_state=3)),
    "mlp_regressor_standard": (
        "diabetes",
        lambda: make_pipeline(StandardScaler(), MLPRegressor(
            (16,), max_iter=200, random_state=4))),
}


class Exported:
    """One case: the fitted model's reference outputs and its .drvm file."""

    def __init__(self, name: str, path: Path, test: Data,
                 classes: Optional[list[str]], proba: Optional[np.ndarray],
                 labels: Optional[list[str]], values: Optional[np.ndarray]):
        self.name = name
        self.path = path
        self.test = test
        self.classes = classes  # label texts, in output order
        self.proba = proba  # reference probabilities (classification)
        self.labels = labels  # reference predicted label texts
        self.values = values  # reference predictions (regression)


def label_text(c: Any) -> str:
    return export._label(c)[0]


@pytest.fixture(scope="session")
def exported(data, tmp_path_factory) -> Callable[[str], Exported]:
    tmp = tmp_path_factory.mktemp("models")
    cache: dict[str, Exported] = {}

    def get(name: str) -> Exported:
        if name in cache:
            return cache[name]
        if name.startswith("torch_"):
            cache[name] = _torch_case(name, data, tmp)
            return cache[name]
        set_name, factory = SKLEARN_CASES[name]
        train, test = data(f"{set_name}_train"), data(f"{set_name}_test")
        est = factory()
        last = est.steps[-1][1] if hasattr(est, "steps") else est
        classifier = hasattr(last, "predict_proba")
        est.fit(train.X, train.y_text if classifier and not
                train.y_text[0].replace(".", "").isdigit() else
                (train.y_num().astype(int) if classifier else train.y_num()))
        path = tmp / f"{name}.drvm"
        export.from_sklearn(est, train.features, target=train.target,
                            path=str(path))
        if classifier:
            classes = [label_text(c) for c in last.classes_]
            cache[name] = Exported(
                name, path, test, classes, est.predict_proba(test.X),
                [label_text(c) for c in est.predict(test.X)], None)
        else:
            cache[name] = Exported(name, path, test, None, None, None,
                                   est.predict(test.X))
        return cache[name]

    return get


def _torch_case(name: str, data, tmp: Path) -> Exported:
    torch = pytest.importorskip("torch", reason="PyTorch is not installed "
                                "(Debian: python3-torch)")
    nn = torch.nn
    torch.manual_seed(7)
    if name == "torch_regression":
        test = data("diabetes_test")
        # Diabetes features reach ~300: small weights keep outputs sane.
        mod = nn.Sequential(nn.Linear(10, 12), nn.ReLU(),
                            nn.Sequential(nn.Linear(12, 5), nn.Linear(5, 1)))
        with torch.no_grad():
            mod[0].weight.mul_(0.05)
        classes = None
    elif name == "torch_softmax":
        test = data("iris_named_test")
        mod = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3),
                            nn.Softmax(dim=1))
        classes = ["setosa", "versicolor", "virginica"]
    elif name == "torch_logits":  # no final Softmax: logits -> softmax
        test = data("iris_test")
        mod = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
        classes = [0, 1, 2]
    elif name == "torch_sigmoid":
        test = data("iris_bin_test")
        mod = nn.Sequential(nn.Linear(4, 1, bias=False), nn.Sigmoid())
        classes = [1, 2]
    else:
        raise KeyError(name)
    path = tmp / f"{name}.drvm"
    export.from_torch(mod, test.features, classes, target=test.target,
                      path=str(path))
    ref = copy.deepcopy(mod).double()
    with torch.no_grad():
        out = ref(torch.tensor(test.X, dtype=torch.float64)).numpy()
    if classes is None:
        return Exported(name, path, test, None, None, None, out[:, 0])
    if name == "torch_logits":
        e = np.exp(out - out.max(axis=1, keepdims=True))
        out = e / e.sum(axis=1, keepdims=True)
    if out.shape[1] == 1:
        out = np.hstack([1 - out, out])
    texts = [label_text(c) for c in classes]
    return Exported(name, path, test, texts, out,
                    [texts[k] for k in out.argmax(axis=1)], None)


TORCH_CASES = ["torch_regression", "torch_softmax", "torch_logits",
               "torch_sigmoid"]
ALL_CASES = list(SKLEARN_CASES) + TORCH_CASES


# ------------------------------------------------------------- comparison


def check_predictions(csv_text: str, ex: Exported) -> None:
    """Drover's prediction CSV against the original model's outputs."""
    rows = list(csv.reader(io.StringIO(csv_text)))
    header, body = rows[0], rows[1:]
    assert len(body) == len(ex.test.X), f"{ex.name}: row count"
    if ex.classes is None:
        assert header == ["value"]
        got = np.array([float(r[0]) for r in body])
        err = np.abs(got - ex.values) / np.maximum(np.abs(ex.values), 1.0)
        assert err.max() <= REG_RTOL, (
            f"{ex.name}: worst relative error {err.max():.3g} at row "
            f"{err.argmax()} ({got[err.argmax()]} vs "
            f"{ex.values[err.argmax()]})")
        return
    # `class,label,p_<label>...`: the class index, its label, then one
    # probability per class in the model's class order.
    assert header == ["class", "label"] + [f"p_{c}" for c in ex.classes]
    proba = np.array([[float(v) for v in r[2:]] for r in body])
    np.testing.assert_allclose(proba, ex.proba, rtol=0, atol=PROB_ATOL,
                               err_msg=f"{ex.name}: probabilities")
    index = [int(r[0]) for r in body]
    assert [r[1] for r in body] == [ex.classes[k] for k in index]
    # With every probability within PROB_ATOL, a reference margin over
    # 2 * PROB_ATOL between the top two classes fixes the argmax: those
    # rows must agree exactly; closer ones may go either way (float32).
    top2 = np.sort(ex.proba, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) > 2 * PROB_ATOL
    assert decided.sum() >= 0.9 * len(body), f"{ex.name}: too many ties"
    for i in np.flatnonzero(decided):
        assert body[i][1] == ex.labels[i], (
            f"{ex.name}: row {i} predicted {body[i][1]}, the original "
            f"{ex.labels[i]}")


# ------------------------------------------------------------------ tests

needs_bin = pytest.mark.skipif(ec.missing_binaries() is not None,
                               reason=ec.missing_binaries() or "")


@needs_bin
@pytest.mark.parametrize("case", ALL_CASES)
def test_local_predict_matches(case, exported):
    ex = exported(case)
    out = ec.drover("local", "predict", "--model", str(ex.path), "--data",
                    str(ex.test.path))
    check_predictions(out.stdout, ex)


@pytest.fixture(scope="module")
def cluster():
    why = ec.missing_binaries()
    if why:
        pytest.skip(why)
    c = ec.Cluster()
    c.start()
    yield c
    c.stop()


@needs_bin
@pytest.mark.parametrize("case", ALL_CASES)
def test_served_through_queue_matches(case, exported, cluster, tmp_path):
    ex = exported(case)
    name = f"x-{case.replace('_', '-')}"
    pushed = cluster.cli("models", "push", str(ex.path), "--name", name)
    assert f"stored {name}@1" in pushed.stdout
    preds = tmp_path / "preds.csv"
    ran = cluster.cli("infer", "--model", name, "--data", str(ex.test.path),
                      "--out", str(preds))
    assert f" on {name}@1:" in ran.stderr  # the pushed model ran
    check_predictions(preds.read_text(), ex)


@needs_bin
def test_inspect_reads_what_was_written(exported):
    """`drover local inspect --json` sees the mapping: algorithm, scaler,
    layers and their activations."""
    import json

    want = {
        "ols_raw": ("ols", "none", [(10, 1, "identity")]),
        "logreg_binary": ("logreg", "none", [(4, 1, "sigmoid")]),
        "softmax_digits_minmax": ("softmax", "minmax",
                                  [(64, 10, "softmax")]),
        "mlp_binary_standard": ("mlp", "standard",
                                [(4, 8, "relu"), (8, 1, "sigmoid")]),
        "mlp_digits_minmax_range": ("mlp", "minmax",
                                    [(64, 32, "relu"), (32, 16, "relu"),
                                     (16, 10, "softmax")]),
        "mlp_identity_named": ("mlp", "none",
                               [(4, 6, "identity"), (6, 3, "softmax")]),
        "mlp_regressor_standard": ("mlp", "standard",
                                   [(10, 16, "relu"), (16, 1, "identity")]),
    }
    for case, (algo, scale, layers) in want.items():
        ex = exported(case)
        got = json.loads(ec.drover("local", "inspect", str(ex.path),
                                   "--json").stdout)
        assert got["checksum"] == "ok"
        assert (got["algo"], got["scale"]) == (algo, scale), case
        assert [(ly["in"], ly["out"], ly["activation"])
                for ly in got["layers"]] == layers, case
        assert got["target"] == "target"


def test_file_layout_follows_the_spec(exported, monkeypatch):
    """Header, key order, float widths, blobs and meta of one file, and the
    same bytes for the same model (SOURCE_DATE_EPOCH fixes the time)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    est = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    X = np.array([[0.0, 1.0], [1.0, 0.5], [2.0, 2.0], [3.0, 1.5]])
    est.fit(X, ["b", "a", "b", "c"])
    raw = export.from_sklearn(est, ["u", "v"], target="y")
    assert raw == export.from_sklearn(est, ["u", "v"], target="y")
    assert raw[:8] == b"DRVM\x01\x00\x00\x00"
    (n,) = struct.unpack_from("<Q", raw, 8)
    assert len(raw) == 16 + n + 32
    body = export.load(raw)
    assert list(body) == ["kind", "algo", "task", "features", "target",
                          "classes", "classes_numeric", "scaler", "y_offset",
                          "y_scale", "layers", "meta"]
    assert body["kind"] == "dense_stack" and body["algo"] == "softmax"
    assert body["features"] == ["u", "v"] and body["target"] == "y"
    assert body["classes"] == ["a", "b", "c"]
    assert body["classes_numeric"] is False
    assert list(body["scaler"]) == ["kind", "offset", "scale"]
    sc = est.steps[0][1]
    assert body["scaler"]["offset"] == sc.mean_.astype("<f4").tobytes()
    assert body["scaler"]["scale"] == (1 / sc.scale_).astype("<f4").tobytes()
    # y_offset / y_scale are msgpack float 32 (0xca), 0 and 1.
    assert b"\xa8y_offset\xca\x00\x00\x00\x00" in raw
    assert b"\xa7y_scale\xca\x3f\x80\x00\x00" in raw
    (layer,) = body["layers"]
    lr = est.steps[1][1]
    assert (layer["in"], layer["out"], layer["activation"]) == (2, 3,
                                                                 "softmax")
    assert layer["weights"] == lr.coef_.T.astype("<f4").tobytes()
    assert layer["bias"] == lr.intercept_.astype("<f4").tobytes()
    meta = body["meta"]
    assert meta["hyper"]["algo"] == "softmax"
    assert meta["hyper"]["scale"] == "standard"
    assert meta["created_unix"] == 1700000000
    assert meta["source"] == f"sklearn {sklearn.__version__}"
    assert meta["source_model"] == "StandardScaler+LogisticRegression"
    # No invented training figures.
    assert "train_metrics" not in meta and "dataset_sha256" not in meta
    # A flipped bit is caught by the checksum.
    bad = bytearray(raw)
    bad[20] ^= 1
    with pytest.raises(ValueError, match="SHA-256"):
        export.load(bytes(bad))


def test_numeric_labels_use_c_g15_text():
    """Numeric classes are stored as C's %.15g text with classes_numeric,
    so 2.0 is "2" as in a model Drover trains."""
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    est = LogisticRegression().fit(X, [1.0, 2.0, 1.0, 2.0])
    body = export.load(export.from_sklearn(est, ["x"]))
    assert body["classes"] == ["1", "2"]
    assert body["classes_numeric"] is True
    assert body["features"] == ["x"]
    est = LogisticRegression().fit(X, [-1, 10**6, -1, 10**6])
    assert export.load(export.from_sklearn(est))["classes"] == ["-1",
                                                                "1000000"]


def test_mlp_meta_records_what_ran():
    X = np.random.default_rng(0).normal(size=(40, 3))
    est = MLPRegressor((5, 4), max_iter=7, batch_size=10, random_state=9,
                       learning_rate_init=0.01).fit(X, X[:, 0])
    meta = export.load(export.from_sklearn(est))["meta"]
    assert meta["hyper"] == {"algo": "mlp", "scale": "none", "epochs": 7,
                             "batch": 10, "lr": 0.01, "tol": 1e-4,
                             "seed": 9, "hidden": [5, 4]}
    assert meta["epochs_run"] == est.n_iter_
    assert meta["final_loss"] == pytest.approx(est.loss_)


def test_save_writes_the_bytes(tmp_path):
    est = LinearRegression().fit([[0.0], [1.0]], [1.0, 3.0])
    data = export.from_sklearn(est, ["x"])
    path = tmp_path / "m.drvm"
    export.save(str(path), data)
    assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.drvm"]
    assert path.stat().st_mode & 0o777 == 0o644


# ------------------------------------------------------ what is refused


def _fit(est, multi_output=False, classes=2):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    if multi_output:
        return est.fit(X, np.c_[X[:, 0], X[:, 1]])
    return est.fit(X, (np.arange(60) % classes) if classes else X[:, 0])


REFUSED = {
    "unfitted": (lambda: LogisticRegression(), ValueError, "not fitted"),
    "unfitted_scaler": (
        lambda: make_pipeline(StandardScaler(),
                              _fit(LinearRegression(), classes=0)),
        ValueError, "StandardScaler is not fitted"),
    "tree": (lambda: _fit(__import__(
        "sklearn.tree", fromlist=["x"]).DecisionTreeClassifier()),
        TypeError, "unsupported estimator DecisionTreeClassifier"),
    "tanh": (lambda: _fit(MLPClassifier((4,), activation="tanh",
                                        max_iter=5)),
             ValueError, "activation='tanh'"),
    "logistic_hidden": (lambda: _fit(MLPRegressor((4,),
                                                  activation="logistic",
                                                  max_iter=5), classes=0),
                        ValueError, "activation='logistic'"),
    "ovr": (lambda: _fit(LogisticRegression(multi_class="ovr"), classes=3),
            ValueError, "one-vs-rest"),
    "liblinear_multiclass": (
        lambda: _fit(LogisticRegression(solver="liblinear"), classes=3),
        ValueError, "one-vs-rest"),
    "robust_scaler": (lambda: _fit(make_pipeline(
        __import__("sklearn.preprocessing",
                   fromlist=["x"]).RobustScaler(), LinearRegression()),
        classes=0), TypeError, "RobustScaler"),
    "two_scalers": (lambda: _fit(make_pipeline(
        StandardScaler(), MinMaxScaler(), LinearRegression()), classes=0),
        ValueError, "one scaler"),
    "clip": (lambda: _fit(make_pipeline(MinMaxScaler(clip=True),
                                        LinearRegression()), classes=0),
             ValueError, "clip"),
    "multi_output_linear": (lambda: _fit(LinearRegression(), True),
                            ValueError, "2 outputs"),
    "multi_output_ridge": (lambda: _fit(Ridge(), True), ValueError,
                           "2 outputs"),
    "multi_output_mlp": (lambda: _fit(MLPRegressor((3,), max_iter=5), True),
                         ValueError, "2 outputs"),
    "multi_label_mlp": (lambda: MLPClassifier((3,), max_iter=5).fit(
        np.eye(4), np.array([[1, 0], [0, 1], [1, 1], [0, 0]])),
        ValueError, "multi-label"),
    "not_an_estimator": (lambda: object(), TypeError,
                         "unsupported estimator object"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_unsupported_is_refused_clearly(case):
    make, exc, message = REFUSED[case]
    est = make()
    with pytest.raises(exc, match=message):
        export.from_sklearn(est)


def test_bad_feature_names_are_refused():
    est = _fit(LinearRegression(), classes=0)
    with pytest.raises(ValueError, match="2 names but the model takes 3"):
        export.from_sklearn(est, ["a", "b"])
    with pytest.raises(ValueError, match="distinct"):
        export.from_sklearn(est, ["a", "b", "a"])
    with pytest.raises(ValueError, match="also a feature"):
        export.from_sklearn(est, ["a", "b", "target"])
    with pytest.raises(ValueError, match="NUL"):
        export.from_sklearn(est, ["a", "b", "c\0"])
    assert export.load(export.from_sklearn(est))["features"] == ["x0", "x1",
                                                                 "x2"]


def test_torch_unsupported_is_refused_clearly():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed "
                                "(Debian: python3-torch)")
    nn = torch.nn
    names = ["a", "b"]
    with pytest.raises(TypeError, match="Tanh"):
        export.from_torch(nn.Sequential(nn.Linear(2, 3), nn.Tanh(),
                                        nn.Linear(3, 1)), names)
    with pytest.raises(ValueError, match="last layer is a ReLU"):
        export.from_torch(nn.Sequential(nn.Linear(2, 1), nn.ReLU()), names)
    with pytest.raises(ValueError, match="needs classes"):
        export.from_torch(nn.Sequential(nn.Linear(2, 2), nn.Softmax(dim=1)),
                          names)
    with pytest.raises(ValueError, match="do not fit 3 classes"):
        export.from_torch(nn.Sequential(nn.Linear(2, 2)), names, [0, 1, 2])
    with pytest.raises(ValueError, match="one target"):
        export.from_torch(nn.Sequential(nn.Linear(2, 2)), names)
    with pytest.raises(ValueError, match="dim=0"):
        export.from_torch(nn.Sequential(nn.Linear(2, 2), nn.Softmax(dim=0)),
                          names, ["p", "q"])
    with pytest.raises(TypeError, match="nn.Sequential"):
        export.from_torch(nn.Linear(2, 1), names)
    with pytest.raises(ValueError, match="ReLU must follow a Linear"):
        export.from_torch(nn.Sequential(nn.Linear(2, 2), nn.ReLU(),
                                        nn.ReLU(), nn.Linear(2, 1)), names)


# ------------------------------------------- same bytes as Drover's writer


def _model_from_body(body: dict) -> "export._Model":
    """The record a decoded file holds, for re-encoding."""
    m = export._Model()
    m.algo, m.task = body["algo"], body["task"]
    m.features, m.target = body["features"], body["target"]
    if m.task == "classification":
        m.classes, m.classes_numeric = body["classes"], body["classes_numeric"]
    F = len(m.features)
    sc = body["scaler"]
    m.scaler_kind = sc["kind"]
    m.offset = np.frombuffer(sc["offset"], "<f4", F)
    m.scale = np.frombuffer(sc["scale"], "<f4", F)
    m.y_offset, m.y_scale = body["y_offset"], body["y_scale"]
    m.layers = [(np.frombuffer(ly["weights"], "<f4").reshape(ly["in"],
                                                             ly["out"]),
                 np.frombuffer(ly["bias"], "<f4"), ly["activation"])
                for ly in body["layers"]]
    m.hyper = {k: v for k, v in body["meta"]["hyper"].items() if k != "algo"}
    m.meta = {k: v for k, v in body["meta"].items() if k != "hyper"}
    return m


@needs_bin
@pytest.mark.parametrize("args", [
    ("mlp", "iris_train", "--hidden", "6,5", "--epochs", "3"),
    ("ridge", "diabetes_train", "--scale", "minmax"),
    ("logreg", "iris_bin_train", "--epochs", "2"),
], ids=["mlp", "ridge", "logreg"])
def test_encoder_matches_drovers_writer(args, data, tmp_path):
    """Files `drover local train` wrote, decoded and re-encoded by this
    module's encoder, come out byte for byte the same: the encoding
    choices (key order, float widths, shortest ints, str8, blobs) are
    Drover's."""
    algo, set_name, *extra = args
    out = tmp_path / "m.drvm"
    ec.drover("local", "train", "--algo", algo, "--data",
              str(data(set_name).path), "--out", str(out), "--threads", "1",
              *extra)
    raw = out.read_bytes()
    assert export._encode(_model_from_body(export.load(raw))) == raw
