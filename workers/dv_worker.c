// dv_worker — the worker's loop (see dv_worker.h).
//
// Model: a DEALER socket watched by dv_zwatch, a heartbeat timer and signal
// handles on one libuv loop. Any message from the broker counts as a sign of
// life; after `liveness` silent intervals the worker closes its socket,
// opens a new one and registers again, so a restarted broker gets its
// workers back by itself. Given a list of a broker group's members, it
// also watches the connection (zmq_socket_monitor): one that drops (the
// member died) or is refused sends it to the next member at once.
//
// Jobs: `echo` is answered on the loop thread (no compute). `infer` becomes
// a task: its input is decoded on the loop thread, the model is taken from
// the cache (or fetched from the broker first: the task waits in `waiting`
// until `model_data` arrives and its SHA-256 checks out), the prediction runs
// on the worker's compute threads (dv_pool), and the `done` goes out from the
// loop thread when it completes. The loop thread never does math, so
// heartbeats keep flowing while jobs run.
//
// Dynamic batching: infer tasks whose model is here wait in `ready` for a
// compute thread. When one is free, the first ready task and the ready tasks
// after it for the same model version, input width and priority (up to the
// model's max_batch_rows) run as one forward pass; each job still gets its
// own `done` with its own rows, and a task whose input is bad (NaN, wrong
// width) fails alone before the pass. Nothing waits for a batch to fill
// unless the model's max_delay_us says so: what is ready when a thread is
// free is the batch (docs/ARCHITECTURE.md, Dynamic batching).
//
// Model cache: models by "NAME@VERSION", each with a count of tasks using
// it and a last-used tick; past the memory budget the least recently used
// idle model is evicted (a model in use never is).
//
// Draining: on SIGINT/SIGTERM the worker says `bye` (the broker sends no new
// jobs), finishes what it holds, then stops. A second signal stops at once.
//
// This file is the loop; runs, caches, batching and the other task kinds
// live beside it (dv_worker_int.h lists the files and what they share;
// each shared function's contract is at its definition).
#include "dv_addr.h"
#include "dv_worker_int.h"

static int on_ready(dv_zwatch_t *zw, int events, void *arg);
static int on_monitor(dv_zwatch_t *zw, int events, void *arg);

// A group's `done`s are kept (kept_t) until a liveness period after a
// leader that welcomed us got them: a leader that dies before it commits
// one gets it again from its successor; other messages are not kept.
static void
keep_done(dv_worker_t *self,
          const uint8_t *h,
          size_t len,
          const dv_frame_t *frames,
          size_t n)
{
    dv_msg_t *m = NULL;
    dv_error_t e = {0};
    if (dv_msg_decode(&m, h, len, frames, n, NULL, &e) != 0) {
        return;
    }
    dv_msg_type_t t = dv_msg_type(m);
    dv_msg_destroy(&m);
    if (t != DV_MSG_DONE && t != DV_MSG_DONE_BATCH) {
        return;
    }
    kept_t *k = dv_calloc(1, sizeof *k);
    k->sent_ms = uv_now(&self->loop);
    k->header = dv_malloc(len);
    memcpy(k->header, h, len);
    k->header_len = len;
    for (size_t i = 0; i < n && i < DV_MAX_FRAMES; i++) {
        uint8_t *d = dv_malloc(frames[i].len ? frames[i].len : 1);
        if (frames[i].len) {
            memcpy(d, frames[i].data, frames[i].len);
        }
        k->frames[i] = (dv_frame_t){d, frames[i].len};
        k->n++;
    }
    k->next = self->kept;
    self->kept = k;
    if (self->unwelcomed) {
        // No leader took it (we are between members, or on one that has
        // not welcomed us): it goes again after the next welcome, and is
        // not forgotten before.
        self->resend_dones = true;
    }
}

static void
kept_free(kept_t *k)
{
    for (size_t i = 0; i < k->n; i++) {
        free((void *)k->frames[i].data);
    }
    free(k->header);
    free(k);
}

// Forget kept dones older than a liveness period (all: older_ms 0).
static void
kept_trim(dv_worker_t *self, uint64_t older_ms)
{
    uint64_t now = uv_now(&self->loop);
    for (kept_t **p = &self->kept; *p;) {
        if (older_ms == 0 || now - (*p)->sent_ms > older_ms) {
            kept_t *k = *p;
            *p = k->next;
            kept_free(k);
        } else {
            p = &(*p)->next;
        }
    }
}

void
wk_send_header(dv_worker_t *self,
               dv_msgw_t *w,
               const dv_frame_t *frames,
               size_t n)
{
    size_t len = 0;
    const uint8_t *h = dv_msgw_bytes(w, &len);
    if (self->group) {
        keep_done(self, h, len, frames, n);
    }
    if (self->sock && dv_wire_send(self->sock, NULL, 0, h, len, frames, n)) {
        dv_log(DV_LOG_WARN, "worker",
               "could not send a message to %s: %s (check the broker is up and "
               "reachable)",
               self->endpoint, zmq_strerror(zmq_errno()));
    }
    dv_msgw_destroy(&w);
}

// The entries of a cache, as "NAME@VERSION" (borrowed keys; free the
// array).
static const char **
cache_keys(const cached_t *list, size_t *n)
{
    size_t count = 0;
    for (const cached_t *c = list; c; c = c->next) {
        count++;
    }
    const char **keys = dv_malloc((count ? count : 1) * sizeof *keys);
    count = 0;
    for (const cached_t *c = list; c; c = c->next) {
        keys[count++] = c->key;
    }
    *n = count;
    return keys;
}

