"""Training through the queue (CSV file, array, stored data set), with
progress; the model registry and data sets."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from conftest import DATA, load_csv, run_cli
from drover import errors

EPOCH = 1700000000  # SOURCE_DATE_EPOCH of run_cli: same file bytes


def test_train_on_csv_with_progress_equals_local_train(client, tmp_path):
    seen = []
    res = client.train("py-t-digits", str(DATA / "digits_train.csv"),
                       algo="mlp", hidden=[16], epochs=12, patience=0,
                       created_unix=EPOCH, on_progress=seen.append,
                       timeout=120)
    assert res.ok and res.model.startswith("py-t-digits@")
    assert seen, "no progress reported"
    assert all(p.epochs == 12 and 1 <= p.epoch <= 12 for p in seen)
    assert [p.epoch for p in seen] == sorted(p.epoch for p in seen)
    assert all(math.isfinite(p.loss) for p in seen)
    assert all(p.job == res.job for p in seen)
    # what `drover local train` writes with the same options, byte for byte
    path = tmp_path / "local.drvm"
    run_cli("local", "train", "--data", str(DATA / "digits_train.csv"),
            "--algo", "mlp", "--hidden", "16", "--epochs", "12",
            "--patience", "0", "--out", str(path), "--threads", "1")
    assert res.header["sha256"] == hashlib.sha256(path.read_bytes()).digest()
    rec = client.model(res.model)
    assert rec["lineage"]["epochs_run"] == 12
    assert rec["lineage"]["train"]["hidden"] == [16]


def test_train_on_arrays_then_infer(client):
    X, y, header = load_csv("iris_train.csv")
    job = client.submit_train("py-t-iris", X, y.astype(float).astype(int),
                              algo="softmax", columns=header[:-1],
                              target="species")
    res = job.result(60)
    rec = client.model(res.model, schema=True)
    assert rec["schema"]["features"] == header[:-1]
    assert rec["schema"]["target"] == "species"
    assert rec["task"] == "classification" and rec["features"] == 4
    Xt, yt, _ = load_csv("iris_test.csv")
    pred = client.predict(res.model, Xt)
    acc = np.mean(np.array(pred.labels) == yt.astype(float).astype(int)
                  .astype(str))
    assert acc > 0.8


def test_train_errors(client):
    # PROTOCOL.md says train fields are checked with DV_EINVAL; the broker
    # answers an unknown algo DV_EFORMAT ("'train' must be a map with
    # 'algo' (...)"): reported, asserted as it is.
    with pytest.raises(errors.Format) as ei:
        client.train("py-t-bad", str(DATA / "iris_train.csv"),
                     algo="nosuchalgo", timeout=30)
    assert "algo" in ei.value.text
    with pytest.raises(errors.Invalid):
        client.train("py-t-bad", str(DATA / "iris_train.csv"),
                     algo="mlp", epochs=0, timeout=30)
    with pytest.raises(errors.Format) as ei:
        client.train("py-t-bad", b"a,b\n1,x\n2,\n", algo="ols", timeout=30)
    assert "line" in ei.value.text
    with pytest.raises(errors.Invalid):
        client.submit_train("py-t-bad", algo="ols")  # no data at all
    with pytest.raises(TypeError):
        client.submit_train("py-t-bad", b"x", algo="ols", bogus=1)


def test_datasets_crud_and_train_on_stored(client):
    X, y, header = load_csv("diabetes_train.csv")
    rec = client.dataset_push("py-ds-diabetes", str(DATA /
                                                   "diabetes_train.csv"))
    assert rec["name"] == "py-ds-diabetes" and rec["version"] >= 1
    assert rec["rows"] == len(X) and rec["columns"] == len(header)
    assert rec["sha256"] == hashlib.sha256(
        (DATA / "diabetes_train.csv").read_bytes()).digest()
    arr = client.dataset_push("py-ds-arr", X, y.astype(float))
    assert arr["rows"] == len(X) and arr["target"] == "target"
    names = {d["name"] for d in client.datasets()}
    assert {"py-ds-diabetes", "py-ds-arr"} <= names
    assert client.dataset("py-ds-diabetes")["version"] == rec["version"]
    res = client.train("py-t-diab", dataset=f"py-ds-diabetes@{rec['version']}",
                       algo="ridge", timeout=60)
    lin = client.model(res.model)["lineage"]
    assert lin["dataset"]["name"] == "py-ds-diabetes"
    assert lin["data_rows"] == len(X)
    m = client.evaluate(res.model, dataset="py-ds-diabetes")
    assert m["task"] == "regression" and m["rows"] == len(X)
    with pytest.raises(errors.NoEntry):
        client.dataset_share("py-ds-arr", ["*"])  # plain mode: no owner
    assert client.dataset_rm("py-ds-arr") == 1
    with pytest.raises(errors.NoEntry):
        client.dataset("py-ds-arr")
    with pytest.raises(errors.Format):
        client.dataset_push("py-ds-bad", b"a,b\n1,2\nx,3\n")


def test_models_crud(client, models, tmp_path):
    path = models["iris"]["path"]
    a = client.model_push("py-crud", str(path))
    b = client.model_push("py-crud", path.read_bytes())
    c = client.model_push("py-crud", str(path))
    assert [a["version"], b["version"], c["version"]] == [1, 2, 3]
    listed = [m for m in client.models() if m["name"] == "py-crud"]
    assert [m["version"] for m in listed] == [1, 2, 3]
    assert client.model("py-crud")["version"] == 3
    assert client.model("py-crud", 2)["sha256"] == a["sha256"]
    ok = client.model_alias("py-crud", "prod", 1)
    assert ok["version"] == 1 and ok["previous"] == 0
    assert client.model("py-crud@prod")["version"] == 1
    assert client.infer("py-crud@prod", np.zeros((1, 4))).shape == (1, 3)
    with pytest.raises(errors.Invalid):
        client.model_rm("py-crud", 1)  # an alias names it
    assert client.model_gc("py-crud", keep=1) == [2]
    assert client.model_unalias("py-crud", "prod")["previous"] == 1
    with pytest.raises(errors.NoModel):
        client.model("py-crud@prod")
    cfg = client.model_config("py-crud", max_batch_rows=64, max_delay_us=10)
    assert (cfg["max_batch_rows"], cfg["max_delay_us"]) == (64, 10)
    assert client.model_config("py-crud")["max_batch_rows"] == 64
    assert client.model_rm("py-crud") == 2
    with pytest.raises(errors.NoModel):
        client.model("py-crud")


def test_model_push_errors(client, models):
    blob = models["iris"]["path"].read_bytes()
    with pytest.raises(errors.Truncated):
        client.model_push("py-bad", blob[:-10])
    with pytest.raises(errors.Format):
        client.model_push("py-bad", b"not a model file at all" * 10)
    with pytest.raises(errors.Checksum):
        client._call("model_push", {"name": "py-bad",
                                    "sha256": b"\0" * 32}, ("model",), [blob])
