// test_key_limits — what one key may hold of a broker with CURVE, against
// the real broker and worker (docs/SECURITY.md, Limits): --max-inflight
// unfinished jobs per key, deep-queue jobs waiting in the store included
// and still their key's to read and cancel, room given back as they run;
// --max-connections per socket, refused at the handshake and audited.
// Uses the security tests' fixture (dv_test_sec).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drover.h"
#include "dv_test.h"
#include "dv_test_sec.h"

#define WAIT_MS 30000

// Limits: past --max-inflight unfinished jobs a key's submit is refused
// (DV_ELIMIT, no worker runs them here). With --memory-window 3, three of
// alice's five durable jobs wait in memory and two in the store only
// (spilled): they count all the same (they used to escape the limit), and
// stay alice's: bob, a producer on the same queue, may neither read nor
// cancel one, while alice's cancel of one makes room for one more submit.
// Another key has its own count. Past --max-connections a new connection is
// refused at the handshake, and the log says so.
static void
test_limits(void)
{
    const char *extra[] = {"--max-inflight",
                           "5",
                           "--max-connections",
                           "4",
                           "--memory-window",
                           "3",
                           NULL};
    dv_tsec_t s;
    bool up = dv_tsec_up(&s, extra) && dv_tsec_broker_start(&s, true);
    drover_t *alice = NULL, *admin = NULL, *bob = NULL, *third = NULL,
             *fourth = NULL;
    drover_error_t err = {0};
    int c = up ? dv_tsec_connect_as(&s, "alice", &alice, &err) |
                     dv_tsec_connect_as(&s, "admin", &admin, &err) |
                     dv_tsec_connect_as(&s, "bob", &bob, &err)
               : -1;
    if (c != 0) {
        drover_destroy(&alice);
        drover_destroy(&admin);
        drover_destroy(&bob);
        dv_tsec_down(&s, true);
        DV_CHECK_EQ(c, 0);
    }
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = "jobs";
    job.payload = "x";
    job.payload_len = 1;
    enum { LIMIT = 5, N_SUBMITS = LIMIT + 1 };
    int rcs[N_SUBMITS];
    uint64_t ids[N_SUBMITS] = {0};
    for (int i = 0; i < N_SUBMITS; i++) {
        rcs[i] = drover_submit(alice, &job, 5000, &ids[i], &err);
    }
    bool says = strstr(err.text, "--max-inflight") != NULL;
    // ids[4] waits in the store only (the memory window holds 3).
    drover_job_info_t ji;
    int bob_reads = drover_job_info(bob, ids[4], &ji, &err);
    bool bob_reads_says = strstr(err.text, "submitted by key 'alice'") != NULL;
    int bob_cancels = drover_job_cancel(bob, ids[4], NULL, &err);
    char was[16] = "";
    int alice_cancels = drover_job_cancel(alice, ids[4], was, &err);
    uint64_t more_id = 0, over_id = 0;
    int more = drover_submit(alice, &job, 5000, &more_id, &err);
    int over = drover_submit(alice, &job, 5000, &over_id, &err);
    // The limit is alice's: another key still submits (its own count).
    uint64_t admin_id = 0;
    int admin_rc = drover_submit(admin, &job, 5000, &admin_id, &err);
    int n3 = dv_tsec_connect_as(&s, "alice", &third, &err);
    int n4 = n3 == 0 ? dv_tsec_connect_as(&s, "alice", &fourth, &err) : -1;
    bool a_conn = dv_tsec_audited(admin, "alice", "handshake",
                                  "refused: too many connections");
    printf("  alice: %d of %d accepted, then %s; bob reads her spilled job: "
           "%s, cancels it: %s; alice cancels it (%s): %s, then %s, %s\n",
           LIMIT, N_SUBMITS, dv_err_name(rcs[N_SUBMITS - 1]),
           dv_err_name(bob_reads), dv_err_name(bob_cancels), was,
           dv_err_name(alice_cancels), dv_err_name(more), dv_err_name(over));
    drover_destroy(&alice);
    drover_destroy(&admin);
    drover_destroy(&bob);
    drover_destroy(&third);
    drover_destroy(&fourth);
    dv_tsec_down(&s, rcs[N_SUBMITS - 1] != DV_ELIMIT || over != DV_ELIMIT);
    DV_CHECK(up);
    DV_CHECK_EQ(c, 0);
    for (int i = 0; i < LIMIT; i++) {
        DV_CHECK_EQ(rcs[i], 0);
    }
    DV_CHECK_EQ(rcs[N_SUBMITS - 1], DV_ELIMIT);
    DV_CHECK(says);
    DV_CHECK_EQ(bob_reads, DV_EPERM);
    DV_CHECK(bob_reads_says);
    DV_CHECK_EQ(bob_cancels, DV_EPERM);
    DV_CHECK_EQ(alice_cancels, 0);
    DV_CHECK_STR_EQ(was, "queued");
    DV_CHECK_EQ(more, 0);
    DV_CHECK_EQ(over, DV_ELIMIT);
    DV_CHECK_EQ(admin_rc, 0);
    DV_CHECK_EQ(n3, 0);
    DV_CHECK_EQ(n4, DV_EPERM);
    DV_CHECK(a_conn);
}

