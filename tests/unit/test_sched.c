// test_sched — the broker's scheduling rules: credits, model affinity, least
// loaded, round-robin queues, FIFO, requeue on worker loss with attempts
// kept, failure past max_attempts, late answers, cancel, and a randomized
// run checked against invariants.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_rng.h"
#include "dv_sched.h"
#include "dv_test.h"

typedef struct {
    uint64_t job, worker;
    uint32_t attempt;
} pick_t;

static bool
next(dv_sched_t *s, pick_t *p)
{
    return dv_sched_next(s, &p->job, &p->worker, &p->attempt);
}

static void
test_credits_bound_dispatch(void)
{
    dv_sched_t *s = dv_sched_new();
    pick_t p;
    bool none_without_workers;
    for (uint64_t j = 1; j <= 5; j++) {
        dv_sched_submit(s, j, "q", "", 3);
    }
    none_without_workers = !next(s, &p);
    dv_sched_worker_add(s, 100, 2);
    int sent = 0;
    while (next(s, &p)) {
        sent++;
    }
    size_t queued = dv_sched_queued(s), running = dv_sched_running(s);
    int rc = dv_sched_finish(s, 1, 100); // frees one slot
    bool one_more = next(s, &p) && p.job == 3 && !next(s, &p);
    dv_sched_destroy(&s);
    DV_CHECK(none_without_workers);
    DV_CHECK_EQ(sent, 2);
    DV_CHECK_EQ(queued, 3);
    DV_CHECK_EQ(running, 2);
    DV_CHECK_EQ(rc, 0);
    DV_CHECK(one_more);
    DV_CHECK(s == NULL);
}

static void
test_affinity_then_least_loaded(void)
{
    dv_sched_t *s = dv_sched_new();
    dv_sched_worker_add(s, 1, 4);
    dv_sched_worker_add(s, 2, 4);
    const char *held[] = {"iris@1"};
    dv_sched_worker_models(s, 2, held, 1);
    dv_sched_submit(s, 10, "q", "iris@1", 3);
    dv_sched_submit(s, 11, "q", "iris@1", 3);
    dv_sched_submit(s, 12, "q", "", 3);
    dv_sched_submit(s, 13, "q", "digits@2", 3);
    pick_t a, b, c, d;
    bool ok = next(s, &a) && next(s, &b) && next(s, &c) && next(s, &d);
    dv_sched_destroy(&s);
    DV_CHECK(ok);
    // Both iris jobs go to the worker holding iris, even though it is the
    // busier one after the first.
    DV_CHECK_EQ(a.worker, 2);
    DV_CHECK_EQ(b.worker, 2);
    // Jobs without a held model go to the least loaded: worker 1.
    DV_CHECK_EQ(c.worker, 1);
    DV_CHECK_EQ(d.worker, 1);
}

static void
test_load_is_relative_to_capacity(void)
{
    dv_sched_t *s = dv_sched_new();
    dv_sched_worker_add(s, 1, 1);
    dv_sched_worker_add(s, 2, 8);
    int on_big = 0;
    for (uint64_t j = 1; j <= 6; j++) {
        dv_sched_submit(s, j, "q", "", 3);
    }
    pick_t p;
    while (next(s, &p)) {
        on_big += p.worker == 2;
    }
    size_t small = dv_sched_worker_running(s, 1);
    dv_sched_destroy(&s);
    // Ties go to the longest-registered (worker 1) once, then worker 2 is
    // less loaded relative to its 8 slots.
    DV_CHECK_EQ(small, 1);
    DV_CHECK_EQ(on_big, 5);
}

static void
test_queues_take_turns_fifo_within(void)
{
    dv_sched_t *s = dv_sched_new();
    dv_sched_worker_add(s, 1, 100);
    for (uint64_t j = 1; j <= 4; j++) {
        dv_sched_submit(s, j, "bulk", "", 1);
    }
    dv_sched_submit(s, 50, "urgent", "", 1);
    dv_sched_submit(s, 51, "urgent", "", 1);
    uint64_t order[6];
    pick_t p;
    for (int i = 0; i < 6 && next(s, &p); i++) {
        order[i] = p.job;
    }
    dv_sched_destroy(&s);
    const uint64_t want[6] = {1, 50, 2, 51, 3, 4};
    for (int i = 0; i < 6; i++) {
        DV_CHECK_EQ(order[i], want[i]);
    }
}

