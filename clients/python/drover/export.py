"""Export models trained in scikit-learn or PyTorch as Drover ``.drvm`` files.

Drover serves one kind of model, a dense stack (docs/MODEL_FORMAT.md): an
affine input scaler, then dense layers ``h = act(h @ W + b)`` computed in
float32. This module writes that file, byte for byte as the specification
says, for the models that map onto it exactly:

==============================================  ===============================
scikit-learn / PyTorch                          Drover model
==============================================  ===============================
``LinearRegression``                            regression, 1 identity layer,
                                                algo ``ols``
``Ridge``                                       same, algo ``ridge``
``LogisticRegression``, 2 classes               1 sigmoid unit, algo ``logreg``
``LogisticRegression``, K > 2, multinomial      K softmax units, algo
                                                ``softmax``
``MLPClassifier`` / ``MLPRegressor``            relu (or identity) hidden
(hidden activation relu or identity)            layers, then sigmoid (2
                                                classes), softmax (K) or 1
                                                identity unit; algo ``mlp``
``StandardScaler`` / ``MinMaxScaler`` first     scaler ``standard`` / ``minmax``
in a ``Pipeline``
``nn.Sequential`` of ``Linear`` / ``ReLU``      the same layers; with classes,
(optionally a final ``Softmax``/``Sigmoid``)    a softmax (sigmoid for one
                                                output unit) head
==============================================  ===============================

Anything else raises ``TypeError`` (an estimator or layer type that is not
supported) or ``ValueError`` (a supported type in a configuration the format
cannot express: another activation, one-vs-rest multiclass, several
outputs, an unfitted estimator, ...), naming what is unsupported.

Parameters are stored as float32, as Drover computes: predictions agree with
scikit-learn's float64 ones to about 1e-6 relative (more for ill-conditioned
linear models on raw, unscaled features).

Writing a file: pass ``path=`` to :func:`from_sklearn` / :func:`from_torch`,
or call :func:`save` with the bytes they return. Both write atomically (a
temporary file in the same folder, then a rename).

Only numpy, msgpack and the standard library are needed here; scikit-learn
and torch are imported when a function needs them.
"""

from __future__ import annotations

import hashlib
import math
import os
import struct
import tempfile
import time
from typing import Any, Iterable, Optional, Sequence

import msgpack
import numpy as np

__all__ = ["from_sklearn", "from_torch", "save", "load"]

# The format's constants and limits (docs/MODEL_FORMAT.md, common/dv_limits.h).
MAGIC = b"DRVM"
MAJOR = 1
MINOR = 0
MAX_BODY_BYTES = 2**31
MAX_NAME_BYTES = 1024
MAX_FEATURES = 65536
MAX_CLASSES = 10000
MAX_LAYERS = 64
MAX_UNITS = 65536
MAX_PARAMS = 2**28
MAX_HIDDEN = 16  # meta.hyper.hidden entries

_SUPPORTED_SKLEARN = (
    "LinearRegression, Ridge, LogisticRegression, MLPClassifier, "
    "MLPRegressor, optionally after StandardScaler or MinMaxScaler in a "
    "Pipeline"
)


# meta.hyper and meta keys in written order (docs/MODEL_FORMAT.md), then
# the exporter's: source ("sklearn 1.2.1", "torch 2.1.0") and source_model
# (the estimator or module types, "StandardScaler+LogisticRegression").
_HYPER_KEYS = ("scale", "epochs", "batch", "lr", "l2", "tol", "patience",
               "seed", "hidden", "init", "validation_fraction")
_META_KEYS = ("dataset_sha256", "dataset_rows", "epochs_run", "final_loss",
              "train_metrics", "created_unix", "drover_version", "source",
              "source_model")

# ------------------------------------------------------------- the record


class _Model:
    """What one .drvm file holds, before encoding (float64 until packed)."""

    def __init__(self) -> None:
        self.algo = "ols"
        self.task = "regression"
        self.features: list[str] = []
        self.target = "target"
        self.classes: Optional[list[str]] = None
        self.classes_numeric = False
        self.scaler_kind = "none"
        self.offset: Optional[np.ndarray] = None
        self.scale: Optional[np.ndarray] = None
        self.y_offset = 0.0  # regression output: h * y_scale + y_offset
        self.y_scale = 1.0
        # layers: (W of shape n_in x n_out, b of shape n_out, activation)
        self.layers: list[tuple[np.ndarray, np.ndarray, str]] = []
        self.hyper: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}


