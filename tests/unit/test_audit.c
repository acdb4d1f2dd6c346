// test_audit — the broker's audit log: entries in order with their
// fields, the time window of dv_audit_since, control bytes from peers
// cleaned, the memory ring past DV_AUDIT_MEMORY, and persistence: entries
// committed to the store come back after a reopen, numbered on from there.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dv_audit.h"
#include "dv_limits.h"
#include "dv_store.h"
#include "dv_test.h"

static uint64_t
wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
test_entries_and_window(void)
{
    dv_audit_t *a = NULL;
    dv_error_t err = {0};
    int rc = dv_audit_open(&a, NULL, DV_MAX_AUDIT_STORED, &err);
    DV_CHECK_RC(rc, 0, &err);
    uint64_t t0 = wall_ms();
    dv_audit_add(a, "ops", "model_push", "name iris", "ok");
    dv_audit_add(a, "bob", "submit", "queue \x1b[31mred\x1b[0m",
                 "refused: bad\nline");
    dv_audit_add(a, NULL, "reload", NULL, NULL);
    size_t first = 9, n = 9;
    dv_audit_since(a, 0, &first, &n);
    dv_audit_entry_t e[3];
    for (size_t i = 0; i < 3 && i < n; i++) {
        dv_audit_at(a, first + i, &e[i]);
    }
    size_t later_first = 0, later_n = 9;
    dv_audit_since(a, wall_ms() + 60000, &later_first, &later_n);
    DV_CHECK_EQ(first, 0);
    DV_CHECK_EQ(n, 3);
    DV_CHECK_EQ(dv_audit_count(a), 3);
    DV_CHECK_EQ(dv_audit_last_seq(a), 3);
    DV_CHECK_EQ(e[0].seq, 1);
    DV_CHECK(e[0].unix_ms >= t0);
    DV_CHECK_STR_EQ(e[0].key, "ops");
    DV_CHECK_STR_EQ(e[0].action, "model_push");
    DV_CHECK_STR_EQ(e[0].object, "name iris");
    DV_CHECK_STR_EQ(e[0].outcome, "ok");
    DV_CHECK_STR_EQ(e[1].object, "queue ?[31mred?[0m"); // no escapes
    DV_CHECK_STR_EQ(e[1].outcome, "refused: bad?line");
    DV_CHECK_STR_EQ(e[2].key, "");
    DV_CHECK_STR_EQ(e[2].object, "");
    DV_CHECK_EQ(e[2].seq, 3);
    DV_CHECK_EQ(later_n, 0); // nothing from the future
    dv_audit_destroy(&a);
    DV_CHECK(a == NULL);
}

// Add an entry stamped at least 2 ms after the last one
// (the clock is polled until it has moved; a few milliseconds).
static void
add_later(dv_audit_t *a, const char *object)
{
    uint64_t last = 0;
    if (dv_audit_count(a) > 0) {
        dv_audit_entry_t e;
        dv_audit_at(a, dv_audit_count(a) - 1, &e);
        last = e.unix_ms;
    }
    while (wall_ms() <= last + 1) { // a gap: t - 1 is past the previous
        struct timespec ts = {0, 100 * 1000};
        nanosleep(&ts, NULL);
    }
    dv_audit_add(a, "k", "act", object, "ok");
}

// The window's edges: since_ms is inclusive. With entries at three distinct
// milliseconds t1 < t2 < t3, each edge just inside and just outside: from
// t1 - 1 and t1 all three; t1 + 1 .. t2 the last two; t3 the last one;
// t3 + 1 none.
static void
test_window_edges(void)
{
    dv_audit_t *a = NULL;
    dv_error_t err = {0};
    int rc = dv_audit_open(&a, NULL, DV_MAX_AUDIT_STORED, &err);
    DV_CHECK_RC(rc, 0, &err);
    add_later(a, "first");
    add_later(a, "second");
    add_later(a, "third");
    uint64_t t[3];
    for (size_t i = 0; i < 3; i++) {
        dv_audit_entry_t e;
        dv_audit_at(a, i, &e);
        t[i] = e.unix_ms;
    }
    const struct {
        uint64_t since_ms;
        size_t first, n;
    } cases[] = {
        {0, 0, 3},          {t[0] - 1, 0, 3}, {t[0], 0, 3},
        {t[0] + 1, 1, 2},   {t[1] - 1, 1, 2}, {t[1], 1, 2},
        {t[1] + 1, 2, 1},   {t[2], 2, 1},     {t[2] + 1, 3, 0},
        {UINT64_MAX, 3, 0},
    };
    size_t got_first[10], got_n[10];
    for (size_t i = 0; i < 10; i++) {
        dv_audit_since(a, cases[i].since_ms, &got_first[i], &got_n[i]);
    }
    dv_audit_destroy(&a);
    DV_CHECK(t[0] < t[1] && t[1] < t[2]);
    for (size_t i = 0; i < 10; i++) {
        if (got_first[i] != cases[i].first || got_n[i] != cases[i].n) {
            fprintf(stderr, "  since t%+lld: first %zu n %zu\n",
                    (long long)(cases[i].since_ms - t[0]), got_first[i],
                    got_n[i]);
        }
        DV_CHECK_EQ(got_first[i], cases[i].first);
        DV_CHECK_EQ(got_n[i], cases[i].n);
    }
}

