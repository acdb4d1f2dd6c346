// test_pool — dv_pool runs each request's work on a pool thread and its
// after callback on the loop thread, once, in a loop that stays alive
// while requests are out and not after; a request cancelled before it
// started never runs and ends UV_ECANCELED; closing lets what is out
// finish first; a closed pool takes nothing more.
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dv_pool.h"
#include "dv_test.h"

static void
nap(void)
{
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}

typedef struct {
    dv_work_t req;
    atomic_int started;
    pthread_t loop_thread;
    pthread_t ran_on;
    atomic_int runs;
    int afters;
    int status;
    bool after_on_loop;
    unsigned value, square;
    atomic_int *gate;          // work waits while *gate is 0 (NULL: no wait)
    dv_pool_t *close_in_after; // closed from the after callback
} item_t;

static void
work_square(dv_work_t *req)
{
    item_t *it = req->data;
    atomic_store(&it->started, 1);
    if (it->gate) {
        while (atomic_load(it->gate) == 0) {
            nap();
        }
    }
    it->ran_on = pthread_self();
    it->square = it->value * it->value;
    atomic_fetch_add(&it->runs, 1);
}

static void
after_square(dv_work_t *req, int status)
{
    item_t *it = req->data;
    it->afters++;
    it->status = status;
    it->after_on_loop = pthread_equal(pthread_self(), it->loop_thread);
    if (it->close_in_after) {
        dv_pool_close(it->close_in_after);
    }
}

// Many requests over several threads: each runs once, off the loop
// thread, and each after runs once on it with status 0; uv_run returns
// when the last is done (the pool keeps the loop alive until then) and the
// pool is idle again.
static void
test_many(void)
{
    enum { N = 2000 };
    const unsigned threads[] = {1, 2, 4};
    for (size_t t = 0; t < sizeof threads / sizeof *threads; t++) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        dv_pool_t *pool = NULL;
        dv_error_t err = {0};
        DV_CHECK_EQ(dv_pool_new(&pool, &loop, threads[t], "test-pool", &err),
                    0);
        item_t *items = calloc(N, sizeof *items);
        for (unsigned i = 0; i < N; i++) {
            items[i].req.data = &items[i];
            items[i].loop_thread = pthread_self();
            items[i].value = i;
            DV_CHECK_EQ(
                dv_pool_queue(pool, &items[i].req, work_square, after_square),
                0);
        }
        DV_CHECK_EQ(dv_pool_outstanding(pool), N);
        uv_run(&loop, UV_RUN_DEFAULT); // returns once all are done
        size_t outstanding = dv_pool_outstanding(pool);
        unsigned bad = 0;
        for (unsigned i = 0; i < N; i++) {
            bad += atomic_load(&items[i].runs) != 1 || items[i].afters != 1 ||
                   items[i].status != 0 || !items[i].after_on_loop ||
                   pthread_equal(items[i].ran_on, pthread_self()) ||
                   items[i].square != i * i;
        }
        dv_pool_close(pool);
        uv_run(&loop, UV_RUN_DEFAULT); // the handle closes, pool freed
        DV_CHECK_EQ(uv_loop_close(&loop), 0);
        free(items);
        DV_CHECK_EQ(outstanding, 0);
        DV_CHECK_EQ(bad, 0);
    }
}