// Thousands of queues, a few busy: the busy ones take turns (FIFO within
// each), a queue that empties leaves the turns and one that fills again
// joins them, and per-queue counts find each queue by name.
static void
test_many_queues_take_turns(void)
{
    enum { QUEUES = 4096 };
    dv_sched_t *s = dv_sched_new();
    dv_sched_worker_add(s, 1, 1000);
    char name[32];
    for (uint64_t q = 0; q < QUEUES; q++) { // every queue made, then emptied
        snprintf(name, sizeof name, "tenant-%llu", (unsigned long long)q);
        dv_sched_submit(s, 100000 + q, name, "", 1);
    }
    pick_t p;
    for (uint64_t q = 0; q < QUEUES; q++) {
        DV_CHECK(next(s, &p));
        DV_CHECK_EQ(p.job, 100000 + q); // the order they filled in
        DV_CHECK_EQ(dv_sched_finish(s, p.job, 1), 0);
    }
    DV_CHECK(!next(s, &p));
    DV_CHECK_EQ(dv_sched_queue_count(s), QUEUES);
    // Three busy queues far apart: 3, 2 and 1 jobs.
    const char *busy[3] = {"tenant-7", "tenant-2048", "tenant-4095"};
    for (uint64_t j = 1; j <= 6; j++) {
        size_t b = j <= 3 ? 0 : j <= 5 ? 1 : 2;
        dv_sched_submit(s, j, busy[b], "", 1);
    }
    DV_CHECK_EQ(dv_sched_queue_waiting(s, "tenant-7"), 3);
    DV_CHECK_EQ(dv_sched_queue_waiting(s, "tenant-2048"), 2);
    DV_CHECK_EQ(dv_sched_queue_waiting(s, "tenant-3"), 0);
    DV_CHECK_EQ(dv_sched_queue_waiting(s, "no-such-queue"), 0);
    uint64_t order[6] = {0};
    for (int i = 0; i < 4 && next(s, &p); i++) {
        order[i] = p.job;
    }
    // tenant-4095 is empty now; it fills again and joins at the end of the
    // round (after tenant-7, whose turn comes first), never later.
    dv_sched_submit(s, 7, "tenant-4095", "", 1);
    for (int i = 4; i < 6 && next(s, &p); i++) {
        order[i] = p.job;
    }
    const uint64_t want[6] = {1, 4, 6, 2, 5, 3};
    for (int i = 0; i < 6; i++) {
        DV_CHECK_EQ(order[i], want[i]);
    }
    DV_CHECK(next(s, &p) && p.job == 7);
    DV_CHECK(!next(s, &p));
    DV_CHECK_EQ(dv_sched_queued(s), 0);
    dv_sched_destroy(&s);
}

static void
test_worker_loss_requeues_then_fails(void)
{
    dv_sched_t *s = dv_sched_new();
    dv_sched_submit(s, 1, "q", "", 2);
    dv_sched_submit(s, 2, "q", "", 2);
    dv_sched_submit(s, 3, "q", "", 2);
    dv_sched_worker_add(s, 7, 2);
    pick_t p;
    next(s, &p); // job 1, attempt 1
    next(s, &p); // job 2, attempt 1
    dv_sched_lost_t lost[4];
    size_t n = 0;
    dv_sched_worker_remove(s, 7, lost, &n);
    bool requeued = n == 2 && !lost[0].failed && !lost[1].failed &&
                    dv_sched_queued(s) == 3 && dv_sched_running(s) == 0 &&
                    dv_sched_workers(s) == 0;
    // They come back first, in their original order, attempt 2.
    dv_sched_worker_add(s, 8, 3);
    pick_t a, b, c;
    bool order = next(s, &a) && a.job == 1 && a.attempt == 2 && next(s, &b) &&
                 b.job == 2 && b.attempt == 2 && next(s, &c) && c.job == 3 &&
                 c.attempt == 1;
    // A second loss exhausts max_attempts (2) for jobs 1 and 2.
    dv_sched_worker_remove(s, 8, lost, &n);
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        failed += lost[i].failed;
    }
    size_t left = dv_sched_queued(s);
    // A late answer from the dead worker is refused.
    int late = dv_sched_finish(s, 3, 8);
    dv_sched_destroy(&s);
    DV_CHECK(requeued);
    DV_CHECK(order);
    DV_CHECK_EQ(n, 3);
    DV_CHECK_EQ(failed, 2);
    DV_CHECK_EQ(left, 1); // job 3, attempt 1 of 2, queued again
    DV_CHECK_EQ(late, DV_ENOENT);
}

static void
test_cancel_and_bad_calls(void)
{
    dv_sched_t *s = dv_sched_new();
    DV_CHECK_EQ(dv_sched_submit(s, 1, "q", "", 1), 0);
    DV_CHECK_EQ(dv_sched_submit(s, 1, "q", "", 1), DV_EINVAL); // dup id
    DV_CHECK_EQ(dv_sched_submit(s, 2, "q", "", 0), DV_EINVAL);
    DV_CHECK_EQ(dv_sched_submit(s, 0, "q", "", 1), DV_EINVAL);
    DV_CHECK_EQ(dv_sched_worker_add(s, 9, 0), DV_EINVAL);
    DV_CHECK_EQ(dv_sched_cancel(s, 1), 0);
    DV_CHECK_EQ(dv_sched_cancel(s, 1), DV_ENOENT);
    DV_CHECK_EQ(dv_sched_queued(s), 0);
    dv_sched_submit(s, 3, "q", "", 1);
    dv_sched_worker_add(s, 9, 1);
    pick_t p;
    DV_CHECK(next(s, &p));
    bool running = false;
    uint32_t attempts = 0;
    DV_CHECK_EQ(dv_sched_job(s, 3, &running, &attempts), 0);
    DV_CHECK(running);
    DV_CHECK_EQ(attempts, 1);
    DV_CHECK_EQ(dv_sched_job(s, 1, &running, &attempts), DV_ENOENT);
    DV_CHECK_EQ(dv_sched_cancel(s, 3), DV_ENOENT);     // running: not here
    DV_CHECK_EQ(dv_sched_finish(s, 3, 10), DV_ENOENT); // wrong worker
    DV_CHECK_EQ(dv_sched_finish(s, 3, 9), 0);
    DV_CHECK_EQ(dv_sched_finish(s, 3, 9), DV_ENOENT); // twice
    size_t n = 5;
    dv_sched_worker_remove(s, 12345, NULL, &n); // unknown: nothing
    DV_CHECK_EQ(n, 0);
    dv_sched_destroy(&s);
    dv_sched_destroy(&s); // idempotent
}