# ----------------------------------------------------------------- msgpack
#
# The body is assembled from packed pieces rather than one packb call, so
# each number gets the width the specification gives it (y_offset/y_scale
# float 32, other floats float 64) and keys keep the specified order.


def _p(value: Any) -> bytes:
    """A str, bin, int or bool in msgpack's shortest form, a float as float
    64, a dict as a map in its order, a list as an array."""
    if isinstance(value, float):
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, dict):
        return _map([(k, _p(v)) for k, v in value.items()])
    if isinstance(value, list):
        return _array(_p(v) for v in value)
    return msgpack.packb(value, use_bin_type=True)


def _f32(value: float) -> bytes:
    return b"\xca" + struct.pack(">f", value)


def _map(items: Sequence[tuple[str, bytes]]) -> bytes:
    packer = msgpack.Packer(use_bin_type=True)
    out = [packer.pack_map_header(len(items))]
    for key, packed in items:
        out.append(_p(key))
        out.append(packed)
    return b"".join(out)


def _array(packed: Iterable[bytes]) -> bytes:
    items = list(packed)
    return msgpack.Packer().pack_array_header(len(items)) + b"".join(items)


def _blob(values: np.ndarray, what: str) -> bytes:
    """n float32 values, little-endian, as one bin (never an array)."""
    v64 = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(v64)):
        raise ValueError(f"{what}: holds NaN or Inf; Drover refuses "
                         "non-finite parameters")
    with np.errstate(over="ignore"):
        v32 = v64.astype("<f4")
    if not np.all(np.isfinite(v32)):
        raise ValueError(f"{what}: a value overflows float32 (|x| > 3.4e38)")
    return _p(v32.tobytes())


def _encode(m: _Model) -> bytes:
    cls = m.task == "classification"
    F = len(m.features)
    body: list[tuple[str, bytes]] = [
        ("kind", _p("dense_stack")),
        ("algo", _p(m.algo)),
        ("task", _p(m.task)),
        ("features", _array(_p(f) for f in m.features)),
        ("target", _p(m.target)),
    ]
    if cls:
        assert m.classes is not None
        body.append(("classes", _array(_p(c) for c in m.classes)))
        body.append(("classes_numeric", _p(bool(m.classes_numeric))))
    offset = np.zeros(F) if m.offset is None else m.offset
    scale = np.ones(F) if m.scale is None else m.scale
    body.append(("scaler", _map([
        ("kind", _p(m.scaler_kind)),
        ("offset", _blob(offset, "scaler.offset")),
        ("scale", _blob(scale, "scaler.scale")),
    ])))
    # Classification files hold 0 and 1. Exported regressions keep their
    # bias in the last layer: 0 and 1 too.
    body.append(("y_offset", _f32(m.y_offset if not cls else 0.0)))
    body.append(("y_scale", _f32(m.y_scale if not cls else 1.0)))
    layers = []
    for i, (w, b, act) in enumerate(m.layers):
        n_in, n_out = w.shape
        layers.append(_map([
            ("in", _p(int(n_in))),
            ("out", _p(int(n_out))),
            ("activation", _p(act)),
            ("weights", _blob(w, f"layers[{i}].weights")),
            ("bias", _blob(b, f"layers[{i}].bias")),
        ]))
    body.append(("layers", _array(layers)))
    hyper = {"algo": m.algo}
    hyper.update((k, m.hyper[k]) for k in _HYPER_KEYS if k in m.hyper)
    meta = [("hyper", _p(hyper))]
    # Documented keys in the documented order, then the exporter's own
    # (not in MODEL_FORMAT 1.0; every 1.x reader ignores keys it does not
    # know): where the model came from.
    meta += [(k, _p(m.meta[k])) for k in _META_KEYS if k in m.meta]
    body.append(("meta", _map(meta)))
    packed = _map(body)
    if len(packed) > MAX_BODY_BYTES:
        raise ValueError(f"the encoded model is {len(packed)} bytes, over "
                         f"the format's limit of {MAX_BODY_BYTES}")
    head = MAGIC + struct.pack("<HHQ", MAJOR, MINOR, len(packed))
    return head + packed + hashlib.sha256(head + packed).digest()