// What we hold, for the broker's affinity: models, and (1.1) data sets.
static void
write_models(const dv_worker_t *self, dv_msgw_t *w)
{
    size_t n = 0;
    const char **keys = cache_keys(self->cache, &n);
    dv_msgw_strs(w, "models", keys, n);
    free(keys);
    keys = cache_keys(self->dcache, &n);
    dv_msgw_strs(w, "datasets", keys, n);
    free(keys);
}

static void
send_register(dv_worker_t *self)
{
    // Its own request id: a refusal of the register (not of a heartbeat
    // sent before the welcome) is what stops the worker (on_ready).
    self->register_rid = ++self->next_rid;
    dv_msgw_t *w = dv_msgw_new(DV_MSG_REGISTER, self->register_rid);
    dv_msgw_str(w, "worker", self->name);
    // Which of our connections this is (1.6): a broker that still counts
    // an older one (we left it for silence) moves our jobs to this one,
    // never from a newer one to an older.
    dv_msgw_uint(w, "conn", self->conn);
    // Credits: the broker sends at most this many at a time. The pool runs
    // `capacity` of them; the rest wait in its queue.
    dv_msgw_uint(w, "capacity", self->capacity + self->prefetch);
    // Its compute threads (1.5): `drover workers` shows the jobs computing
    // out of these, apart from those held (prefetch).
    dv_msgw_uint(w, "concurrency", self->capacity);
    // Training jobs at once: fewer than the compute threads, so a thread
    // stays free for inference while models train.
    dv_msgw_uint(w, "train_slots", self->train_slots);
    write_models(self, w);
    if (self->n_queues) {
        dv_msgw_strs(w, "queues", (const char *const *)self->queues,
                     self->n_queues);
    }
    // The jobs we hold (1.6): a new leader of a broker group keeps their
    // leases here instead of running them again elsewhere.
    size_t n_held = 0;
    for (const task_t *t = self->tasks; t; t = t->all_next) {
        n_held++;
    }
    if (n_held) {
        dv_msgw_key(w, "running");
        dv_msgw_v_array(w, n_held);
        for (const task_t *t = self->tasks; t; t = t->all_next) {
            dv_msgw_v_array(w, 2);
            dv_msgw_v_uint(w, t->job);
            dv_msgw_v_uint(w, t->attempt);
        }
    }
    wk_send_header(self, w, NULL, 0);
}

// Ask for a model, or for a data set's next chunk (from f->got).
void
wk_send_fetch(dv_worker_t *self, const fetch_t *f)
{
    dv_msgw_t *w = dv_msgw_new(
        f->dataset ? DV_MSG_FETCH_DATASET : DV_MSG_FETCH_MODEL, f->rid);
    dv_msgw_str(w, "name", f->name);
    dv_msgw_uint(w, "version", f->version);
    if (f->dataset) {
        dv_msgw_uint(w, "offset", f->got);
    }
    wk_send_header(self, w, NULL, 0);
}