// Random events against invariants: every job ends finished or failed,
// never more running than capacity, counters agree, and the table survives
// heavy churn (tombstones).
static void
test_random_churn(void)
{
    dv_sched_t *s = dv_sched_new();
    dv_rng_t rng;
    dv_rng_seed(&rng, 99);
    const uint64_t n_jobs = 20000;
    uint64_t next_job = 1, next_worker = 1;
    size_t finished = 0, failed = 0, cancelled = 0, violations = 0;
    size_t listed_wrong = 0, held_seen = 0;
    dv_sched_lost_t lost[64];
    uint64_t *ids = malloc(n_jobs * sizeof *ids);
    dv_sched_worker_add(s, next_worker++, 4);
    while (finished + failed + cancelled < n_jobs) {
        uint64_t r = dv_rng_below(&rng, 100);
        if (r < 40 && next_job <= n_jobs) {
            const char *q = r % 2 ? "a" : "b";
            dv_sched_submit(s, next_job++, q, r % 3 ? "" : "m@1", 3);
        } else if (r < 42 && dv_sched_workers(s) < 6) {
            dv_sched_worker_add(s, next_worker++,
                                1 + (uint32_t)dv_rng_below(&rng, 8));
        } else if (r < 43 && dv_sched_workers(s) > 1) {
            size_t n = 0;
            uint64_t victim = next_worker - 1 - dv_rng_below(&rng, 3);
            dv_sched_worker_remove(s, victim, lost, &n);
            for (size_t i = 0; i < n; i++) {
                failed += lost[i].failed;
            }
        } else {
            pick_t p;
            while (next(s, &p)) {
                // Half finish at once, some fail to be retried after a
                // backoff (held); the rest stay running for a while.
                uint64_t fate = dv_rng_below(&rng, 8);
                if (fate < 4 && dv_sched_finish(s, p.job, p.worker) == 0) {
                    finished++;
                } else if (fate == 4) {
                    dv_sched_retry(s, p.job, p.worker);
                }
            }
            // Some held jobs come back to their queue, one is cancelled.
            size_t n_held = dv_sched_ids(s, false, true, ids);
            for (size_t i = 0; i < n_held; i++) {
                if (dv_rng_below(&rng, 3) == 0) {
                    dv_sched_release(s, ids[i]);
                } else if (dv_rng_below(&rng, 20) == 0 &&
                           dv_sched_cancel(s, ids[i]) == 0) {
                    cancelled++;
                }
            }
            // Restart some busy workers (as after a crash): their running
            // jobs are requeued or fail, and the worker registers again.
            for (uint64_t w = 1; w < next_worker; w++) {
                if (dv_sched_worker_running(s, w) > 0 &&
                    dv_rng_below(&rng, 2) == 0) {
                    size_t n = 0;
                    dv_sched_worker_remove(s, w, lost, &n);
                    for (size_t i = 0; i < n; i++) {
                        failed += lost[i].failed;
                    }
                    dv_sched_worker_add(s, w, 4);
                }
            }
        }
        if (dv_sched_workers(s) == 0) {
            dv_sched_worker_add(s, next_worker++, 4);
        }
        if (dv_sched_queued(s) + dv_sched_running(s) + dv_sched_held(s) +
                finished + failed + cancelled !=
            next_job - 1) {
            violations++;
        }
        // dv_sched_ids lists exactly the running and the held jobs.
        size_t n_running = dv_sched_ids(s, true, false, ids);
        size_t n_both = dv_sched_ids(s, true, true, ids);
        listed_wrong += n_running != dv_sched_running(s) ||
                        n_both != n_running + dv_sched_held(s);
        for (size_t i = 0; i < n_both; i++) {
            dv_sched_state_t st;
            uint32_t attempts;
            listed_wrong +=
                dv_sched_job_state(s, ids[i], &st, &attempts) != 0 ||
                st != (i < n_running ? DV_SCHED_RUNNING : DV_SCHED_HELD);
        }
        held_seen += n_both - n_running;
        // Held jobs left when the last were submitted are released.
        if (next_job > n_jobs &&
            dv_sched_queued(s) + dv_sched_running(s) == 0) {
            size_t n_held = dv_sched_ids(s, false, true, ids);
            for (size_t i = 0; i < n_held; i++) {
                dv_sched_release(s, ids[i]);
            }
        }
    }
    size_t left = dv_sched_queued(s) + dv_sched_running(s) + dv_sched_held(s);
    dv_sched_destroy(&s);
    free(ids);
    printf("  %zu finished, %zu failed after 3 attempts, %zu cancelled while "
           "held; %zu held jobs listed over the run\n",
           finished, failed, cancelled, held_seen);
    DV_CHECK_EQ(violations, 0);
    DV_CHECK_EQ(listed_wrong, 0);
    DV_CHECK(held_seen > 0);
    DV_CHECK(cancelled > 0);
    DV_CHECK_EQ(left, 0);
    DV_CHECK_EQ(finished + failed + cancelled, n_jobs);
}

static void
test_drain_and_queue_counts(void)
{
    dv_sched_t *s = dv_sched_new();
    pick_t p;
    dv_sched_worker_add(s, 1, 4);
    for (uint64_t j = 1; j <= 3; j++) {
        dv_sched_submit(s, j, j == 3 ? "b" : "a", "", 3);
    }
    bool first = next(s, &p) && p.job == 1; // a
    dv_sched_worker_drain(s, 1);
    bool none_while_draining = !next(s, &p);
    size_t qa = 9, ra = 9, qb = 9, rb = 9;
    const char *a = dv_sched_queue_info(s, 0, &qa, &ra);
    const char *b = dv_sched_queue_info(s, 1, &qb, &rb);
    const char *none = dv_sched_queue_info(s, 2, &qb, &rb);
    int fin = dv_sched_finish(s, 1, 1); // a draining worker's job finishes
    size_t ra_after = 9;
    dv_sched_queue_info(s, 0, &qa, &ra_after);
    dv_sched_worker_add(s, 1, 4); // registering again ends draining
    int resumed = 0;
    while (next(s, &p)) {
        resumed++;
    }
    size_t n_queues = dv_sched_queue_count(s);
    DV_CHECK(first);
    DV_CHECK(none_while_draining);
    DV_CHECK(a && strcmp(a, "a") == 0);
    DV_CHECK(b && strcmp(b, "b") == 0);
    DV_CHECK(none == NULL);
    DV_CHECK_EQ(ra, 1);
    DV_CHECK_EQ(qb, 1);
    DV_CHECK_EQ(rb, 0);
    DV_CHECK_EQ(fin, 0);
    DV_CHECK_EQ(ra_after, 0);
    DV_CHECK_EQ(resumed, 2);
    DV_CHECK_EQ(n_queues, 2);
    dv_sched_destroy(&s);
}