# -------------------------------------------------------------- validation


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a str, not {type(name).__name__}")
    if "\0" in name:
        raise ValueError(f"{what} {name!r} holds a NUL character")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise ValueError(f"{what} is longer than {MAX_NAME_BYTES} bytes "
                         "(UTF-8)")
    return name


def _feature_names(names: Optional[Sequence[str]], n: int, fitted: Any,
                   target: str) -> list[str]:
    if names is None:
        known = getattr(fitted, "feature_names_in_", None)
        names = ([str(x) for x in known] if known is not None
                 else [f"x{j}" for j in range(n)])
    names = list(names)
    if len(names) != n:
        raise ValueError(f"feature_names has {len(names)} names but the "
                         f"model takes {n} features")
    if not 1 <= n <= MAX_FEATURES:
        raise ValueError(f"{n} features (the format allows 1..{MAX_FEATURES})")
    for j, f in enumerate(names):
        _check_name(f, f"feature name {j}")
    if len(set(names)) != n:
        raise ValueError("feature names must be distinct")
    _check_name(target, "target name")
    if target in names:
        raise ValueError(f"the target name {target!r} is also a feature name")
    return names


def _label(c: Any) -> tuple[str, bool]:
    """A class label's text and whether it is a number (C's %.15g)."""
    if isinstance(c, (bool, np.bool_)):
        return str(bool(c)), False
    if isinstance(c, (int, float, np.integer, np.floating)):
        v = float(c)
        if not math.isfinite(v):
            raise ValueError(f"class label {c!r} is not a finite number")
        return f"{0.0 if v == 0 else v:.15g}", True
    if isinstance(c, (str, np.str_)):
        return str(c), False
    raise TypeError(f"class label {c!r} of type {type(c).__name__}: only "
                    "numbers and strings can be stored")


def _classes(classes: Sequence[Any]) -> tuple[list[str], bool]:
    pairs = [_label(c) for c in classes]
    kinds = {num for _, num in pairs}
    if len(kinds) > 1:
        raise ValueError("class labels mix numbers and strings; Drover "
                         "stores one kind")
    texts = [t for t, _ in pairs]
    if not 2 <= len(texts) <= MAX_CLASSES:
        raise ValueError(f"{len(texts)} classes (the format allows "
                         f"2..{MAX_CLASSES})")
    for c, t in enumerate(texts):
        _check_name(t, f"class label {c}")
    if len(set(texts)) != len(texts):
        raise ValueError("two class labels have the same text "
                         f"({texts}); Drover would merge them")
    return texts, kinds == {True}


def _check_layers(m: _Model) -> None:
    if not 1 <= len(m.layers) <= MAX_LAYERS:
        raise ValueError(f"{len(m.layers)} layers (the format allows "
                         f"1..{MAX_LAYERS})")
    width, params = len(m.features), 0
    for i, (w, b, act) in enumerate(m.layers):
        n_in, n_out = w.shape
        if n_in != width or b.shape != (n_out,):
            raise ValueError(f"layer {i} is {n_in} x {n_out} but receives "
                             f"{width} inputs")
        if not 1 <= n_out <= MAX_UNITS:
            raise ValueError(f"layer {i} has {n_out} units (the format "
                             f"allows 1..{MAX_UNITS})")
        params += n_in * n_out + n_out
        width = n_out
    if params > MAX_PARAMS:
        raise ValueError(f"{params} parameters (the format allows "
                         f"{MAX_PARAMS})")


def _finish(m: _Model, source: str, source_model: str,
            path: Optional[str]) -> bytes:
    _check_layers(m)
    m.meta["source"] = source
    m.meta["source_model"] = source_model
    # The file's creation time; SOURCE_DATE_EPOCH (reproducible builds)
    # fixes it, as for `drover local train`.
    sde = os.environ.get("SOURCE_DATE_EPOCH", "")
    m.meta["created_unix"] = int(sde) if sde.isdigit() else int(time.time())
    data = _encode(m)
    if path is not None:
        save(path, data)
    return data


# ------------------------------------------------------------ scikit-learn