// The monitor's own socket, once its watcher has closed.
static void
on_monitor_closed(void *arg)
{
    int zero = 0;
    zmq_setsockopt(arg, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(arg);
}

// A list: watch self->sock's connection (before it connects, so that no
// event is missed), so that a member that dies or is not there is left at
// once (on_monitor). Without a monitor (libzmq refused one) the worker
// still moves on, after `liveness` silent heartbeats.
static void
open_monitor(dv_worker_t *self)
{
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://dv-worker-monitor-%u", self->mon_gen++);
    if (zmq_socket_monitor(self->sock, ep,
                           ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_CONNECT_RETRIED) != 0) {
        return;
    }
    self->mon_sock = zmq_socket(self->ctx, ZMQ_PAIR);
    if (self->mon_sock && zmq_connect(self->mon_sock, ep) == 0 &&
        dv_zwatch_open(&self->mon_watch, &self->loop, self->mon_sock,
                       DV_ZWATCH_READABLE, on_monitor, self, NULL) == 0) {
        dv_zwatch_set_sole(self->mon_watch); // read by on_monitor only
        return;
    }
    zmq_socket_monitor(self->sock, NULL, 0);
    if (self->mon_sock) {
        on_monitor_closed(self->mon_sock);
    }
    self->mon_sock = NULL;
}

// Stop watching the connection (the socket is being left or closed).
static void
close_monitor(dv_worker_t *self)
{
    if (!self->mon_watch) {
        return;
    }
    zmq_socket_monitor(self->sock, NULL, 0);
    dv_zwatch_close(self->mon_watch, on_monitor_closed, self->mon_sock);
    self->mon_watch = NULL;
    self->mon_sock = NULL;
}

static int
open_socket(dv_worker_t *self, dv_error_t *err)
{
    self->sock = zmq_socket(self->ctx, ZMQ_DEALER);
    self->conn++;
    // Long enough for a final `bye` or `done` to leave on shutdown, short
    // enough not to hang when the broker is gone.
    int linger = 1000;
    int64_t maxmsg = (int64_t)DV_MAX_FRAME_BYTES;
    // Sends never block the loop (ZMQ_DONTWAIT), so at libzmq's default
    // high-water mark of 1,000 messages a burst of `done`s (a batch of
    // many one-row jobs for a 1.3 broker, echo floods) was dropped, and
    // each dropped job stayed running at the broker while we heartbeat.
    // What we send is bounded by the jobs we hold: no message limit.
    int hwm = 0;
    zmq_setsockopt(self->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (self->curve) {
        zmq_setsockopt(self->sock, ZMQ_CURVE_SERVERKEY, self->broker_key, 32);
        zmq_setsockopt(self->sock, ZMQ_CURVE_PUBLICKEY, self->public_key, 32);
        zmq_setsockopt(self->sock, ZMQ_CURVE_SECRETKEY, self->secret_key, 32);
    }
    if (self->n_eps > 1) {
        open_monitor(self);
    }
    if (zmq_connect(self->sock, self->endpoint) != 0) {
        int e = zmq_errno();
        close_monitor(self);
        zmq_close(self->sock);
        self->sock = NULL;
        char hint[200];
        return dv_errorf(
            err, DV_EINVAL, "cannot connect to %s: %s%s", self->endpoint,
            zmq_strerror(e),
            dv_addr_hint(self->endpoint, e, false, hint, sizeof hint));
    }
    int rc = dv_zwatch_open(&self->watch, &self->loop, self->sock,
                            DV_ZWATCH_READABLE, on_ready, self, err);
    if (rc == 0) {
        dv_zwatch_set_sole(self->watch); // every other use goes by dv_wire
    }
    return rc;
}

// Stop once a draining worker holds nothing more.
void
wk_maybe_finish_drain(dv_worker_t *self)
{
    // Jobs sent before the broker read our bye may still be on their way;
    // its answer comes after them (one connection keeps order).
    if (self->draining && self->running == 0 && self->loading == 0 &&
        self->bye_acked) {
        dv_log(DV_LOG_INFO, "worker",
               "drained: %" PRIu64 " jobs done, %" PRIu64 " failed; %" PRIu64
               " forward passes on the loop thread; %" PRIu64
               " inputs read where they arrived, %" PRIu64
               " passes of several jobs stacked there",
               self->jobs_done, self->jobs_failed, self->inline_runs,
               self->in_place, self->in_place_runs);
        dv_worker_stop(self);
    }
}

// The broker asks us to load a model version before jobs need it (an
// alias is moving to it): fetch it like a job would, with no job waiting.
static void
on_preload(dv_worker_t *self, const dv_msg_t *m)
{
    task_t t;
    memset(&t, 0, sizeof t);
    dv_error_t err = {0};
    const uint8_t *sum = NULL;
    size_t sum_len = 0;
    if (dv_msg_str(m, "name", t.name, sizeof t.name, &err) != 0 ||
        dv_msg_uint(m, "version", &t.version, &err) != 0 ||
        dv_msg_bin(m, "sha256", &sum, &sum_len, DV_SHA256_BYTES, &err) != 0 ||
        dv_msg_uint_or(m, "bytes", 0, &t.model_bytes, &err) != 0) { // 1.9
        dv_log(DV_LOG_WARN, "worker",
               "bad preload: %s (check the broker and worker versions match)",
               err.text);
        return;
    }
    snprintf(t.key, sizeof t.key, "%s@%" PRIu64, t.name, t.version);
    cached_t *c = wk_cache_find(self->cache, t.key);
    if (c && memcmp(c->sha256, sum, DV_SHA256_BYTES) == 0) {
        c->used = ++self->tick;
        return;
    }
    if (t.model_bytes > self->model_budget) {
        dv_log(DV_LOG_WARN, "worker",
               "not preloading %s: its %" PRIu64 " bytes pass --model-memory "
               "(%zu MiB)",
               t.key, t.model_bytes, self->model_budget >> 20);
        return;
    }
    dv_log(DV_LOG_INFO, "worker", "preloading %s", t.key);
    wk_start_fetch(self, &t);
}

// The broker cancelled a job: drop it if it has not started computing
// (waiting for its model, or queued on the pool); one already computing
// finishes and is reported as cancelled (its output is discarded).
static void
on_cancel(dv_worker_t *self, const dv_msg_t *m)
{
    uint64_t job = 0;
    dv_error_t err = {0};
    if (dv_msg_uint(m, "job", &job, &err) != 0) {
        return;
    }
    task_t *prev = NULL; // ready: infer tasks not in a batch yet
    for (task_t **p = &self->ready; *p; prev = *p, p = &(*p)->next) {
        if ((*p)->job == job) {
            task_t *t = *p;
            *p = t->next;
            if (self->ready_tail == t) {
                self->ready_tail = prev;
            }
            wk_send_failed(self, t->job, t->attempt, DV_ECANCELED,
                           "job cancelled");
            wk_task_end(self, t);
            return;
        }
    }
    task_t **lists[2] = {&self->waiting, &self->waiting_data};
    for (size_t i = 0; i < 2; i++) {
        for (task_t **p = lists[i]; *p; p = &(*p)->next) {
            if ((*p)->job == job) {
                task_t *t = *p;
                *p = t->next;
                t->next = NULL;
                wk_send_failed(self, t->job, t->attempt, DV_ECANCELED,
                               "job cancelled");
                wk_task_end(self, t);
                return;
            }
        }
    }
    for (task_t *t = self->tasks; t; t = t->all_next) {
        if (t->job == job) {
            __atomic_store_n(&t->cancelled, true, __ATOMIC_RELAXED);

            dv_pool_cancel(&t->work); // fails once it has started
            return;
        }
    }
}

static void on_closed_reconnect(void *arg);

// Leave the member in use for the next: the hint, else the next entry.
static void
switch_member(dv_worker_t *self)
{
    uv_timer_stop(&self->move_on);
    close_monitor(self);
    if (self->watch) {
        dv_zwatch_close(self->watch, on_closed_reconnect, self);
        self->watch = NULL;
    }
}

static void
on_move_on(uv_timer_t *t)
{
    switch_member(t->data);
}

// Leave the member in use, in at least min_ms. The first round of the list
// since the last welcome goes as fast as members answer (or refuse); then
// each member is kept DV_GROUP_NOLEADER_PAUSE_MS, doubled in each of the
// next two rounds (an election takes ~1-2 s: a group still electing, or
// down, is polled a few times a second, not hammered). Already leaving:
// nothing more.
static void
move_on_soon(dv_worker_t *self, uint64_t min_ms)
{
    if (!self->watch || uv_is_active((uv_handle_t *)&self->move_on)) {
        return;
    }
    size_t rounds = self->unwelcomed / (self->n_eps ? self->n_eps : 1);
    uint64_t pause = 0;
    if (rounds > 0) {
        pause = (uint64_t)DV_GROUP_NOLEADER_PAUSE_MS
                << (rounds < 3 ? rounds - 1 : 2);
    }
    uint64_t since = uv_now(&self->loop) - self->member_ms;
    uint64_t wait = since >= pause ? 0 : pause - since;
    uv_timer_start(&self->move_on, on_move_on, wait > min_ms ? wait : min_ms,
                   0);
}

// The connection's events (a list only): the member in use died (its
// connection dropped: kill -9, a deposed leader re-executing itself) or is
// not there (connect refused): go to the next now instead of waiting for
// `liveness` silent heartbeats.
static int
on_monitor(dv_zwatch_t *zw, int events, void *arg)
{
    (void)events;
    dv_worker_t *self = arg;
    zmq_msg_t ev;
    zmq_msg_init(&ev);
    if (zmq_msg_recv(&ev, dv_zwatch_socket(zw), ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&ev);
        return 0;
    }
    uint16_t event = 0;
    if (zmq_msg_size(&ev) >= 6) {
        memcpy(&event, zmq_msg_data(&ev), 2);
    }
    bool more = zmq_msg_more(&ev);
    zmq_msg_close(&ev);
    if (more) { // the address frame
        zmq_msg_init(&ev);
        zmq_msg_recv(&ev, dv_zwatch_socket(zw), 0);
        zmq_msg_close(&ev);
    }
    if ((event != ZMQ_EVENT_DISCONNECTED &&
         event != ZMQ_EVENT_CONNECT_RETRIED) ||
        !self->watch || uv_is_active((uv_handle_t *)&self->move_on)) {
        return 1;
    }
    bool first_round = self->unwelcomed < self->n_eps;
    dv_log(event == ZMQ_EVENT_DISCONNECTED ? DV_LOG_WARN
           : first_round                   ? DV_LOG_INFO
                                           : DV_LOG_DEBUG,
           "worker", "%s: %s: trying the next member", self->endpoint,
           event == ZMQ_EVENT_DISCONNECTED
               ? "connection lost (the member died or restarted)"
               : "connection refused");
    snprintf(self->left, sizeof self->left, "%s", self->endpoint);
    move_on_soon(self, 0);
    return 1;
}

// A group member that is not the leader refused a message: go to the
// leader it names (a wildcard host: the list entry with its port), or,
// with none known yet (an election), to the next entry at the next tick.
static void
on_not_leader(dv_worker_t *self, const dv_msg_t *m)
{
    dv_error_t e = {0};
    char leader[256] = "";
    self->group = true;
    if (!self->watch) {
        return; // already leaving this member
    }
    if (dv_msg_str(m, "leader", leader, sizeof leader, &e) != 0 || !leader[0]) {
        move_on_soon(self, DV_GROUP_NOLEADER_PAUSE_MS); // an election
        return;
    }
    const char *port = strrchr(leader, ':');
    bool wild = strncmp(leader, "tcp://0.0.0.0:", 14) == 0 ||
                strncmp(leader, "tcp://*:", 8) == 0;
    snprintf(self->hint, sizeof self->hint, "%s", leader);
    for (size_t i = 0; i < self->n_eps; i++) {
        const char *p = strrchr(self->eps[i], ':');
        if (strcmp(self->eps[i], leader) == 0 ||
            (wild && p && port && strcmp(p, port) == 0)) {
            snprintf(self->hint, sizeof self->hint, "%s", self->eps[i]);
            self->ep_at = i;
        }
    }
    dv_log(DV_LOG_INFO, "worker", "%s is not the leader: going to %s",
           self->endpoint, self->hint);
    uint64_t now = uv_now(&self->loop);
    if (strcmp(self->hint, self->left) != 0 &&
        now - self->hint_ms >= DV_GROUP_NOLEADER_PAUSE_MS) {
        // A leader we have not just seen die: go now, whatever pause the
        // rounds of an election set (jobs wait for us there: the new
        // leader holds what we run for a while only). At most once a
        // pause: members naming each other (stale views) are not hammered.
        self->hint_ms = now;
        uv_timer_start(&self->move_on, on_move_on, 0, 0);
        return;
    }
    move_on_soon(self, 0); // the one whose connection dropped: not in a loop
}

// The broker welcomed our register: what we could not deliver to a group's
// old leader goes now (oldest first, as it was sent), and READY once.
static void
on_welcome(dv_worker_t *self, const dv_msg_t *m)
{
    self->broker_minor = dv_msg_minor(m);
    self->unwelcomed = 0;
    self->left[0] = '\0';
    // This member leads now: stay. A move planned while it did not (an
    // election: "not the leader", none named yet) would leave the leader
    // that just took our jobs, which then declares us silent and runs them
    // again elsewhere.
    uv_timer_stop(&self->move_on);
    if (self->resend_dones) {
        self->resend_dones = false;
        kept_t *rev = NULL;
        while (self->kept) {
            kept_t *k = self->kept;
            self->kept = k->next;
            k->next = rev;
            rev = k;
        }
        for (kept_t *k = rev; k; k = k->next) {
            dv_wire_send(self->sock, NULL, 0, k->header, k->header_len,
                         k->frames, k->n);
            k->sent_ms = uv_now(&self->loop); // kept a period from now
        }
        self->kept = NULL;
        while (rev) { // newest first again
            kept_t *k = rev;
            rev = k->next;
            k->next = self->kept;
            self->kept = k;
        }
    }
    if (!self->ready_printed) {
        printf("READY %s\n", self->endpoint);
        fflush(stdout);
        self->ready_printed = true;
    }
}

// An `error` from the broker: a group's follower (follow its leader), a
// failed fetch, our key refused (stop: retrying cannot help), or a broker
// that forgot us (register again).
static void
on_error(dv_worker_t *self, const dv_msg_t *m)
{
    int code = DV_EFORMAT;
    char text[DV_ERROR_TEXT_MAX] = "";
    dv_error_t err = {0};
    dv_msg_error(m, &code, text, sizeof text, &err);
    if (code == DV_ENOTLEADER) {
        on_not_leader(self, m);
        return;
    }
    if (!strstr(text, "register first") &&
        wk_fetch_failed(self, dv_msg_rid(m), code, text)) {
        return;
    }
    if (code == DV_EPERM && dv_msg_rid(m) == self->register_rid) {
        // Our key may not work (no worker role, a queue it does not
        // allow, revoked): registering again cannot fix that.
        dv_log(DV_LOG_ERROR, "worker",
               "the broker refuses this worker: %s; not retrying: "
               "give the key the worker role and the queues "
               "(drover keygen --roles worker --queues ...) or "
               "change --queues, then restart",
               text);
        self->refused = DV_EPERM;
        dv_worker_stop(self);
        return;
    }
    dv_log(DV_LOG_WARN, "worker", "broker says %s: %s (its log says more)",
           dv_err_name(code), text);
    if (strstr(text, "register first") && !self->draining) {
        send_register(self); // the broker restarted or forgot us
        for (fetch_t *f = self->fetches; f; f = f->next) {
            if (!f->loading && !f->held) {
                wk_send_fetch(self, f); // refused before we registered
            }
        }
    }
}

static int
on_ready(dv_zwatch_t *zw, int events, void *arg)
{
    (void)events;
    dv_worker_t *self = arg;
    dv_wire_msg_t in;
    if (dv_wire_recv(dv_zwatch_socket(zw), false, &in) != 1) {
        return 0;
    }
    self->last_heard_ms = uv_now(&self->loop);
    dv_msg_t *m = NULL;
    dv_error_t err = {0};
    if (in.too_many) {
        dv_log(DV_LOG_WARN, "worker",
               "dropped a message with too many frames (check the broker and "
               "worker versions match)");
    } else if (dv_msg_decode(&m, zmq_msg_data(&in.header),
                             zmq_msg_size(&in.header), in.frames, in.n_payload,
                             NULL, &err) != 0) {
        dv_log(DV_LOG_WARN, "worker",
               "bad message from the broker: %s (check the broker and worker "
               "versions match)",
               err.text);
    } else {
        switch (dv_msg_type(m)) {
        case DV_MSG_WELCOME:
            on_welcome(self, m);
            break;
        case DV_MSG_RUN:
            wk_on_run(self, m, &in);
            break;
        case DV_MSG_RUN_BATCH:
            wk_on_run_batch(self, m, &in);
            break;
        case DV_MSG_MODEL_DATA:
            wk_on_model_data(self, m, &in);
            break;
        case DV_MSG_DATASET_DATA:
            wk_on_dataset_data(self, m);
            break;
        case DV_MSG_CANCEL:
            on_cancel(self, m);
            break;
        case DV_MSG_PRELOAD:
            on_preload(self, m);
            break;
        case DV_MSG_OK:
            if (self->draining && dv_msg_rid(m) == self->bye_rid) {
                self->bye_acked = true;
                wk_maybe_finish_drain(self);
            }
            break;
        case DV_MSG_ERROR:
            on_error(self, m);
            break;
        default:
            break; // heartbeat and anything newer: a sign of life is enough
        }
    }
    dv_msg_destroy(&m);
    dv_wire_msg_close(&in);
    return 1;
}

static void
on_closed_reconnect(void *arg)
{
    dv_worker_t *self = arg;
    zmq_close(self->sock);
    self->sock = NULL;
    if (self->stopping) {
        return;
    }
    if (self->hint[0]) {
        snprintf(self->endpoint, sizeof self->endpoint, "%s", self->hint);
        self->hint[0] = '\0';
    } else if (self->n_eps > 1) { // silence, or no leader known: the next
        self->ep_at = (self->ep_at + 1) % self->n_eps;
        snprintf(self->endpoint, sizeof self->endpoint, "%s",
                 self->eps[self->ep_at]);
    }
    self->unwelcomed++;
    self->resend_dones = self->group && self->kept;
    dv_error_t err = {0};
    if (open_socket(self, &err) != 0) {
        dv_log(DV_LOG_ERROR, "worker", "%s", err.text);
        uv_stop(&self->loop);
        return;
    }
    self->last_heard_ms = self->member_ms = uv_now(&self->loop);
    send_register(self);
    for (fetch_t *f = self->fetches; f; f = f->next) {
        if (!f->loading && !f->held) {
            wk_send_fetch(self, f); // the old socket's requests are gone
        }
    }
}

// Jobs on the compute threads now: every task held but those waiting (for
// a thread, a model or a data set), at most the threads (work queued on the
// pool beyond them waits inside libuv).
static size_t
computing_now(const dv_worker_t *self)
{
    size_t held = 0, waiting = 0;
    for (const task_t *t = self->tasks; t; t = t->all_next) {
        held++;
    }
    const task_t *lists[3] = {self->ready, self->waiting, self->waiting_data};
    for (int l = 0; l < 3; l++) {
        for (const task_t *t = lists[l]; t; t = t->next) {
            waiting++;
        }
    }
    size_t busy = held > waiting ? held - waiting : 0;
    return busy < self->capacity ? busy : self->capacity;
}

void
wk_send_heartbeat(dv_worker_t *self)
{
    dv_msgw_t *w = dv_msgw_new(DV_MSG_HEARTBEAT, 0);
    dv_msgw_uint(w, "running", self->running);
    dv_msgw_uint(w, "computing", computing_now(self)); // 1.5
    write_models(self, w);
    // This process's figures (1.5), so one scrape of the broker's /metrics
    // covers the pool.
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    uint64_t cpu_ms =
        (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
        (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &pages, &res) != 2) {
        res = 0;
    }
    if (f) {
        fclose(f);
    }
    dv_msgw_uint(w, "cpu_ms", cpu_ms);
    dv_msgw_uint(w, "rss_bytes",
                 (uint64_t)res * (uint64_t)sysconf(_SC_PAGESIZE));
    dv_msgw_uint(w, "jobs_done", self->jobs_done);
    dv_msgw_uint(w, "jobs_failed", self->jobs_failed);
    wk_send_header(self, w, NULL, 0);
}

static void
on_heartbeat(uv_timer_t *t)
{
    dv_worker_t *self = t->data;
    uint64_t silent = uv_now(&self->loop) - self->last_heard_ms;
    uint64_t limit = (uint64_t)self->heartbeat_ms * self->liveness;
    if (self->kept && !self->resend_dones) {
        kept_trim(self, limit);
    }
    if (self->draining && !self->bye_acked &&
        uv_now(&self->loop) - self->bye_ms > limit) {
        // No answer to our bye: the broker is gone; nothing more will come.
        self->bye_acked = true;
        wk_maybe_finish_drain(self);
    }
    // Messages waiting unread (the loop was busy) may be signs of life:
    // give them a second period, no more.
    int events = 0;
    size_t elen = sizeof events;
    if (self->sock) {
        dv_zwatch_used(self->sock); // the query may take ZMQ_FD's signal
        if (zmq_getsockopt(self->sock, ZMQ_EVENTS, &events, &elen) == 0 &&
            (events & ZMQ_POLLIN)) {
            limit *= 2;
        }
    }
    if (self->watch && silent > limit) {
        dv_log(DV_LOG_WARN, "worker",
               "no word from the broker for %llu ms: reconnecting%s",
               (unsigned long long)silent,
               self->ready_printed ? " (check the broker is up and reachable)"
               : self->curve
                   ? " (never welcomed: if the broker refuses our key, its "
                     "audit log says why; check --broker-key)"
                   : " (never welcomed: a broker running CURVE needs --key "
                     "and --broker-key)");
        switch_member(self);
        return;
    }
    if (self->watch) {
        wk_send_heartbeat(self);
    }
}

bool
wk_gives_back(const dv_worker_t *self)
{
    // running counts the arriving task too: it goes back when the others
    // fill the compute threads (it would only wait), else it runs next
    return self->draining && self->broker_minor >= 5 &&
           self->running > self->capacity;
}

// One `release` for the tasks of the list at head (linked by next), at
// most DV_MAX_BATCH_JOBS of them; returns the first one not in it.
static task_t *
send_release(dv_worker_t *self, task_t *head)
{
    size_t n = 0;
    for (task_t *t = head; t && n < DV_MAX_BATCH_JOBS; t = t->next) {
        n++;
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_RELEASE, 0);
    dv_msgw_key(w, "jobs");
    dv_msgw_v_array(w, n);
    task_t *t = head;
    for (size_t i = 0; i < n; i++, t = t->next) {
        dv_msgw_v_array(w, 2);
        dv_msgw_v_uint(w, t->job);
        dv_msgw_v_uint(w, t->attempt);
    }
    wk_send_header(self, w, NULL, 0);
    return t;
}

void
wk_give_back(dv_worker_t *self, task_t *t)
{
    t->next = NULL;
    send_release(self, t);
    wk_task_end(self, t);
}

// Draining: the jobs held beyond what the worker would run next go back to
// the broker (prefetch), so other workers run them now instead of this one
// running them before it stops: pool work not started (dv_pool_cancel takes only
// that; its after-callback then just ends the task) and, of the tasks
// waiting for a compute thread, a model or a data set, all but the first
// ones that fit the compute threads not busy (their run has begun: a model
// loading for it). All of them go in as few `release` messages as fit.
static void
give_back_unstarted(dv_worker_t *self)
{
    size_t busy = self->batches; // forward passes computing
    task_t *back = NULL;         // what goes back, linked by next
    size_t n = 0;
    for (task_t *t = self->tasks; t; t = t->all_next) {
        if ((t->sleep || t->train || t->evaluate) && !t->released &&
            t->work.data == t) {
            if (dv_pool_cancel(&t->work) == 0) {
                t->released = true; // goes back; its after-callback ends it
                t->next = back;
                back = t;
                n++;
            } else {
                busy++; // computing
            }
        }
    }
    size_t keep = self->capacity > busy ? self->capacity - busy : 0;
    task_t **lists[3] = {&self->ready, &self->waiting, &self->waiting_data};
    for (int l = 0; l < 3; l++) {
        task_t **p = lists[l], *last = NULL;
        while (*p) {
            task_t *t = *p;
            if (keep > 0) { // runs next: stays
                keep--;
                last = t;
                p = &t->next;
                continue;
            }
            *p = t->next;
            t->next = back;
            back = t;
            n++;
        }
        if (l == 0) {
            self->ready_tail = last;
        }
    }
    if (n) {
        dv_log(DV_LOG_INFO, "worker",
               "draining: %zu job(s) not started go back to the broker", n);
    }
    // Every message goes before any task ends: the last end may stop the
    // worker.
    for (task_t *t = back; t;) {
        t = send_release(self, t);
    }
    while (back) {
        task_t *t = back;
        back = t->next;
        if (!t->released) { // a released one ends in its after-callback
            wk_task_end(self, t);
        }
    }
}

static void
on_signal(uv_signal_t *s, int signum)
{
    dv_worker_t *self = s->data;
    if (self->draining) {
        dv_log(DV_LOG_WARN, "worker", "second signal: stopping now");
        dv_worker_stop(self);
        return;
    }
    dv_log(DV_LOG_INFO, "worker",
           "%s: draining (%zu jobs to finish, no new ones)",
           signum == SIGINT ? "SIGINT" : "SIGTERM", self->running);
    self->draining = true;
    self->bye_rid = ++self->next_rid;
    self->bye_ms = uv_now(&self->loop);
    dv_msgw_t *w = dv_msgw_new(DV_MSG_BYE, self->bye_rid);
    dv_msgw_str(w, "reason", "stopping");
    dv_msgw_uint(w, "running", self->running);
    wk_send_header(self, w, NULL, 0);
    if (self->broker_minor >= 5) {
        give_back_unstarted(self);
    }
    wk_maybe_finish_drain(self);
}

// CURVE: our key pair from key (a .key file) and the broker's public key
// from bkey (a .pub file, or the key in Z85).
static int
load_keys(dv_worker_t *self, const char *key, const char *bkey, dv_error_t *err)
{
    if (!key || !*key || !bkey || !*bkey) {
        return dv_errorf(err, DV_EINVAL,
                         "CURVE needs both --key FILE.key and --broker-key "
                         "FILE.pub (or DROVER_KEY and DROVER_BROKER_KEY)");
    }
    dv_key_t k;
    int rc = dv_key_load(&k, key, err);
    if (rc) {
        return rc;
    }
    if (!k.has_secret) {
        dv_key_clear(&k);
        return dv_errorf(err, DV_EINVAL,
                         "%s holds no secret key: give the .key file", key);
    }
    memcpy(self->public_key, k.public_key, 32);
    memcpy(self->secret_key, k.secret_key, 32);
    snprintf(self->key_id, sizeof self->key_id, "%s", k.id);
    dv_key_clear(&k);
    struct stat st;
    if (strlen(bkey) == 40 && stat(bkey, &st) != 0) {
        if (!zmq_z85_decode(self->broker_key, bkey)) {
            return dv_errorf(err, DV_EINVAL,
                             "--broker-key '%s' is neither a file nor a Z85 "
                             "key",
                             bkey);
        }
    } else {
        rc = dv_key_load(&k, bkey, err);
        if (rc) {
            return rc;
        }
        memcpy(self->broker_key, k.public_key, 32);
        dv_key_clear(&k);
    }
    self->curve = true;
    return 0;
}

// --broker: one endpoint, or a group's comma-separated list. Returns 0 or
// DV_EINVAL with the reason.
static int
parse_endpoints(dv_worker_t *self, const char *list, dv_error_t *err)
{
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || len >= sizeof self->endpoint ||
            self->n_eps == DV_MAX_GROUP_ENDPOINTS) {
            return dv_errorf(err, DV_EINVAL,
                             "--broker: '%s' is not a list of at most %d "
                             "endpoints",
                             list, DV_MAX_GROUP_ENDPOINTS);
        }
        self->eps = dv_realloc(self->eps, (self->n_eps + 1) * sizeof(char *));
        self->eps[self->n_eps] = dv_malloc(len + 1);
        memcpy(self->eps[self->n_eps], p, len);
        self->eps[self->n_eps++][len] = '\0';
        p = end ? end + 1 : p + len;
    }
    return 0;
}