static void
test_priorities_then_fifo(void)
{
    dv_sched_t *s = dv_sched_new();
    dv_sched_submit_prio(s, 1, "q", "", 3, 0);
    dv_sched_submit_prio(s, 2, "q", "", 3, 5);
    dv_sched_submit_prio(s, 3, "q", "", 3, -2);
    dv_sched_submit_prio(s, 4, "q", "", 3, 5);
    dv_sched_submit_prio(s, 5, "q", "", 3, 0);
    dv_sched_worker_add(s, 1, 10);
    uint64_t order[5] = {0};
    pick_t p;
    for (int i = 0; i < 5 && next(s, &p); i++) {
        order[i] = p.job;
    }
    dv_sched_destroy(&s);
    const uint64_t want[5] = {2, 4, 1, 5, 3}; // by priority, FIFO within
    for (int i = 0; i < 5; i++) {
        DV_CHECK_EQ(order[i], want[i]);
    }
}

static void
test_aging_prevents_starvation(void)
{
    dv_sched_t *s = dv_sched_new();
    dv_sched_set_aging(s, 100); // 100 ms waited = one level
    dv_sched_worker_add(s, 1, 1);
    dv_sched_tick(s, 1000);
    dv_sched_submit_prio(s, 1, "q", "", 3, 0); // low, waits from t=1000
    uint64_t next_id = 2;
    pick_t p;
    // A stream of priority-3 jobs, one arriving per 50 ms, one slot: the
    // low job must get its turn once it has waited 3 levels' worth.
    uint64_t low_ran_at = 0;
    for (uint64_t t = 1000; t <= 2000 && !low_ran_at; t += 50) {
        dv_sched_tick(s, t);
        dv_sched_submit_prio(s, next_id++, "q", "", 3, 3);
        if (next(s, &p)) {
            if (p.job == 1) {
                low_ran_at = t;
            }
            dv_sched_finish(s, p.job, p.worker);
        }
    }
    // Strict priorities (no aging) would never run it.
    dv_sched_t *strict = dv_sched_new();
    dv_sched_worker_add(strict, 1, 1);
    dv_sched_submit_prio(strict, 1, "q", "", 3, 0);
    bool low_ran_strict = false;
    for (uint64_t t = 0; t < 40; t++) {
        dv_sched_tick(strict, 1000 + 50 * t);
        dv_sched_submit_prio(strict, 2 + t, "q", "", 3, 3);
        if (next(strict, &p)) {
            low_ran_strict |= p.job == 1;
            dv_sched_finish(strict, p.job, p.worker);
        }
    }
    dv_sched_destroy(&s);
    dv_sched_destroy(&strict);
    // Each priority-3 job is fresh when picked (one per tick), so the low
    // job wins when 0 + waited/100 > 3 + (its waited)/100 ~ 3: after 300 ms.
    DV_CHECK(low_ran_at >= 1300);
    DV_CHECK(low_ran_at <= 1400);
    DV_CHECK(!low_ran_strict);
}

static void
test_hold_and_release(void)
{
    dv_sched_t *s = dv_sched_new();
    dv_sched_worker_add(s, 7, 1);
    dv_sched_submit(s, 1, "q", "", 3);
    dv_sched_submit(s, 2, "q", "", 3);
    pick_t p;
    bool first = next(s, &p) && p.job == 1;
    int retry_rc = dv_sched_retry(s, 1, 7); // failed, to be retried later
    dv_sched_state_t st = DV_SCHED_QUEUED;
    uint32_t attempts = 0;
    dv_sched_job_state(s, 1, &st, &attempts);
    size_t held = dv_sched_held(s);
    size_t waiting = dv_sched_queue_waiting(s, "q"); // held ones count
    bool second = next(s, &p) && p.job == 2;         // the slot went to job 2
    dv_sched_finish(s, 2, 7);
    bool nothing = !next(s, &p); // job 1 is held: nothing to run
    int release_rc = dv_sched_release(s, 1);
    int again_rc = dv_sched_release(s, 1);
    bool third = next(s, &p) && p.job == 1 && p.attempt == 2;
    // A queued job can be held; a held job can be cancelled.
    dv_sched_submit(s, 3, "q", "", 3);
    int hold_rc = dv_sched_hold(s, 3);
    int cancel_rc = dv_sched_cancel(s, 3);
    size_t held_after = dv_sched_held(s);
    dv_sched_destroy(&s);
    DV_CHECK(first);
    DV_CHECK_EQ(retry_rc, 0);
    DV_CHECK_EQ(st, DV_SCHED_HELD);
    DV_CHECK_EQ(attempts, 1);
    DV_CHECK_EQ(held, 1);
    DV_CHECK_EQ(waiting, 2);
    DV_CHECK(second);
    DV_CHECK(nothing);
    DV_CHECK_EQ(release_rc, 0);
    DV_CHECK_EQ(again_rc, DV_ENOENT);
    DV_CHECK(third);
    DV_CHECK_EQ(hold_rc, 0);
    DV_CHECK_EQ(cancel_rc, 0);
    DV_CHECK_EQ(held_after, 0);
}

