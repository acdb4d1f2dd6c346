"""The broker's HTTP endpoint as an operator uses it: /metrics read by a
real Prometheus text parser (python3-prometheus-client) with counts that
move as jobs run; /api/status; the status page rendered by headless
Chromium showing the cluster; the bearer token; an exposed address refused
without one. Real processes: `drover up` and drover-broker.

Run by CTest (tests/CMakeLists.txt, test ops_metrics) with DROVER_BIN,
DROVER_BROKER_BIN, DROVER_WORKER_BIN set.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

BIN = os.environ.get("DROVER_BIN", "build/release/bin/drover")
BROKER = os.environ.get("DROVER_BROKER_BIN", "build/release/bin/drover-broker")
DEADLINE_S = 60


def cli(ep, *args, check=True):
    p = subprocess.run([BIN, *args, "--broker", ep], capture_output=True,
                       text=True, timeout=DEADLINE_S)
    if check and p.returncode != 0:
        raise AssertionError(f"drover {args}: {p.returncode} {p.stderr}")
    return p


@pytest.fixture
def cluster():
    """drover up with 2 workers on ipc; yields (endpoint, http base URL)."""
    d = tempfile.mkdtemp(prefix="dv-metrics-")
    ep = f"ipc://{d}/c.sock"
    err = open(os.path.join(d, "up.log"), "w+")
    up = subprocess.Popen([BIN, "up", "--workers", "2", "--endpoint", ep,
                           "--data", os.path.join(d, "data")],
                          stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        line = up.stdout.readline()
        assert line.startswith("READY "), line
        base = None
        for _ in range(200):  # the address follows READY on stderr
            err.seek(0)
            m = re.search(r"status page (http://[0-9.]+:[0-9]+)/", err.read())
            if m:
                base = m.group(1)
                break
            time.sleep(0.05)
        assert base, "drover up did not print its status page"
        yield ep, base
    finally:
        up.send_signal(signal.SIGTERM)
        try:
            up.wait(DEADLINE_S)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait()
        err.close()
        shutil.rmtree(d, ignore_errors=True)


def get(url, token=None):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode()


def scrape(base):
    status, ctype, text = get(base + "/metrics")
    assert status == 200
    assert ctype.startswith("text/plain; version=0.0.4")
    samples = {}
    families = {}
    for fam in text_string_to_metric_families(text):
        families[fam.name] = fam.type
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return families, samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_as_jobs_run(cluster):
    ep, base = cluster
    families, before = scrape(base)
    # every family the docs promise is there, with its type
    for name, kind in [
        ("drover_jobs_submitted", "counter"),
        ("drover_jobs_finished", "counter"),
        ("drover_job_queue_wait_seconds", "histogram"),
        ("drover_job_run_seconds", "histogram"),
        ("drover_infer_batch_rows", "histogram"),
        ("drover_store_commit_seconds", "histogram"),
        ("drover_queue_jobs", "gauge"),
        ("drover_queue_oldest_waiting_seconds", "gauge"),
        ("drover_workers", "gauge"),
        ("drover_worker_slots", "gauge"),
        ("drover_worker_resident_memory_bytes", "gauge"),
        ("drover_kept_results", "gauge"),
        ("drover_dead_letters", "gauge"),
        ("drover_dead_letters_dropped", "counter"),
        ("drover_timer_entries", "gauge"),
        ("drover_consumer_lag", "gauge"),
        ("drover_handshakes_refused", "counter"),
        ("process_cpu_seconds", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
    ]:
        assert families.get(name) == kind, (name, families.get(name))
    assert value(before, "drover_workers", state="ready") == 2

    cli(ep, "submit", "--echo", "64", "--count", "25", "--queue", "mq")
    # a stream consumer that reads 5 of mq's results and acknowledges them
    cli(ep, "results", "follow", "--queue", "mq", "--consumer", "audit",
        "--count", "5")
    # a job that fails for good: its run times out, one attempt
    cli(ep, "submit", "--sleep", "2000", "--timeout-ms", "50",
        "--max-attempts", "1", "--queue", "mq", check=False)
    # an infer job, so a forward pass is counted
    d = tempfile.mkdtemp(prefix="dv-metrics-model-")
    try:
        model = os.path.join(d, "iris.drvm")
        data = os.environ.get("DV_DATA_DIR", "data")
        subprocess.run([BIN, "local", "train", "--algo", "softmax", "--data",
                        os.path.join(data, "iris_train.csv"), "--out", model],
                       check=True, capture_output=True, timeout=DEADLINE_S)
        cli(ep, "models", "push", model, "--name", "iris")
        cli(ep, "infer", "--model", "iris", "--data",
            os.path.join(data, "iris_test.csv"), "--queue", "iq")
    finally:
        shutil.rmtree(d, ignore_errors=True)

    families, after = scrape(base)
    sub = value(after, "drover_jobs_submitted_total", queue="mq", kind="echo")
    assert sub - value(before, "drover_jobs_submitted_total", queue="mq",
                       kind="echo") == 25
    assert value(after, "drover_jobs_finished_total", queue="mq", kind="echo",
                 state="done") == 25
    assert value(after, "drover_jobs_finished_total", queue="mq",
                 kind="sleep", state="failed") == 1
    assert value(after, "drover_jobs_finished_total", queue="iq",
                 kind="infer", state="done") >= 1
    assert value(after, "drover_job_queue_wait_seconds_count",
                 kind="echo") >= 25
    assert value(after, "drover_job_run_seconds_count", kind="infer",
                 model="iris") >= 1
    assert value(after, "drover_infer_batch_rows_count") >= 1
    assert value(after, "drover_infer_batch_rows_sum") >= 30  # iris_test rows
    assert value(after, "drover_store_commit_seconds_count") > value(
        before, "drover_store_commit_seconds_count")
    assert value(after, "drover_queue_jobs", queue="mq", state="queued") == 0
    # its lag: what the broker lists for it (drover results consumers)
    listed = json.loads(cli(ep, "results", "consumers", "--queue", "mq",
                            "--json").stdout)
    audit = [c for c in listed if c["consumer"] == "audit"][0]
    assert audit["acked"] == 5 and audit["last"] >= 25, audit
    assert value(after, "drover_consumer_lag", queue="mq",
                 consumer="audit") == audit["last"] - 5
    assert ("drover_dead_letters", ()) in after
    assert value(after, "drover_dead_letters_dropped_total") == 0
    # Quick jobs with an hour's run timeout: their timer entries go once
    # the heap doubles, not after the hour (3,000 here without that).
    cli(ep, "submit", "--echo", "16", "--count", "3000", "--timeout-ms",
        "3600000", "--queue", "tq")
    timers = value(scrape(base)[1], "drover_timer_entries")
    assert timers < 1024, timers
    assert value(after, "drover_model_versions") == 1
    assert value(after, "process_resident_memory_bytes") > 1 << 20
    # workers' own figures arrive with their heartbeats (every second)
    for _ in range(DEADLINE_S * 10):
        rss = [v for k, v in scrape(base)[1].items()
               if k[0] == "drover_worker_resident_memory_bytes"]
        if len(rss) == 2 and all(v > 1 << 20 for v in rss):
            break
        time.sleep(0.1)
    assert len(rss) == 2 and all(v > 1 << 20 for v in rss), rss

    status, ctype, body = get(base + "/api/status")
    s = json.loads(body)
    assert ctype == "application/json"
    mq = [q for q in s["queues"] if q["name"] == "mq"][0]
    assert mq["done"] == 25 and mq["failed"] == 1
    assert len(s["workers"]) == 2
    # 1.5 workers say their compute threads (register) and what computes
    # (heartbeats, which have arrived: the figures above came with them)
    for w in s["workers"]:
        assert w["concurrency"] >= 1 and w["concurrency"] <= w["capacity"], w
        assert 0 <= w["computing"] <= w["concurrency"], w
    assert s["models"][0]["name"] == "iris"
    failure = s["recent_failures"][0]
    assert failure["error"] == "DV_ETIMEDOUT" and failure["queue"] == "mq"


def test_status_page_in_chromium(cluster):
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("chromium is not installed (scripts/deps.sh test installs it)")
    ep, base = cluster
    cli(ep, "submit", "--echo", "16", "--count", "7", "--queue", "pageq")
    with tempfile.TemporaryDirectory(prefix="dv-chromium-") as profile:
        p = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}",
             "--virtual-time-budget=5000", "--dump-dom", base + "/"],
            capture_output=True, text=True, timeout=120)
    dom = p.stdout
    assert "<h1>Drover</h1>" in dom, p.stderr[-2000:]
    # the script ran and drew the cluster: the queue with its 7 done jobs,
    # both workers, no error banner
    row = re.search(r"<tr><td>pageq</td>(.*?)</tr>", dom)
    assert row, dom[-3000:]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", row.group(1))
    assert cells[4] == "7"  # done
    assert dom.count("<td>w1-") + dom.count("<td>w2-") == 2
    state = re.search(r'<span id="state"[^>]*>([^<]*)</span>', dom)
    assert state and state.group(1).startswith("updated"), state


def test_token_and_exposed_address():
    d = tempfile.mkdtemp(prefix="dv-token-")
    try:
        token_file = os.path.join(d, "token")
        with open(token_file, "w") as f:
            f.write("0123456789abcdef-token\n")
        os.chmod(token_file, 0o600)
        b = subprocess.Popen(
            [BROKER, "--client", f"ipc://{d}/c", "--worker", f"ipc://{d}/w",
             "--http", "127.0.0.1:0", "--http-token", token_file],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            line = b.stdout.readline()
            base = line.split()[3]
            with pytest.raises(urllib.error.HTTPError) as e:
                get(base + "/metrics")
            assert e.value.code == 401
            with pytest.raises(urllib.error.HTTPError) as e:
                get(base + "/metrics", token="wrong-token-wrong")
            assert e.value.code == 401
            status, _, text = get(base + "/metrics",
                                  token="0123456789abcdef-token")
            assert status == 200 and "drover_workers" in text
        finally:
            b.terminate()
            b.wait(DEADLINE_S)
        # a token others may read is refused; an exposed address without a
        # token is refused before anything listens
        os.chmod(token_file, 0o644)
        p = subprocess.run([BROKER, "--client", f"ipc://{d}/c2", "--worker",
                            f"ipc://{d}/w2", "--http", "127.0.0.1:0",
                            "--http-token", token_file],
                           capture_output=True, text=True, timeout=DEADLINE_S)
        assert p.returncode == 2 and "chmod 600" in p.stderr
        p = subprocess.run([BROKER, "--client", f"ipc://{d}/c3", "--worker",
                            f"ipc://{d}/w3", "--http", "0.0.0.0:0"],
                           capture_output=True, text=True, timeout=DEADLINE_S)
        assert p.returncode == 1 and "--http-token" in p.stderr
    finally:
        shutil.rmtree(d, ignore_errors=True)