// With the only thread held by a request, the ones queued behind it can be
// cancelled: their work never runs and their after says UV_ECANCELED; the
// one computing cannot (UV_EBUSY) and ends with 0.
static void
test_cancel(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dv_pool_t *pool = NULL;
    dv_error_t err = {0};
    DV_CHECK_EQ(dv_pool_new(&pool, &loop, 1, NULL, &err), 0);
    atomic_int gate = 0;
    item_t items[4];
    memset(items, 0, sizeof items);
    for (unsigned i = 0; i < 4; i++) {
        items[i].req.data = &items[i];
        items[i].loop_thread = pthread_self();
        items[i].value = i + 1;
        items[i].gate = &gate;
        DV_CHECK_EQ(
            dv_pool_queue(pool, &items[i].req, work_square, after_square), 0);
    }
    while (atomic_load(&items[0].started) == 0) { // the thread has it
        nap();
    }
    int busy = dv_pool_cancel(&items[0].req);
    int mid = dv_pool_cancel(&items[2].req);
    int last = dv_pool_cancel(&items[3].req);
    int again = dv_pool_cancel(&items[3].req); // already taken back
    atomic_store(&gate, 1);
    uv_run(&loop, UV_RUN_DEFAULT);
    dv_pool_close(pool);
    uv_run(&loop, UV_RUN_DEFAULT);
    DV_CHECK_EQ(uv_loop_close(&loop), 0);
    DV_CHECK_EQ(busy, UV_EBUSY);
    DV_CHECK_EQ(mid, 0);
    DV_CHECK_EQ(last, 0);
    DV_CHECK_EQ(again, UV_EBUSY);
    const int runs[] = {1, 1, 0, 0};
    const int status[] = {0, 0, UV_ECANCELED, UV_ECANCELED};
    for (unsigned i = 0; i < 4; i++) {
        DV_CHECK_EQ(atomic_load(&items[i].runs), runs[i]);
        DV_CHECK_EQ(items[i].afters, 1);
        DV_CHECK_EQ(items[i].status, status[i]);
        DV_CHECK(items[i].after_on_loop);
    }
}

// Closing while requests are out: they still run and end, the pool takes
// no new one (DV_EINVAL, nothing called), and the loop ends with the pool
// freed (ASan: no leak). Closing from inside an after callback works too.
static void
test_close_with_work_out(void)
{
    for (int from_after = 0; from_after < 2; from_after++) {
        uv_loop_t loop;
        uv_loop_init(&loop);
        dv_pool_t *pool = NULL;
        dv_error_t err = {0};
        DV_CHECK_EQ(dv_pool_new(&pool, &loop, 2, NULL, &err), 0);
        atomic_int gate = 0;
        item_t items[3], late;
        memset(items, 0, sizeof items);
        memset(&late, 0, sizeof late);
        for (unsigned i = 0; i < 3; i++) {
            items[i].req.data = &items[i];
            items[i].loop_thread = pthread_self();
            items[i].value = 7;
            items[i].gate = &gate;
            DV_CHECK_EQ(
                dv_pool_queue(pool, &items[i].req, work_square, after_square),
                0);
        }
        int late_rc = 0;
        if (from_after) {
            items[0].close_in_after = pool;
        } else {
            dv_pool_close(pool);
            late.req.data = &late;
            late_rc = dv_pool_queue(pool, &late.req, work_square, after_square);
        }
        atomic_store(&gate, 1);
        uv_run(&loop, UV_RUN_DEFAULT);
        DV_CHECK_EQ(uv_loop_close(&loop), 0); // the pool's handle is gone
        DV_CHECK_EQ(late_rc, from_after ? 0 : DV_EINVAL);
        DV_CHECK_EQ(late.afters, 0);
        for (unsigned i = 0; i < 3; i++) {
            DV_CHECK_EQ(atomic_load(&items[i].runs), 1);
            DV_CHECK_EQ(items[i].afters, 1);
            DV_CHECK_EQ(items[i].square, 49);
        }
    }
}

// An idle pool keeps nothing alive: uv_run returns at once.
static void
test_idle_pool_lets_loop_end(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    dv_pool_t *pool = NULL;
    dv_error_t err = {0};
    DV_CHECK_EQ(dv_pool_new(&pool, &loop, 3, NULL, &err), 0);
    int alive = uv_run(&loop, UV_RUN_DEFAULT);
    dv_pool_close(pool);
    uv_run(&loop, UV_RUN_DEFAULT);
    DV_CHECK_EQ(alive, 0);
    DV_CHECK_EQ(uv_loop_close(&loop), 0);
    dv_pool_close(NULL); // ignored
}

static const dv_test_case_t cases[] = {
    {"each request runs once off the loop, its after once on it", test_many},
    {"a request not started can be cancelled; one computing cannot",
     test_cancel},
    {"closing lets what is out finish and takes nothing more",
     test_close_with_work_out},
    {"an idle pool keeps nothing alive", test_idle_pool_lets_loop_end},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