static void
test_workers_serve_their_queues(void)
{
    dv_sched_t *s = dv_sched_new();
    dv_sched_worker_add(s, 1, 4);
    dv_sched_worker_add(s, 2, 4);
    const char *only_a[] = {"a"};
    dv_sched_worker_queues(s, 1, only_a, 1); // worker 2 serves all
    dv_sched_submit(s, 10, "b", "", 3);
    dv_sched_submit(s, 11, "b", "", 3);
    dv_sched_submit(s, 12, "a", "", 3);
    pick_t p;
    int b_on_1 = 0, picked = 0;
    while (next(s, &p)) {
        picked++;
        b_on_1 += p.job != 12 && p.worker == 1;
    }
    // With worker 2 full, a "b" job waits although worker 1 has room.
    dv_sched_t *t = dv_sched_new();
    dv_sched_worker_add(t, 1, 4);
    dv_sched_worker_add(t, 2, 1);
    dv_sched_worker_queues(t, 1, only_a, 1);
    dv_sched_submit(t, 20, "b", "", 3);
    dv_sched_submit(t, 21, "b", "", 3);
    dv_sched_submit(t, 22, "a", "", 3);
    int n = 0;
    bool a_ran = false;
    while (next(t, &p)) {
        n++;
        a_ran |= p.job == 22 && p.worker == 1;
    }
    size_t waiting = dv_sched_queue_waiting(t, "b");
    dv_sched_destroy(&s);
    dv_sched_destroy(&t);
    DV_CHECK_EQ(picked, 3);
    DV_CHECK_EQ(b_on_1, 0);
    DV_CHECK_EQ(n, 2);
    DV_CHECK(a_ran);
    DV_CHECK_EQ(waiting, 1);
}

static void
test_heavy_jobs_leave_room(void)
{
    dv_sched_t *s = dv_sched_new();
    dv_sched_worker_add(s, 1, 3);
    dv_sched_worker_heavy_cap(s, 1, 1);
    dv_sched_submit(s, 1, "train", "", 3);
    dv_sched_set_heavy(s, 1);
    dv_sched_submit(s, 2, "train", "", 3);
    dv_sched_set_heavy(s, 2);
    dv_sched_submit(s, 3, "infer", "", 3);
    pick_t p;
    int heavy = 0, light = 0;
    while (next(s, &p)) {
        heavy += p.job <= 2;
        light += p.job == 3;
    }
    size_t waiting = dv_sched_queue_waiting(s, "train");
    // In one queue too: a light job behind a heavy one that must wait
    // goes first.
    dv_sched_submit(s, 4, "train", "", 3);
    bool passes = next(s, &p) && p.job == 4;
    int fin = dv_sched_finish(s, 1, 1);
    bool second = next(s, &p) && p.job == 2; // the heavy slot is free again
    dv_sched_destroy(&s);
    DV_CHECK_EQ(heavy, 1);
    DV_CHECK_EQ(light, 1);
    DV_CHECK_EQ(waiting, 1);
    DV_CHECK(passes);
    DV_CHECK_EQ(fin, 0);
    DV_CHECK(second);
}

// Each level keeps its light jobs in a list of their own (so a light job
// behind heavy ones that must wait is found without walking them), and it
// stays right whichever way jobs come and go: marked heavy while waiting
// or while held, held and released, given back, lost with their worker.
// Each time, a light job behind heavy ones still goes first, in FIFO order,
// and once the light ones are gone the heavy ones still run one at a time.
static void
test_light_jobs_pass_however_they_came(void)
{
    dv_sched_t *s = dv_sched_new();
    dv_sched_worker_add(s, 1, 8);
    dv_sched_worker_heavy_cap(s, 1, 1);
    pick_t p;
    for (uint64_t j = 1; j <= 4; j++) {
        dv_sched_submit(s, j, "q", "", 5);
        if (j != 3) {
            dv_sched_set_heavy(s, j);
        }
    }
    bool h1 = next(s, &p) && p.job == 1;  // the heavy slot taken
    bool l3 = next(s, &p) && p.job == 3;  // the light one passes 2 and 4
    int r3 = dv_sched_retry(s, 3, 1);     // 3 held ...
    int m3 = dv_sched_set_heavy(s, 3);    // ... marked heavy while held
    int rel3 = dv_sched_release(s, 3);    // back in the queue, heavy
    bool none = !next(s, &p);             // 2, 4, 3: all heavy, slot taken
    int g1 = dv_sched_give_back(s, 1, 1); // 1 to the front again
    dv_sched_submit(s, 5, "q", "", 5);    // light, behind four heavy
    bool h1b = next(s, &p) && p.job == 1;
    bool l5 = next(s, &p) && p.job == 5;
    size_t n = 0;
    dv_sched_lost_t lost[8];
    dv_sched_worker_remove(s, 1, lost, &n); // 1 and 5 go back
    dv_sched_worker_add(s, 2, 8);
    dv_sched_worker_heavy_cap(s, 2, 1);
    dv_sched_submit(s, 6, "q", "", 5);
    int order[8], k = 0;
    uint64_t heavy_on = 0;
    while (k < 8) { // what can go now; then free the heavy slot, again
        if (next(s, &p)) {
            order[k++] = (int)p.job;
            heavy_on = p.job != 5 && p.job != 6 ? p.job : heavy_on;
        } else if (!heavy_on || dv_sched_finish(s, heavy_on, 2) != 0) {
            break;
        } else {
            heavy_on = 0;
        }
    }
    size_t left = dv_sched_queued(s);
    dv_sched_destroy(&s);
    printf("  after the loss: %d jobs ran in order", k);
    for (int i = 0; i < k; i++) {
        printf(" %d", order[i]);
    }
    printf("\n");
    DV_CHECK(h1);
    DV_CHECK(l3);
    DV_CHECK_EQ(r3 | m3 | rel3 | g1, 0);
    DV_CHECK(none);
    DV_CHECK(h1b);
    DV_CHECK(l5);
    DV_CHECK_EQ(n, 2);
    // 1 (heavy, first again), then the light 5 and 6 pass the rest, then
    // the heavy ones one at a time: 2, 4, 3.
    const int want[6] = {1, 5, 6, 2, 4, 3};
    DV_CHECK_EQ(k, 6);
    DV_CHECK_EQ(left, 0);
    for (int i = 0; i < 6; i++) {
        DV_CHECK_EQ(order[i], want[i]);
    }
}