// --queues Q1,Q2: the only queues served. Returns 0 or DV_EINVAL naming a
// bad name.
static int
parse_queues(dv_worker_t *self, const char *list, dv_error_t *err)
{
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char name[DV_MAX_WIRE_NAME + 1];
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        bool valid = len > 0 && len <= DV_MAX_WIRE_NAME;
        for (size_t i = 0; valid && i < len; i++) {
            valid = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWX"
                           "YZ0123456789._-",
                           name[i]) != NULL;
        }
        if (!valid) {
            return dv_errorf(err, DV_EINVAL,
                             "--queues: '%.*s' is not a queue name "
                             "([A-Za-z0-9._-]+)",
                             (int)(len < 200 ? len : 200), p);
        }
        self->queues =
            dv_realloc(self->queues, (self->n_queues + 1) * sizeof(char *));
        self->queues[self->n_queues++] = dv_strdup(name);
        p = end ? end + 1 : p + len;
    }
    return 0;
}

int
dv_worker_open(dv_worker_t **out, const dv_worker_opts_t *opts, dv_error_t *err)
{
    dv_worker_t *self = dv_calloc(1, sizeof *self);
    if (parse_endpoints(self, opts->broker_endpoint, err) != 0) {
        dv_strs_free(&self->eps, self->n_eps);
        free(self);
        return DV_EINVAL;
    }
    self->group = self->n_eps > 1;
    snprintf(self->endpoint, sizeof self->endpoint, "%s",
             self->n_eps ? self->eps[0] : "");
    if (opts->name) {
        snprintf(self->name, sizeof self->name, "%s", opts->name);
    } else {
        char host[64] = "worker";
        gethostname(host, sizeof host - 1);
        snprintf(self->name, sizeof self->name, "%.64s-%ld", host,
                 (long)getpid());
    }
    self->capacity = opts->capacity ? opts->capacity : 1;
    self->prefetch = opts->prefetch;
    self->train_slots = opts->train_slots    ? opts->train_slots
                        : self->capacity > 1 ? self->capacity - 1
                                             : 1;
    if (parse_queues(self, opts->queues, err) != 0) {
        dv_strs_free(&self->queues, self->n_queues);
        dv_strs_free(&self->eps, self->n_eps);
        free(self);
        return DV_EINVAL;
    }

    const char *key = opts->key ? opts->key : getenv("DROVER_KEY");
    const char *bkey =
        opts->broker_key ? opts->broker_key : getenv("DROVER_BROKER_KEY");
    if ((key && *key) || (bkey && *bkey)) {
        int krc = load_keys(self, key, bkey, err);
        if (krc) {
            dv_strs_free(&self->queues, self->n_queues);
            dv_strs_free(&self->eps, self->n_eps);
            free(self);
            return krc;
        }
    }
    self->heartbeat_ms = opts->heartbeat_ms ? opts->heartbeat_ms : 1000;
    self->liveness = opts->liveness ? opts->liveness : 3;
    self->model_budget =
        opts->model_memory ? opts->model_memory : (size_t)1 << 30;
    self->data_budget = opts->data_memory ? opts->data_memory : (size_t)1 << 30;
    // capacity jobs at once, each sgemm on this job's share of the cores, so
    // jobs x BLAS threads never oversubscribe the host (docs/ARCHITECTURE.md,
    // BLAS threads). Logged: an operator checks what a worker applied.
    dv_blas_set_threads(opts->blas_threads
                            ? (int)opts->blas_threads
                            : dv_blas_threads_share(self->capacity));
    dv_log(DV_LOG_INFO, "worker",
           "compute: %u jobs at once, %d BLAS threads each, %ld cores online",
           self->capacity, dv_blas_threads(), sysconf(_SC_NPROCESSORS_ONLN));
    self->ctx = zmq_ctx_new();
    uv_loop_init(&self->loop);
    self->spare = dv_spare_new(DV_SPARE_MAX_BLOCK, DV_SPARE_BYTES);
    // Compute threads: one per concurrent job (dv_pool, not libuv's pool:
    // see dv_pool.h for why).
    int rc = dv_pool_new(&self->pool, &self->loop,
                         self->capacity < 1024 ? self->capacity : 1024,
                         "compute", err);
    if (rc == 0) {
        rc = open_socket(self, err);
    }
    if (rc) {
        dv_worker_destroy(&self);
        return rc;
    }
    uv_timer_init(&self->loop, &self->heartbeat);
    uv_signal_init(&self->loop, &self->sigint);
    uv_signal_init(&self->loop, &self->sigterm);
    uv_async_init(&self->loop, &self->progress, wk_on_progress);
    uv_idle_init(&self->loop, &self->dispatcher);
    uv_timer_init(&self->loop, &self->batch_delay);
    uv_timer_init(&self->loop, &self->move_on);
    self->move_on.data = self;
    self->heartbeat.data = self->sigint.data = self->sigterm.data = self;
    self->progress.data = self->dispatcher.data = self->batch_delay.data = self;
    *out = self;
    return 0;
}