// Spilled jobs give their key's room back once they run: with
// --max-inflight 5 and --memory-window 3, alice's five durable jobs (two of
// them in the store only) reach her limit; a worker then runs them all
// (the two come back into memory still hers), and alice may submit five
// more at once. A count that leaked (or went below zero) refuses them.
static void
test_spilled_room_back(void)
{
    const char *extra[] = {"--max-inflight", "5", "--memory-window", "3", NULL};
    dv_tsec_t s;
    bool up = dv_tsec_up(&s, extra) && dv_tsec_broker_start(&s, true);
    drover_t *alice = NULL;
    drover_error_t err = {0};
    int c = up ? dv_tsec_connect_as(&s, "alice", &alice, &err) : -1;
    drover_job_t job = DROVER_JOB_INIT;
    job.queue = "jobs";
    job.payload = "x";
    job.payload_len = 1;
    enum { LIMIT = 5 };
    uint64_t ids[LIMIT] = {0};
    int before = c, full = -1, ran = c, after = c;
    for (int i = 0; before == 0 && i < LIMIT; i++) {
        before = drover_submit(alice, &job, 5000, &ids[i], &err);
    }
    uint64_t id = 0;
    full = before == 0 ? drover_submit(alice, &job, 5000, &id, &err) : -1;
    bool worker = before == 0 && dv_tsec_worker_start(&s, "w1");
    for (int i = 0; worker && ran == 0 && i < LIMIT; i++) {
        drover_result_t *r = NULL;
        ran = drover_wait(alice, ids[i], WAIT_MS, &r, &err);
        ran = ran ? ran : drover_result_ok(r) ? 0 : -1;
        drover_result_destroy(&r);
    }
    for (int i = 0; worker && ran == 0 && after == 0 && i < LIMIT; i++) {
        after = drover_submit(alice, &job, 5000, &id, &err);
    }
    printf("  5 accepted: %s, the 6th: %s; ran: %s; 5 more: %s%s%s\n",
           dv_err_name(before), dv_err_name(full), dv_err_name(ran),
           dv_err_name(after), after ? ": " : "", after ? err.text : "");
    drover_destroy(&alice);
    dv_tsec_down(&s, after != 0);
    DV_CHECK(up);
    DV_CHECK_EQ(c, 0);
    DV_CHECK_EQ(before, 0);
    DV_CHECK_EQ(full, DV_ELIMIT);
    DV_CHECK(worker);
    DV_CHECK_EQ(ran, 0);
    DV_CHECK_EQ(after, 0);
}

static const dv_test_case_t cases[] = {
    {"limits: connections and unfinished jobs per key", test_limits},
    {"spilled jobs give their key's room back when they run",
     test_spilled_room_back},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