// An evicted worker (revoked key): its jobs go back to the front of their
// queue even on their last attempt, each with one more run allowed, and the
// next run's attempt number is new.
static void
test_evict_refunds_the_run(void)
{
    dv_sched_t *s = dv_sched_new();
    dv_sched_submit(s, 1, "q", "", 1); // one attempt only
    dv_sched_submit(s, 2, "q", "", 3);
    dv_sched_worker_add(s, 7, 1);
    pick_t p;
    bool first = next(s, &p) && p.job == 1 && p.attempt == 1;
    dv_sched_lost_t lost[2];
    size_t n = 0;
    dv_sched_worker_evict(s, 7, lost, &n);
    bool requeued = n == 1 && lost[0].job == 1 && !lost[0].failed &&
                    dv_sched_queued(s) == 2 && dv_sched_workers(s) == 0;
    dv_sched_worker_add(s, 8, 1);
    bool again = next(s, &p) && p.job == 1 && p.attempt == 2;
    int late = dv_sched_finish(s, 1, 7); // the evicted run's answer
    // A plain loss now fails it: the refund was one run, not a reset.
    dv_sched_worker_remove(s, 8, lost, &n);
    bool failed = n == 1 && lost[0].failed;
    dv_sched_destroy(&s);
    DV_CHECK(first);
    DV_CHECK(requeued);
    DV_CHECK(again);
    DV_CHECK_EQ(late, DV_ENOENT);
    DV_CHECK(failed);
}

// Claims: a held job goes to the worker that says it runs it (a group's
// new leader), a slot needed only when asked; a job moves from an older
// connection of the same worker to its newer one, counts unchanged; a
// worker claims nothing of a queue it does not serve, nor a job where
// `from` does not say it is. A refund allows one more run of a waiting job.
static void
test_claims_and_refunds(void)
{
    dv_sched_t *s = dv_sched_new();
    const char *only_b[] = {"b"};
    dv_sched_worker_add(s, 1, 1);
    dv_sched_worker_add(s, 2, 1);
    dv_sched_worker_add(s, 3, 4);
    dv_sched_worker_queues(s, 3, only_b, 1);
    for (uint64_t j = 10; j <= 12; j++) {
        dv_sched_submit(s, j, "a", "", 1);
        dv_sched_set_attempts(s, j, 1);
        dv_sched_hold(s, j);
    }
    int held = dv_sched_claim(s, 10, 1, 0, true); // takes 1's slot
    int full = dv_sched_claim(s, 11, 1, 0, true);
    int done_claim = dv_sched_claim(s, 11, 1, 0, false); // a done: no slot
    int fin = dv_sched_finish(s, 11, 1);
    int other_queue = dv_sched_claim(s, 12, 3, 0, false);
    int running_already = dv_sched_claim(s, 10, 2, 0, false);
    int wrong_from = dv_sched_claim(s, 10, 2, 3, false);
    int same_worker = dv_sched_claim(s, 10, 1, 1, false);
    int moved = dv_sched_claim(s, 10, 2, 1, true);
    uint64_t on = 0;
    dv_sched_job_worker(s, 10, &on);
    size_t on_1 = dv_sched_worker_running(s, 1);
    size_t on_2 = dv_sched_worker_running(s, 2);
    size_t running = dv_sched_running(s);
    int unknown_worker = dv_sched_claim(s, 12, 99, 0, false);
    int refund_running = dv_sched_refund(s, 10);
    int refund = dv_sched_refund(s, 12); // held, on its only attempt
    dv_sched_release(s, 12);
    pick_t p;
    bool twelve = next(s, &p) && p.job == 12 && p.worker == 1 &&
                  p.attempt == 2; // runs again: its second run is allowed
    dv_sched_lost_t lost[2];
    size_t n = 0;
    dv_sched_worker_remove(s, 1, lost, &n); // now it has none left
    bool failed = n == 1 && lost[0].job == 12 && lost[0].failed;
    dv_sched_destroy(&s);
    DV_CHECK_EQ(held, 0);
    DV_CHECK_EQ(full, DV_ELIMIT);
    DV_CHECK_EQ(done_claim, 0);
    DV_CHECK_EQ(fin, 0);
    DV_CHECK_EQ(other_queue, DV_EPERM);
    DV_CHECK_EQ(running_already, DV_ENOENT);
    DV_CHECK_EQ(wrong_from, DV_ENOENT);
    DV_CHECK_EQ(same_worker, DV_ENOENT);
    DV_CHECK_EQ(moved, 0);
    DV_CHECK_EQ(on, 2);
    DV_CHECK_EQ(on_1, 0);
    DV_CHECK_EQ(on_2, 1);
    DV_CHECK_EQ(running, 1);
    DV_CHECK_EQ(unknown_worker, DV_EINVAL);
    DV_CHECK_EQ(refund_running, DV_ENOENT);
    DV_CHECK_EQ(refund, 0);
    DV_CHECK(twelve);
    DV_CHECK(failed);
}