int
dv_worker_run(dv_worker_t *self)
{
    self->last_heard_ms = self->member_ms = uv_now(&self->loop);
    send_register(self);
    uv_timer_start(&self->heartbeat, on_heartbeat, self->heartbeat_ms,
                   self->heartbeat_ms);
    uv_signal_start(&self->sigint, on_signal, SIGINT);
    uv_signal_start(&self->sigterm, on_signal, SIGTERM);
    uv_run(&self->loop, UV_RUN_DEFAULT);
    return self->refused;
}

void
dv_worker_stop(dv_worker_t *self)
{
    self->stopping = true;
    uv_stop(&self->loop);
}

void
dv_worker_destroy(dv_worker_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_worker_t *self = *self_p;
    if (self->watch) {
        dv_zwatch_close(self->watch, NULL, NULL);
    }
    close_monitor(self); // its socket closes in the uv_run below
    uv_handle_t *handles[] = {
        (uv_handle_t *)&self->heartbeat,  (uv_handle_t *)&self->sigint,
        (uv_handle_t *)&self->sigterm,    (uv_handle_t *)&self->progress,
        (uv_handle_t *)&self->dispatcher, (uv_handle_t *)&self->batch_delay,
        (uv_handle_t *)&self->move_on};
    for (size_t i = 0; i < sizeof handles / sizeof *handles; i++) {
        if (handles[i]->loop == &self->loop && !uv_is_closing(handles[i])) {
            uv_close(handles[i], NULL);
        }
    }
    // Runs close callbacks and waits for computing tasks: their
    // after-work callbacks free them (the socket is still open).
    uv_run(&self->loop, UV_RUN_DEFAULT);
    dv_pool_close(self->pool); // idle now: its threads end, its handle
    self->pool = NULL;         // closes in this run
    uv_run(&self->loop, UV_RUN_DEFAULT);
    uv_loop_close(&self->loop);
    task_t **held[2] = {&self->waiting, &self->ready};
    for (size_t i = 0; i < 2; i++) {
        while (*held[i]) {
            task_t *t = *held[i];
            *held[i] = t->next;
            wk_task_free(t);
        }
    }
    while (self->fetches) {
        fetch_t *f = self->fetches;
        self->fetches = f->next;
        free(f->buf);
        free(f);
    }
    while (self->waiting_data) {
        task_t *t = self->waiting_data;
        self->waiting_data = t->next;
        wk_task_free(t);
    }
    cached_t *lists[2] = {self->cache, self->dcache};
    for (size_t i = 0; i < 2; i++) {
        while (lists[i]) {
            cached_t *c = lists[i];
            lists[i] = c->next;
            wk_cached_free(c);
        }
    }
    if (self->sock) {
        zmq_close(self->sock);
    }
    zmq_ctx_term(self->ctx);
    dv_strs_free(&self->queues, self->n_queues);
    dv_strs_free(&self->eps, self->n_eps);
    kept_trim(self, 0);
    dv_spare_destroy(&self->spare); // after every task
    free(self);
    *self_p = NULL;
}