def _f64(a: Any) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _scaler_from(step: Any, F: int) -> tuple[str, np.ndarray, np.ndarray,
                                            Optional[tuple[float, float]]]:
    """(kind, offset, scale, minmax feature_range or None) of a scaler."""
    from sklearn.preprocessing import MinMaxScaler, StandardScaler

    name = type(step).__name__
    if type(step) is StandardScaler:
        if not hasattr(step, "n_features_in_"):
            raise ValueError("StandardScaler is not fitted")
        # transform() subtracts mean_ only with_mean, divides only with_std
        # (mean_ is kept for with_mean=False too, but not applied).
        mean = step.mean_ if step.with_mean else None
        sc = step.scale_ if step.with_std else None
        offset = np.zeros(F) if mean is None else _f64(mean)
        # scale_ is the population std with zeros already replaced by 1.
        scale = np.ones(F) if sc is None else 1.0 / _f64(sc)
        return "standard", offset, scale, None
    if type(step) is MinMaxScaler:
        if not hasattr(step, "data_min_"):
            raise ValueError("MinMaxScaler is not fitted")
        if getattr(step, "clip", False):
            raise ValueError("MinMaxScaler(clip=True) is not supported: "
                             "Drover's scaler is affine and cannot clip")
        lo, hi = (float(v) for v in step.feature_range)
        # scale_ is (hi - lo) / (max - min), constant columns as range 1:
        # Drover's minmax scale is 1 / (max - min), and the feature range
        # is folded into the first layer.
        scale = _f64(step.scale_) / (hi - lo)
        return "minmax", _f64(step.data_min_), scale, (lo, hi)
    raise TypeError(f"unsupported preprocessing step {name}: only "
                    "StandardScaler or MinMaxScaler may come before the "
                    "model")


def _flatten_pipeline(est: Any) -> list[Any]:
    from sklearn.pipeline import Pipeline

    if type(est) is not Pipeline:
        if isinstance(est, Pipeline):
            raise TypeError(f"unsupported pipeline type {type(est).__name__}")
        return [est]
    steps: list[Any] = []
    for _, step in est.steps:
        if step is None or (isinstance(step, str) and step == "passthrough"):
            continue
        steps.extend(_flatten_pipeline(step))
    return steps


def _not_fitted(est: Any) -> None:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(est)
    except NotFittedError as exc:
        raise ValueError(f"{type(est).__name__} is not fitted: call fit() "
                         "before exporting it") from exc


def _linear(est: Any) -> tuple[np.ndarray, np.ndarray]:
    """(W as F x 1, b as 1) of a single-output linear regressor."""
    coef = _f64(est.coef_)
    if coef.ndim == 2 and coef.shape[0] != 1:
        raise ValueError(f"{type(est).__name__} has {coef.shape[0]} outputs: "
                         "Drover models predict one regression target")
    coef = coef.reshape(-1)
    intercept = _f64(est.intercept_).reshape(-1)
    if intercept.size == 0:
        intercept = np.zeros(1)
    if intercept.size != 1:
        raise ValueError(f"{type(est).__name__} has {intercept.size} "
                         "outputs: Drover models predict one target")
    return coef.reshape(-1, 1), intercept


def _logistic(est: Any, m: _Model) -> None:
    n_classes = len(est.classes_)
    coef, intercept = _f64(est.coef_), _f64(est.intercept_).reshape(-1)
    # scikit-learn 1.2's LogisticRegression.predict_proba: one-vs-rest when
    # multi_class is "ovr", or "auto" with 2 classes or liblinear; else
    # softmax over the decision function.
    mc = getattr(est, "multi_class", "auto")
    ovr = mc == "ovr" or (mc == "auto" and
                          (n_classes <= 2 or est.solver == "liblinear"))
    if n_classes == 2:
        # One row: P(classes_[1]) = sigmoid(z). Multinomial with two
        # classes takes softmax([-z, z]) = sigmoid(2 z): doubling is exact.
        factor = 1.0 if ovr else 2.0
        m.layers = [(factor * coef.T, factor * intercept, "sigmoid")]
        m.algo = "logreg"
    elif ovr:
        raise ValueError("LogisticRegression with one-vs-rest multiclass "
                         f"(multi_class={mc!r}, solver={est.solver!r}) "
                         "normalises K sigmoids, which a Drover model cannot "
                         "express; fit it with multi_class='multinomial' and "
                         "a solver such as 'lbfgs'")
    else:
        m.layers = [(coef.T, intercept, "softmax")]
        m.algo = "softmax"