// backoff_ms x 2^(failures - 1), capped at 60 s: each wait lies in
// [d/2, d] (equal jitter), and the random half spans that range.
static void
test_backoff_doubles_caps_jitters(void)
{
    static const struct {
        uint32_t base_ms, failures;
        uint64_t d; // the full delay before jitter
    } rows[] = {
        {500, 1, 500},
        {500, 2, 1000},
        {500, 3, 2000},
        {500, 8, 60000},
        {1000, 7, 60000},
        {60000, 1, 60000},
        {60000, 2, 60000},
        {40000, 2, 60000},
        {30000, 2, 60000},
        {29999, 2, 59998},
        {500, 4000000000u, 60000},
    };
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        uint64_t lo = UINT64_MAX, hi = 0;
        for (int i = 0; i < 2000; i++) {
            uint64_t w =
                dv_sched_backoff_ms(rows[r].base_ms, rows[r].failures, &rng);
            lo = w < lo ? w : lo;
            hi = w > hi ? w : hi;
        }
        uint64_t d = rows[r].d;
        // The random half covers [d/2, d]: both ends within 1% of d.
        DV_CHECK(lo >= d / 2 && lo <= d / 2 + d / 100);
        DV_CHECK(hi <= d && hi + d / 100 >= d);
    }
    // Base 0 retries at once and leaves the random state alone.
    uint64_t before = rng;
    DV_CHECK_EQ(dv_sched_backoff_ms(0, 3, &rng), 0);
    DV_CHECK_EQ(rng, before);
}

// Riders (dynamic batching): at most `limit` jobs may join (the fits rule
// counts them), only the lead's queue, priority and model, in FIFO order.
// (A queue holds its own levels: another queue's jobs are never reached.)
typedef struct {
    size_t limit, asked;
} fits_t;

static bool
fits_limit(uint64_t job, void *arg)
{
    (void)job;
    fits_t *f = arg;
    f->asked++;
    return f->asked <= f->limit;
}

static void
test_riders_take_no_slot(void)
{
    dv_sched_t *s = dv_sched_new();
    dv_sched_worker_add(s, 7, 1); // one slot
    dv_sched_submit(s, 1, "q", "m@1", 3);
    dv_sched_submit(s, 2, "q", "m@1", 3);
    dv_sched_submit(s, 3, "q", "other@1", 3); // skipped, keeps its place
    dv_sched_submit(s, 4, "q", "m@1", 3);
    dv_sched_submit_prio(s, 5, "q", "m@1", 3, 9); // another priority
    dv_sched_submit(s, 6, "q", "m@1", 3);
    dv_sched_submit(s, 8, "q", "m@1", 3);
    pick_t lead;
    bool first = next(s, &lead) && lead.job == 5; // priority 9 first
    uint64_t ids[8];
    uint32_t att[8];
    fits_t f = {8, 0};
    size_t alone = dv_sched_ride(s, 5, fits_limit, &f, ids, att, 8);
    // The slot is free again: job 1 leads, three ride (limit 3: the fourth
    // asked is refused and ends the ride).
    pick_t second;
    dv_sched_finish(s, 5, 7);
    bool next_ok = next(s, &second) && second.job == 1;
    f = (fits_t){3, 0};
    size_t n = dv_sched_ride(s, 1, fits_limit, &f, ids, att, 8);
    bool which = n == 3 && ids[0] == 2 && ids[1] == 4 && ids[2] == 6 &&
                 att[0] == 1 && att[2] == 1;
    size_t running = dv_sched_running(s),
           on_worker = dv_sched_worker_running(s, 7);
    pick_t none;
    bool full = !next(s, &none); // riders took no slot, the lead one
    // A rider finishing frees no slot; the lead finishing does.
    dv_sched_finish(s, 2, 7);
    bool still_full = !next(s, &none);
    dv_sched_finish(s, 1, 7);
    pick_t third;
    bool after = next(s, &third) && third.job == 3; // other@1 kept its place
    // The worker dies: its riders go back first, in order.
    dv_sched_lost_t lost[8];
    size_t n_lost = 0;
    dv_sched_worker_remove(s, 7, lost, &n_lost);
    dv_sched_worker_add(s, 9, 1);
    pick_t back;
    bool requeued =
        n_lost == 3 && next(s, &back) && back.job == 4 && back.attempt == 2;
    dv_sched_destroy(&s);
    DV_CHECK(first);
    DV_CHECK_EQ(alone, 0); // nothing else waits at priority 9
    DV_CHECK(next_ok);
    DV_CHECK(which);
    DV_CHECK_EQ(f.asked, 4);
    DV_CHECK_EQ(running, 4);
    DV_CHECK_EQ(on_worker, 4);
    DV_CHECK(full);
    DV_CHECK(still_full);
    DV_CHECK(after);
    DV_CHECK(requeued);
}

