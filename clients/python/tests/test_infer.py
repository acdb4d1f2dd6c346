"""infer/predict/evaluate on iris, digits and diabetes, against what
`drover local predict` / `drover local eval` compute from the same file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import load_csv, run_cli
from drover import errors


def local_predictions(lines):
    """(outputs, labels or None) from `drover local predict` CSV lines."""
    head = lines[0].split(",")
    rows = [ln.split(",") for ln in lines[1:]]
    if head == ["value"]:
        return np.array([[float(r[0])] for r in rows], np.float32), None
    classes = [h[2:] for h in head[2:]]
    probs = np.array([[float(v) for v in r[2:]] for r in rows], np.float32)
    return probs, (classes, [int(r[0]) for r in rows])


@pytest.mark.parametrize("name", ["iris", "digits", "diabetes"])
def test_infer_matches_local_predict(client, models, name):
    m = models[name]
    X, _, _ = load_csv(m["csv"].name)
    want, cls = local_predictions(m["predict"])
    pred = client.predict(m["ref"], X)
    assert pred.model == m["ref"]
    assert pred.output.shape == want.shape
    # local predict prints %.6g (probabilities) / %.9g (values)
    np.testing.assert_allclose(pred.output, want, rtol=2e-5, atol=2e-6)
    if cls is None:
        assert pred.classes is None
    else:
        classes, index = cls
        assert pred.classes == classes
        assert list(pred.class_index) == index
        assert pred.labels == [classes[i] for i in index]
    # infer() is predict()'s output
    np.testing.assert_array_equal(client.infer(m["ref"], X), pred.output)


def test_big_input_split_into_many_requests(client, models):
    m = models["digits"]
    X, _, _ = load_csv(m["csv"].name)
    big = np.ascontiguousarray(np.tile(X, (20, 1)))  # ~7,000 rows
    whole = client.predict(m["ref"], big, batch=100000).output
    split = client.predict(m["ref"], big, batch=37, window=16,
                           queue="py-split")
    after = client.status()["queues"]["py-split"]["done"]
    n_req = -(-big.shape[0] // 37)
    assert after == n_req  # one job per request
    assert split.output.shape == whole.shape
    # equal within float32 rounding (docs/PROTOCOL.md, dynamic batching)
    np.testing.assert_allclose(split.output, whole, rtol=1e-5, atol=1e-6)
    assert split.classes == client.predict(m["ref"], X[:1]).classes


def test_input_array_is_never_mutated(client, models):
    m = models["iris"]
    X, _, _ = load_csv(m["csv"].name)
    X64 = X.astype(np.float64)
    keep32, keep64 = X.copy(), X64.copy()
    Xf = np.asfortranarray(X)
    client.predict(m["ref"], X, batch=4)
    client.predict(m["ref"], X64)  # converted: a new array
    client.predict(m["ref"], Xf, batch=3)
    jobs = client.submit_many("infer", [X[i:i + 5] for i in range(0, 30, 5)],
                              model=m["ref"])
    outs = [j.result(20).output for j in jobs]
    np.testing.assert_array_equal(X, keep32)
    np.testing.assert_array_equal(X64, keep64)
    np.testing.assert_array_equal(Xf, keep32)
    assert X.flags.writeable and X64.dtype == np.float64
    np.testing.assert_allclose(np.vstack(outs), client.infer(m["ref"], X),
                               rtol=1e-5, atol=1e-6)


def test_output_is_a_read_only_view(client, models):
    m = models["iris"]
    X, _, _ = load_csv(m["csv"].name)
    out = client.infer(m["ref"], X)  # one request: a view of the frame
    assert out.dtype == np.float32
    assert not out.flags.writeable
    assert not out.flags.owndata
    with pytest.raises(ValueError):
        out[0, 0] = 1.0
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_infer_errors(client, models):
    ref = models["iris"]["ref"]
    with pytest.raises(errors.NoModel) as ei:
        client.infer("py-no-such-model", np.zeros((2, 4), np.float32))
    assert ei.value.code == "DV_ENOMODEL" and ei.value.text
    with pytest.raises(errors.NoModel):
        client.infer(ref.split("@")[0] + "@999", np.zeros((2, 4)))
    with pytest.raises(errors.Shape) as ei:
        client.infer(ref, np.zeros((2, 5), np.float32))
    assert "5" in ei.value.text and "4" in ei.value.text
    bad = np.zeros((3, 4), np.float32)
    bad[1, 2] = np.nan
    with pytest.raises(errors.NaN) as ei:
        client.infer(ref, bad)
    assert ei.value.code == "DV_ENAN"
    bad[1, 2] = np.inf
    with pytest.raises(errors.NaN):
        client.infer(ref, bad, batch=1)  # one of three requests fails
    with pytest.raises(errors.Invalid):
        client.infer(ref, np.zeros((2, 2, 2)))
    with pytest.raises(errors.Invalid):
        client.infer(ref, np.array([["a", "b", "c", "d"]]))


def test_evaluate_matches_local_eval(client, models):
    for name in ("iris", "diabetes"):
        m = models[name]
        local = json.loads(run_cli("local", "eval", "--model", str(m["path"]),
                                   "--data", str(m["csv"]), "--json",
                                   "--threads", "1").stdout)
        got = client.evaluate(m["ref"], str(m["csv"]))
        assert got["model"] == m["ref"]
        assert got["rows"] == local["rows"] == len(m["predict"]) - 1
        keys = [k for k in ("accuracy", "f1_macro", "log_loss", "mse", "mae",
                            "r2") if k in local]
        assert len(keys) >= 2
        for k in keys:
            assert got[k] == pytest.approx(local[k], rel=1e-6, abs=1e-9)
        if name == "iris":
            conf = got["confusion"]
            assert conf.shape == (3, 3)
            assert conf.tolist() == local["confusion"]


def test_evaluate_on_an_array(client, models):
    m = models["iris"]
    X, y, header = load_csv(m["csv"].name)
    got = client.evaluate(m["ref"], X, y.astype(float).astype(int),
                          columns=header[:-1], target=header[-1])
    assert got["rows"] == len(X)
    byfile = client.evaluate(m["ref"], str(m["csv"]))
    assert got["accuracy"] == pytest.approx(byfile["accuracy"])


def test_unstored_results_come_batched_and_split_right(client, models):
    # durability none: results of one forward pass may come as one
    # `results` message (1.4); each request still gets its own rows
    m = models["digits"]
    X, _, _ = load_csv(m["csv"].name)
    one = client.predict(m["ref"], X, batch=len(X)).output
    many = client.predict(m["ref"], X, batch=3, durability="none",
                          queue="py-nodur")
    np.testing.assert_allclose(many.output, one, rtol=1e-5, atol=1e-6)
