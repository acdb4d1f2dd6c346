"""The message layer without a broker: batched replies (accepted_many,
results) split back into per-request outcomes, tensors, CSV."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from drover import _proto as P
from drover import errors


class F:
    """A stand-in for zmq.Frame (what _dispatch reads: .buffer)."""

    def __init__(self, data: bytes):
        self.buffer = memoryview(data)


def msg(h, *frames):
    h = {"v": [1, 4], "rid": 0, **h}
    return [F(msgpack.packb(h, use_bin_type=True)), *map(F, frames)]


def test_results_message_splits_frames_per_request():
    core = P._Core()
    core._core_init()
    states = {rid: P._JobState() for rid in (11, 12, 13)}
    core._pending.update(states)
    core._dispatch(msg({"t": "accepted_many",
                        "accepted": [[11, 101], [12, 102], [13, 103]]}))
    assert [s.id for s in states.values()] == [101, 102, 103]
    assert all(s.accepted and not s.finished for s in states.values())
    a = np.arange(6, dtype="<f4").reshape(3, 2)
    b = np.arange(2, dtype="<f4").reshape(1, 2) + 100
    out = {"frame": 1, "dtype": "f32"}
    entries = [
        {"rid": 12, "job": 102, "state": "done", "attempts": 1,
         "output": {**out, "shape": [3, 2]}, "classes": ["x", "y"],
         "frames": [a.nbytes]},
        {"rid": 11, "job": 101, "state": "failed", "attempts": 1,
         "error": {"name": "DV_ENAN", "text": "row 0"}, "frames": []},
        {"rid": 13, "job": 103, "state": "done", "attempts": 1,
         "output": {**out, "shape": [1, 2]}, "classes": ["x", "y"],
         "frames": [b.nbytes]},
    ]
    core._dispatch(msg({"t": "results", "results": entries},
                       a.tobytes() + b.tobytes()))
    assert core._pending == {}
    r12, r13 = states[12].res, states[13].res
    np.testing.assert_array_equal(r12.output, a)
    np.testing.assert_array_equal(r13.output, b)
    assert r12.classes == ["x", "y"] and not r12.output.flags.writeable
    with pytest.raises(errors.NaN) as ei:
        states[11].res.raise_for_error()
    assert ei.value.job == 101 and ei.value.text == "row 0"


def test_refusal_under_its_rid_and_unsolicited_errors():
    core = P._Core()
    core._core_init()
    st = P._JobState()
    core._pending[5] = st
    core._dispatch(msg({"t": "error", "rid": 5,
                        "error": {"name": "DV_EQUEUEFULL", "text": "full"}}))
    assert st.finished and isinstance(st.exc, errors.QueueFull)
    core._dispatch(msg({"t": "error", "rid": 0,
                        "error": {"name": "DV_EINVAL", "text": "seq"}}))
    assert isinstance(core.unsolicited_errors[-1], errors.Invalid)
    core._dispatch([F(b"\xc1 not msgpack")])  # dropped, no exception


def test_long_classes_travel_as_a_frame():
    classes = [f"c{i}" for i in range(3)]
    r = P.Result({"state": "done", "classes": {"frame": 2},
                  "output": {"frame": 1, "dtype": "f32", "shape": [1, 3]}},
                 [memoryview(np.ones(3, "<f4").tobytes()),
                  memoryview(msgpack.packb(classes))])
    assert r.classes == classes
    assert r.output.shape == (1, 3)


def test_tensor_checks():
    with pytest.raises(errors.Shape):
        P.read_tensor({"frame": 1, "dtype": "f32", "shape": [2, 2]},
                      [memoryview(b"\0" * 12)])
    with pytest.raises(errors.DType):
        P.read_tensor({"frame": 1, "dtype": "f64", "shape": [1, 1]},
                      [memoryview(b"\0" * 8)])
    with pytest.raises(errors.Format):
        P.read_tensor({"frame": 3, "dtype": "f32", "shape": [1, 1]}, [])


def test_as_input_never_writes_the_callers_array():
    x = np.arange(8, dtype="<f4").reshape(2, 4)
    assert P.as_input(x) is x  # sent as is, no copy
    f64 = np.arange(8.0).reshape(2, 4)
    y = P.as_input(f64)
    assert y is not f64 and y.dtype == np.float32 and f64.dtype == np.float64
    big_endian = np.arange(4, dtype=">f4")
    z = P.as_input(big_endian)
    assert z.shape == (1, 4) and z.dtype.str == "<f4"
    np.testing.assert_array_equal(z[0], [0, 1, 2, 3])
    assert big_endian.dtype.str == ">f4"


def test_join_keeps_adjacent_slices_zero_copy():
    x = np.arange(12, dtype="<f4").reshape(6, 2)
    buf = P.tensor_buffer(x)
    parts = [buf[0:8], buf[8:24], buf[24:48]]
    j = P.join(parts)
    assert isinstance(j, memoryview) and j.obj is x
    assert bytes(j) == x.tobytes()
    assert P.join([b"ab", b"cd"]) == b"abcd"
    assert bytes(P.join([buf[0:8], buf[16:24]])) == bytes(buf[0:8]) + bytes(
        buf[16:24])


def test_csv_round_trip_of_arrays():
    X = np.array([[0.1, 2.5], [3.0, -4.25]], dtype=np.float32)
    text = P.to_csv(X, np.array(["a", "b,c"]), columns=["p", "q"],
                    target="label").decode()
    lines = text.splitlines()
    assert lines[0] == "p,q,label"
    # 9 digits: reads back as the same float32
    assert [np.float32(v) for v in lines[1].split(",")[:2]] == [
        np.float32(0.1), np.float32(2.5)]
    assert lines[2].endswith(',"b,c"')
    with pytest.raises(errors.Invalid):
        P.to_csv(X, [1, 2, 3])


def test_split_rows_bounds():
    assert P.split_rows(10, 4, 4, 1 << 28) == [(0, 4), (4, 8), (8, 10)]
    # half a frame at most
    r = P.split_rows(1000, 1000, 4096, 1 << 20)
    assert all((b - a) * 1000 * 4 <= 1 << 19 for a, b in r)
    assert r[-1][1] == 1000


def test_endpoint_lists(monkeypatch):
    assert P.parse_endpoints("tcp://a:1") == ["tcp://a:1"]
    assert P.parse_endpoints(" tcp://a:1, tcp://b:2 ,") == ["tcp://a:1",
                                                           "tcp://b:2"]
    with pytest.raises(errors.Invalid):
        P.parse_endpoints(" , ")
    monkeypatch.setenv("DROVER_BROKER", "tcp://a:1,tcp://b:2")
    core = P._Core()
    core._core_init()
    assert core.endpoints == ["tcp://a:1", "tcp://b:2"] and core._multi
    core._core_init("tcp://c:3")
    assert core.endpoints == ["tcp://c:3"] and not core._multi
    # a submit gets an automatic key with a list only, never over the
    # caller's own
    assert "idempotency_key" not in core._keyed({})
    core._core_init("tcp://a:1,tcp://b:2")
    assert len(core._keyed({})["idempotency_key"]) == 32
    assert core._keyed({"idempotency_key": "mine"})["idempotency_key"] == \
        "mine"


def test_leader_hint_mapping():
    eps = ["tcp://h1:7470", "tcp://h2:7471", "tcp://h3:7472"]
    cur = "tcp://h1:7470"
    assert P.leader_endpoint(None, eps, cur) is None
    assert P.leader_endpoint("", eps, cur) is None
    assert P.leader_endpoint("tcp://h2:7471", eps, cur) == "tcp://h2:7471"
    # bound to any address: the list entry with that port
    assert P.leader_endpoint("tcp://0.0.0.0:7472", eps, cur) == eps[2]
    assert P.leader_endpoint("tcp://*:7471", eps, cur) == eps[1]
    # no entry with that port: the current member's host
    assert P.leader_endpoint("tcp://*:9000", eps, cur) == "tcp://h1:9000"
    # a member not in the list (added later) is reached as named
    assert P.leader_endpoint("tcp://h4:7470", eps, cur) == "tcp://h4:7470"
    assert P.leader_endpoint("ipc:///tmp/x", eps, cur) == "ipc:///tmp/x"


def test_not_leader_error_carries_the_hint():
    e = errors.from_reply({"t": "error", "rid": 1, "leader": "tcp://b:1",
                           "error": {"name": "DV_ENOTLEADER", "text": "no"}})
    assert isinstance(e, errors.NotLeader) and e.leader == "tcp://b:1"
    assert "tcp://b:1" in str(e)
    e = errors.from_reply({"t": "error", "rid": 1,
                           "error": {"name": "DV_ENOTLEADER", "text": "no"}})
    assert isinstance(e, errors.NotLeader) and e.leader is None
    assert issubclass(errors.LeaderChanged, errors.DroverError)