def _mlp(est: Any, m: _Model, classifier: bool) -> None:
    act = est.activation
    if act not in ("relu", "identity"):
        raise ValueError(f"{type(est).__name__}(activation={act!r}) is not "
                         "supported: Drover's hidden layers are relu or "
                         "identity")
    out = est.out_activation_
    if classifier:
        if out == "logistic" and est.n_outputs_ == 1:
            head = "sigmoid"  # binary: one unit, P(classes_[1])
        elif out == "softmax":
            head = "softmax"
        else:
            raise ValueError(f"MLPClassifier with {est.n_outputs_} "
                             f"{out} outputs (multi-label) is not "
                             "supported: Drover models predict one class")
    else:
        if est.n_outputs_ != 1:
            raise ValueError(f"MLPRegressor has {est.n_outputs_} outputs: "
                             "Drover models predict one regression target")
        head = "identity"
    n = len(est.coefs_)
    m.layers = [(_f64(w), _f64(b), act if i + 1 < n else head)
                for i, (w, b) in enumerate(zip(est.coefs_, est.intercepts_))]
    m.algo = "mlp"
    hidden = [int(w.shape[1]) for w in est.coefs_[:-1]]
    if len(hidden) <= MAX_HIDDEN:
        m.hyper["hidden"] = hidden
    # What scikit-learn ran, in Drover's terms where they mean the same:
    # epochs for the stochastic solvers (lbfgs counts iterations).
    if est.solver in ("adam", "sgd"):
        m.hyper["epochs"] = int(est.max_iter)
        if isinstance(est.batch_size, (int, np.integer)):
            m.hyper["batch"] = int(est.batch_size)
        m.hyper["lr"] = float(est.learning_rate_init)
        m.meta["epochs_run"] = int(est.n_iter_)
    m.hyper["tol"] = float(est.tol)
    if isinstance(est.random_state, (int, np.integer)) and \
            est.random_state >= 0:
        m.hyper["seed"] = int(est.random_state)
    loss = getattr(est, "loss_", None)
    if loss is not None and math.isfinite(loss):
        m.meta["final_loss"] = float(loss)