// Who serves a queue is indexed (workers serving every queue, and each
// queue's servers), rebuilt when workers come, go, name other queues or a
// queue is made. Against a model of the same workers, through random
// churn: every job goes to a worker that serves its queue, and when a
// round ends no free worker serves a queue with waiting jobs (nothing was
// left behind by a stale index). Workers name queues before and after
// they exist, twice, or none (all).
static void
test_queue_servers_through_churn(void)
{
    enum { W = 12, Q = 6, ROUNDS = 3000 };
    static const char *names[Q] = {"q0", "q1", "q2", "q3", "q4", "q5"};
    struct {
        bool live, draining;
        uint32_t capacity, running;
        bool serves[Q]; // all true: names none (serves every queue)
    } m[W + 1];
    memset(m, 0, sizeof m);
    dv_sched_t *s = dv_sched_new();
    dv_rng_t rng;
    dv_rng_seed(&rng, 7);
    uint64_t next_job = 1;
    static uint64_t where[40000]; // job -> worker while running
    static uint8_t queue_of[40000];
    memset(where, 0, sizeof where);
    size_t wrong_worker = 0, left_behind = 0, dispatched = 0;
    for (size_t round = 0; round < ROUNDS; round++) {
        uint64_t r = dv_rng_below(&rng, 100);
        uint64_t w = 1 + dv_rng_below(&rng, W);
        bool comes = r < 4 && !m[w].live;
        if (comes || (r >= 12 && r < 15 && m[w].live)) {
            // comes, or names other queues (as on a re-register): 0..3
            if (comes) {
                m[w].live = true;
                m[w].draining = false;
                m[w].running = 0;
                m[w].capacity = 1 + (uint32_t)dv_rng_below(&rng, 3);
                dv_sched_worker_add(s, w, m[w].capacity);
            }
            size_t n = (size_t)dv_rng_below(&rng, 4);
            const char *list[4];
            for (size_t i = 0; i < Q; i++) {
                m[w].serves[i] = n == 0;
            }
            for (size_t i = 0; i < n; i++) {
                size_t q = (size_t)dv_rng_below(&rng, Q);
                list[i] = names[q];
                m[w].serves[q] = true;
            }
            if (n || !comes) {
                dv_sched_worker_queues(s, w, list, n);
            }
        } else if (r >= 4 && r < 6 && m[w].live) { // goes
            size_t n = 0;
            dv_sched_lost_t lost[16];
            dv_sched_worker_remove(s, w, lost, &n);
            m[w].live = false;
        } else if (r >= 6 && r < 7 && m[w].live) {
            dv_sched_worker_drain(s, w);
            m[w].draining = true;
        } else if (r >= 15 && r < 60 && next_job < 40000) {
            // Queues are made one by one as the rounds go: workers name
            // some before they exist.
            size_t q = (size_t)dv_rng_below(&rng, 1 + round * Q / ROUNDS);
            queue_of[next_job] = (uint8_t)q;
            dv_sched_submit(s, next_job++, names[q], "", 1000);
        } else { // finish some running jobs, then a dispatch round
            for (uint64_t j = 1; j < next_job; j++) {
                if (where[j] && dv_rng_below(&rng, 3) == 0) {
                    if (dv_sched_finish(s, j, where[j]) == 0 &&
                        m[where[j]].live) {
                        m[where[j]].running--;
                    }
                    where[j] = 0;
                }
            }
            pick_t p;
            while (next(s, &p)) {
                dispatched++;
                where[p.job] = p.worker;
                m[p.worker].running++;
                bool ok = p.worker >= 1 && p.worker <= W && m[p.worker].live &&
                          !m[p.worker].draining &&
                          m[p.worker].running <= m[p.worker].capacity &&
                          m[p.worker].serves[queue_of[p.job]];
                wrong_worker += !ok;
            }
            for (size_t q = 0; q < Q; q++) {
                size_t qi = dv_sched_queue_find(s, names[q]);
                size_t waiting = 0, running = 0;
                if (qi == SIZE_MAX ||
                    !dv_sched_queue_info(s, qi, &waiting, &running) ||
                    waiting == 0) {
                    continue;
                }
                for (uint64_t k = 1; k <= W; k++) {
                    left_behind += m[k].live && !m[k].draining &&
                                   m[k].running < m[k].capacity &&
                                   m[k].serves[q];
                }
            }
        }
        // A lost worker's running jobs went back (or failed): forget them.
        for (uint64_t j = 1; j < next_job; j++) {
            if (where[j] && !m[where[j]].live) {
                where[j] = 0;
            }
        }
    }
    dv_sched_destroy(&s);
    printf("  %zu dispatched\n", dispatched);
    DV_CHECK(dispatched > 1000);
    DV_CHECK_EQ(wrong_worker, 0);
    DV_CHECK_EQ(left_behind, 0);
}

static const dv_test_case_t cases[] = {
    {"backoff doubles, caps at 60 s, half fixed and half random",
     test_backoff_doubles_caps_jitters},

    {"heavy jobs leave room", test_heavy_jobs_leave_room},
    {"light jobs pass heavy ones, however they came",
     test_light_jobs_pass_however_they_came},

    {"workers serve their queues", test_workers_serve_their_queues},

    {"priorities, FIFO within each", test_priorities_then_fifo},
    {"aging prevents starvation", test_aging_prevents_starvation},
    {"hold and release (retry backoff)", test_hold_and_release},

    {"credits bound dispatch", test_credits_bound_dispatch},
    {"riders take no slot", test_riders_take_no_slot},
    {"model affinity, then least loaded", test_affinity_then_least_loaded},
    {"load is relative to capacity", test_load_is_relative_to_capacity},
    {"queues take turns, FIFO within", test_queues_take_turns_fifo_within},
    {"thousands of queues, the busy ones take turns",
     test_many_queues_take_turns},
    {"worker loss requeues, then fails", test_worker_loss_requeues_then_fails},
    {"eviction refunds the lost run", test_evict_refunds_the_run},
    {"claims move a job, a refund allows one more run",
     test_claims_and_refunds},
    {"cancel and bad calls", test_cancel_and_bad_calls},
    {"random churn keeps invariants", test_random_churn},
    {"queue servers indexed through churn", test_queue_servers_through_churn},
    {"drain, and per-queue counts", test_drain_and_queue_counts},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