// Past DV_AUDIT_MEMORY the oldest leave memory; numbering goes on.
static void
test_ring(void)
{
    dv_audit_t *a = NULL;
    dv_error_t err = {0};
    int rc = dv_audit_open(&a, NULL, DV_MAX_AUDIT_STORED, &err);
    DV_CHECK_RC(rc, 0, &err);
    size_t total = DV_AUDIT_MEMORY + 5;
    for (size_t i = 0; i < total; i++) {
        char obj[32];
        snprintf(obj, sizeof obj, "n%zu", i + 1);
        dv_audit_add(a, "k", "act", obj, "ok");
    }
    dv_audit_entry_t oldest, newest;
    dv_audit_at(a, 0, &oldest);
    dv_audit_at(a, dv_audit_count(a) - 1, &newest);
    size_t first = 0, n = 0;
    dv_audit_since(a, 0, &first, &n);
    DV_CHECK_EQ(dv_audit_count(a), DV_AUDIT_MEMORY);
    DV_CHECK_EQ(oldest.seq, 6);
    DV_CHECK_STR_EQ(oldest.object, "n6");
    DV_CHECK_EQ(newest.seq, total);
    DV_CHECK_EQ(n, DV_AUDIT_MEMORY);
    dv_audit_destroy(&a);
}

// Committed entries survive a reopen of the store, in order, and new ones
// number on after them.
static void
test_persists(void)
{
    char *dir = dv_test_tmpdir();
    dv_error_t err = {0};
    dv_store_t *st = NULL;
    dv_audit_t *a = NULL;
    int rc = dv_store_open(&st, dir, &err);
    if (rc == 0) {
        rc = dv_audit_open(&a, st, DV_MAX_AUDIT_STORED, &err);
    }
    if (rc == 0) {
        dv_audit_add(a, "ops", "model_rm", "name iris", "ok");
        dv_audit_add(a, "eve", "handshake", "clients socket", "refused: x");
        rc = dv_store_commit(st, &err);
    }
    dv_audit_destroy(&a);
    dv_store_destroy(&st);
    int rc2 = dv_store_open(&st, dir, &err);
    if (rc2 == 0) {
        rc2 = dv_audit_open(&a, st, DV_MAX_AUDIT_STORED, &err);
    }
    size_t n = a ? dv_audit_count(a) : 0;
    dv_audit_entry_t e = {0};
    if (n == 2) {
        dv_audit_at(a, 1, &e);
    }
    char key[16] = "", outcome[32] = "";
    snprintf(key, sizeof key, "%s", e.key ? e.key : "");
    snprintf(outcome, sizeof outcome, "%s", e.outcome ? e.outcome : "");
    uint64_t seq = e.seq;
    if (a) {
        dv_audit_add(a, "ops", "reload", "", "ok");
    }
    uint64_t next = a ? dv_audit_last_seq(a) : 0;
    dv_audit_destroy(&a);
    dv_store_destroy(&st);
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_RC(rc, 0, &err);
    DV_CHECK_RC(rc2, 0, &err);
    DV_CHECK_EQ(n, 2);
    DV_CHECK_EQ(seq, 2);
    DV_CHECK_STR_EQ(key, "eve");
    DV_CHECK_STR_EQ(outcome, "refused: x");
    DV_CHECK_EQ(next, 3);
}

// Open st with max_stored, add n entries (n: 0 for none), commit; the
// store's entry count and oldest seq as read back by a reopen with
// max_stored (which trims, committed too).
static void
stored_after(const char *dir,
             uint64_t max_stored,
             int n,
             uint64_t *stored,
             uint64_t *oldest)
{
    dv_error_t err = {0};
    dv_store_t *st = NULL;
    dv_audit_t *a = NULL;
    int rc = dv_store_open(&st, dir, &err);
    if (rc == 0) {
        rc = dv_audit_open(&a, st, max_stored, &err);
    }
    for (int i = 0; rc == 0 && i < n; i++) {
        dv_audit_add(a, "eve", "handshake", "clients socket", "refused");
    }
    if (rc == 0) {
        rc = dv_store_commit(st, &err);
    }
    dv_audit_destroy(&a);
    *stored = *oldest = 0;
    if (rc == 0 && dv_audit_open(&a, st, max_stored, &err) == 0) {
        dv_store_commit(st, &err);
        *stored = dv_audit_stored(a);
        dv_audit_entry_t e = {0};
        if (dv_audit_count(a)) {
            dv_audit_at(a, 0, &e);
        }
        *oldest = e.seq;
        dv_audit_destroy(&a);
    }
    dv_store_destroy(&st);
}

// The store keeps the newest max_stored entries: adding past it deletes
// the oldest, and opening with a lower bound trims at once; seqs go on.
static void
test_store_keeps_the_newest(void)
{
    char *dir = dv_test_tmpdir();
    uint64_t n1, o1, n2, o2, n3, o3;
    stored_after(dir, 5, 8, &n1, &o1); // 1..8: 4..8 kept
    stored_after(dir, 5, 1, &n2, &o2); // 9: 5..9
    stored_after(dir, 3, 0, &n3, &o3); // a lower bound at open: 7..9
    dv_test_rmdir(dir);
    free(dir);
    DV_CHECK_EQ(n1, 5);
    DV_CHECK_EQ(o1, 4);
    DV_CHECK_EQ(n2, 5);
    DV_CHECK_EQ(o2, 5);
    DV_CHECK_EQ(n3, 3);
    DV_CHECK_EQ(o3, 7);
}

static const dv_test_case_t cases[] = {
    {"entries, fields, window, cleaned text", test_entries_and_window},
    {"the time window's edges", test_window_edges},
    {"the memory ring past its size", test_ring},
    {"committed entries survive a reopen", test_persists},
    {"the store keeps the newest entries", test_store_keeps_the_newest},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