def from_sklearn(estimator: Any,
                 feature_names: Optional[Sequence[str]] = None,
                 *,
                 target: str = "target",
                 path: Optional[str] = None) -> bytes:
    """Export a fitted scikit-learn model as the bytes of a ``.drvm`` file.

    estimator: a fitted LinearRegression, Ridge, LogisticRegression
        (binary, or multinomial for K > 2 classes), MLPClassifier or
        MLPRegressor (hidden activation relu or identity), alone or as the
        last step of a Pipeline whose only other step is a StandardScaler or
        a MinMaxScaler (feature_range any, clip=False).
    feature_names: the input column names, in input order; Drover maps CSV
        columns onto them by name. Default: the estimator's
        ``feature_names_in_`` (fitted on a DataFrame), else x0, x1, ...
    target: name of the target column (the bundled CSVs call it "target").
    path: when given, the file is also written there (see :func:`save`).

    Raises TypeError for an unsupported estimator or step type and
    ValueError for a supported one the format cannot express (not fitted,
    another activation, one-vs-rest multiclass, several outputs, ...).
    """
    try:
        import sklearn
        from sklearn.linear_model import (LinearRegression,
                                          LogisticRegression, Ridge)
        from sklearn.neural_network import MLPClassifier, MLPRegressor
    except ImportError as exc:  # pragma: no cover - needs sklearn absent
        raise ImportError("from_sklearn needs scikit-learn") from exc

    steps = _flatten_pipeline(estimator)
    if not steps:
        raise TypeError("the Pipeline has no estimator (every step is "
                        "passthrough)")
    model, pre = steps[-1], steps[:-1]
    kind = type(model)
    if kind not in (LinearRegression, Ridge, LogisticRegression,
                    MLPClassifier, MLPRegressor):
        raise TypeError(f"unsupported estimator {kind.__name__}: Drover can "
                        f"import {_SUPPORTED_SKLEARN}")
    if len(pre) > 1:
        raise ValueError(f"{len(pre)} preprocessing steps "
                         f"({', '.join(type(s).__name__ for s in pre)}): "
                         "Drover models hold one scaler")
    _not_fitted(model)
    for step in pre:
        _not_fitted(step)

    m = _Model()
    F = int(model.n_features_in_)
    if pre:
        if int(getattr(pre[0], "n_features_in_", F)) != F:
            raise ValueError("the scaler and the model see different numbers "
                             "of features")
    first = pre[0] if pre else model
    m.features = _feature_names(feature_names, F, first, target)
    m.target = target

    classifier = kind in (LogisticRegression, MLPClassifier)
    if classifier:
        m.task = "classification"
        m.classes, m.classes_numeric = _classes(list(model.classes_))
    if kind is LinearRegression:
        m.layers = [(*_linear(model), "identity")]
        m.algo = "ols"
    elif kind is Ridge:
        m.layers = [(*_linear(model), "identity")]
        m.algo = "ridge"
    elif kind is LogisticRegression:
        _logistic(model, m)
    else:
        _mlp(model, m, classifier)

    m.scaler_kind = "none"
    if pre:
        m.scaler_kind, m.offset, m.scale, frange = _scaler_from(pre[0], F)
        if frange is not None and frange != (0.0, 1.0):
            # x01 * (hi - lo) + lo feeds the first layer:
            # (x01 (hi - lo) + lo) W + b = x01 ((hi - lo) W) + (lo 1ᵀW + b).
            lo, hi = frange
            w, b, act = m.layers[0]
            m.layers[0] = ((hi - lo) * w, b + lo * w.sum(axis=0), act)
    m.hyper["scale"] = m.scaler_kind
    names = "+".join(type(s).__name__ for s in steps)
    return _finish(m, f"sklearn {sklearn.__version__}", names, path)


# ----------------------------------------------------------------- PyTorch


def from_torch(module: Any,
               feature_names: Sequence[str],
               classes: Optional[Sequence[Any]] = None,
               *,
               target: str = "target",
               path: Optional[str] = None) -> bytes:
    """Export a PyTorch ``nn.Sequential`` as the bytes of a ``.drvm`` file.

    module: ``nn.Sequential`` (nested ones are flattened) of ``nn.Linear``
        and ``nn.ReLU``, the first and last being Linear layers, optionally
        followed by a final ``nn.Softmax`` over the last dimension or
        ``nn.Sigmoid``. Two Linear layers in a row are kept as an identity
        layer followed by the next.
    feature_names: the input column names (the first Linear's in_features).
    classes: None for regression (the last Linear has one output and no
        final activation follows). For classification the labels of the
        outputs in order; the last layer then yields probabilities: its
        logits go through softmax (K outputs) or, with one output and two
        classes, a sigmoid giving P(classes[1]) -- whether or not the
        module ends with that Softmax/Sigmoid itself.
    target, path: as for :func:`from_sklearn`.

    The input is not scaled (scaler "none"): put any normalisation in the
    first Linear layer, or as standardised inputs in the data.
    """
    try:
        import torch
        from torch import nn
    except ImportError as exc:  # pragma: no cover - needs torch absent
        raise ImportError("from_torch needs torch") from exc

    def flatten(mod: Any) -> list[Any]:
        if type(mod) is nn.Sequential:
            return [leaf for child in mod for leaf in flatten(child)]
        return [mod]

    if not isinstance(module, nn.Module):
        raise TypeError(f"from_torch takes an nn.Sequential, not "
                        f"{type(module).__name__}")
    if type(module) is not nn.Sequential:
        raise TypeError(f"unsupported module {type(module).__name__}: "
                        "export an nn.Sequential of Linear and ReLU layers")
    mods = flatten(module)
    final = None
    if mods and type(mods[-1]) in (nn.Softmax, nn.Sigmoid):
        final = mods.pop()
        # dim=None: torch's implicit choice, dim 1 for the 2-D batches
        # Drover feeds.
        if type(final) is nn.Softmax and final.dim not in (-1, 1, None):
            raise ValueError(f"Softmax(dim={final.dim}): only a softmax over "
                             "the features (dim=-1 or 1) is supported")
    layers: list[tuple[np.ndarray, np.ndarray, str]] = []
    for i, mod in enumerate(mods):
        if type(mod) is nn.Linear:
            with torch.no_grad():
                w = mod.weight.detach().cpu().double().numpy().T.copy()
                b = (mod.bias.detach().cpu().double().numpy().copy()
                     if mod.bias is not None else np.zeros(w.shape[1]))
            layers.append((w, b, "identity"))
        elif type(mod) is nn.ReLU:
            if not layers or layers[-1][2] != "identity" or \
                    type(mods[i - 1]) is not nn.Linear:
                raise ValueError(f"layer {i}: ReLU must follow a Linear "
                                 "layer")
            layers[-1] = (layers[-1][0], layers[-1][1], "relu")
        else:
            raise TypeError(f"layer {i}: unsupported module "
                            f"{type(mod).__name__}: only Linear and ReLU "
                            "(and a final Softmax or Sigmoid) are supported")
    if not layers:
        raise ValueError("the module holds no Linear layer")
    if layers[-1][2] != "identity":
        raise ValueError("the last layer is a ReLU: Drover's output layer is "
                         "identity (regression), softmax or sigmoid")

    m = _Model()
    n_out = layers[-1][0].shape[1]
    m.features = _feature_names(feature_names, layers[0][0].shape[0], None,
                                target)
    m.target = target
    w, b, _ = layers[-1]
    if classes is None:
        if final is not None:
            raise ValueError(f"a final {type(final).__name__} needs classes: "
                             "pass classes=[...] for a classifier")
        if n_out != 1:
            raise ValueError(f"regression with {n_out} outputs: Drover "
                             "models predict one target")
        head = "identity"
    else:
        m.task = "classification"
        m.classes, m.classes_numeric = _classes(list(classes))
        K = len(m.classes)
        if n_out == 1 and K == 2 and (final is None or
                                      type(final) is nn.Sigmoid):
            head = "sigmoid"
        elif n_out == K and (final is None or type(final) is nn.Softmax):
            head = "softmax"
        else:
            raise ValueError(f"{n_out} outputs"
                             f"{' + ' + type(final).__name__ if final else ''}"
                             f" do not fit {K} classes: use K outputs "
                             "(softmax) or 1 output with 2 classes (sigmoid)")
    layers[-1] = (w, b, head)
    m.layers = layers
    if len(layers) > 1:
        m.algo = "mlp"
        hidden = [int(lw.shape[1]) for lw, _, _ in layers[:-1]]
        if len(hidden) <= MAX_HIDDEN:
            m.hyper["hidden"] = hidden
    else:
        m.algo = {"identity": "gd", "sigmoid": "logreg",
                  "softmax": "softmax"}[head]
    m.hyper["scale"] = "none"
    names = "+".join(type(x).__name__ for x in flatten(module))
    return _finish(m, f"torch {torch.__version__}", names, path)


# ------------------------------------------------------------------ files


def save(path: str, data: bytes) -> None:
    """Write model bytes to path atomically (mode 0644).

    A temporary file in the same folder is written, flushed to disk and
    renamed over path, so path holds the old file or the whole new one.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp.",
                               dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load(data: bytes) -> dict:
    """Check a .drvm frame (magic, version, length, SHA-256) and return its
    body as a dict (str keys; blobs as bytes). For inspection and tests:
    it checks the frame, not the model."""
    if len(data) < 16:
        raise ValueError("too short for a model file header")
    if data[:4] != MAGIC:
        raise ValueError("not a Drover model file (no DRVM magic)")
    major, minor, n = struct.unpack_from("<HHQ", data, 4)
    if major != MAJOR:
        raise ValueError(f"model file version {major}.{minor}, this reads "
                         f"{MAJOR}.x")
    if n > MAX_BODY_BYTES or len(data) != 16 + n + 32:
        raise ValueError("truncated, or bytes after the checksum")
    if hashlib.sha256(data[:16 + n]).digest() != data[16 + n:]:
        raise ValueError("SHA-256 mismatch: the file is corrupted")
    return msgpack.unpackb(data[16:16 + n], raw=False)
