// test_blobs — a broker group member's blob store and files channel
// (broker/dv_blobs.h): adopting and placing files as hard links, hashing,
// the garbage collection's rules, and a transfer between two members on
// one loop (want -> get/chunk -> verified, placed, have), including a want
// nobody can serve, then a clean shutdown (uv_loop_close == 0).
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "dv_addr.h"
#include "dv_blobs.h"
#include "dv_file.h"
#include "dv_sha256.h"
#include "dv_test.h"

#define BIG      ((size_t)5 << 20) // 5 chunks and a bit: windows, a tail
#define DEADLINE 10000             // ms: a transfer that hangs fails

typedef struct {
    int blobs;            // on_blob calls
    int haves;            // on_have calls
    uint64_t have_member; // the last one's member
    int hellos;           // on_hello calls
    uint64_t hello_id;    // the last one's member and endpoints
    char hello_client[64], hello_worker[64], hello_http[64];
    int closed; // close callbacks
} events_t;

// A TCP port free a moment ago, below the kernel's ephemeral range
// (dv_addr_free_ports); 0 when none could be had.
static unsigned
free_port(void)
{
    int port = 0;
    return dv_addr_free_ports(&port, 1) == 0 ? (unsigned)port : 0;
}

static void
on_blob(void *arg, const uint8_t sha[DV_SHA256_BYTES])
{
    (void)sha;
    ((events_t *)arg)->blobs++;
}

static void
on_have(void *arg, uint64_t member, const uint8_t sha[DV_SHA256_BYTES])
{
    (void)sha;
    events_t *e = arg;
    e->haves++;
    e->have_member = member;
}

static void
on_hello(void *arg,
         uint64_t member,
         const char *client,
         const char *worker,
         const char *http)
{
    events_t *e = arg;
    e->hellos++;
    e->hello_id = member;
    snprintf(e->hello_client, sizeof e->hello_client, "%s", client);
    snprintf(e->hello_worker, sizeof e->hello_worker, "%s", worker);
    snprintf(e->hello_http, sizeof e->hello_http, "%s", http);
}

static void
on_closed(void *arg)
{
    ((events_t *)arg)->closed++;
}

static uint8_t *
pattern(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n);
    for (size_t i = 0; i < n; i++) {
        p[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
    }
    return p;
}

static ino_t
inode(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_ino : 0;
}

static nlink_t
links(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_nlink : 0;
}

static void
blob_file(const char *raft, const uint8_t *sha, char *out, size_t size)
{
    char hex[DV_SHA256_HEX];
    dv_sha256_hex(sha, hex);
    snprintf(out, size, "%s/blobs/%s", raft, hex);
}

static void
test_store_and_collection(void)
{
    char *tmp = dv_test_tmpdir();
    char raft[512], a[512], b[512], blob[600];
    snprintf(raft, sizeof raft, "%s/raft", tmp);
    snprintf(a, sizeof a, "%s/models/m/1.drvm", tmp);
    snprintf(b, sizeof b, "%s/datasets/d/1.dvds", tmp);
    uv_loop_t loop;
    uv_loop_init(&loop);
    events_t ev = {0};
    dv_blobs_events_t bev = {on_blob, on_have, on_hello, &ev};
    dv_blobs_t *bl = NULL;
    dv_error_t err = {0};
    DV_CHECK_RC(dv_blobs_open(&bl, &loop, raft, "127.0.0.1", 0, 1, &bev, &err),
                0, &err);
    uint8_t *data = pattern(BIG, 1);
    char dir[520];
    snprintf(dir, sizeof dir, "%s/models/m", tmp);
    DV_CHECK_RC(dv_file_mkdirs(dir, 0755, &err), 0, &err);
    DV_CHECK_RC(dv_file_write_atomic(a, data, BIG, &err), 0, &err);
    uint8_t sha[DV_SHA256_BYTES], got[DV_SHA256_BYTES];
    uint64_t size = 0;
    dv_sha256(data, BIG, sha);
    DV_CHECK_RC(dv_blobs_hash_file(NULL, a, got, &size, &err), 0, &err);
    DV_CHECK(memcmp(sha, got, sizeof sha) == 0);
    DV_CHECK_EQ(size, BIG);
    DV_CHECK(!dv_blobs_has(bl, sha));
    DV_CHECK_RC(dv_blobs_adopt(bl, a, sha, &err), 0, &err);
    DV_CHECK(dv_blobs_has(bl, sha));
    blob_file(raft, sha, blob, sizeof blob);
    DV_CHECK_EQ(inode(blob), inode(a));
    struct stat st;
    uint8_t found[DV_SHA256_BYTES];
    dv_blobs_index_t *ix = dv_blobs_index_new(bl);
    DV_CHECK(stat(a, &st) == 0 && dv_blobs_index_find(ix, &st, found, &size));
    DV_CHECK(memcmp(found, sha, sizeof sha) == 0 && size == BIG);
    DV_CHECK(stat(raft, &st) == 0 &&
             !dv_blobs_index_find(ix, &st, found, &size));
    dv_blobs_index_destroy(&ix);
    DV_CHECK(ix == NULL);
    // placed: a link (folders made); placed again over itself: no leftovers
    DV_CHECK_RC(dv_blobs_place(bl, sha, b, 1700000000000000ull, &err), 0, &err);
    DV_CHECK_RC(dv_blobs_place(bl, sha, b, 0, &err), 0, &err);
    DV_CHECK_EQ(inode(b), inode(blob));
    DV_CHECK_EQ(links(blob), 3);
    DV_CHECK_EQ(dv_file_mtime_us(b), 1700000000000000ull);
    // a write over the path is a new inode: the blob keeps its bytes
    DV_CHECK_RC(dv_file_write_atomic(b, "x", 1, &err), 0, &err);
    size_t n = 0;
    uint8_t *back = dv_test_read_file(blob, &n);
    DV_CHECK(back && n == BIG && memcmp(back, data, BIG) == 0);
    free(back);
    uint8_t none[DV_SHA256_BYTES] = {1};
    DV_CHECK_RC(dv_blobs_place(bl, none, b, 0, &err), DV_ENOENT, &err);
    // collection: linked blobs stay; then an entry at or past first_kept
    // keeps it; an offer keeps it; else it goes
    DV_CHECK_EQ(dv_blobs_gc(bl, 100), 0); // no note, but a file links it
    dv_blobs_note(bl, sha, 20);
    DV_CHECK(unlink(a) == 0);
    DV_CHECK_EQ(links(blob), 1);
    DV_CHECK_EQ(dv_blobs_gc(bl, 20), 0);
    dv_blobs_offer(bl, sha, BIG);
    DV_CHECK_EQ(dv_blobs_gc(bl, 21), 0);
    dv_blobs_offer_end(bl, sha);
    DV_CHECK_EQ(dv_blobs_gc(bl, 21), 1);
    DV_CHECK(!dv_blobs_has(bl, sha));
    dv_blobs_close(bl, on_closed, &ev);
    uv_run(&loop, UV_RUN_DEFAULT);
    DV_CHECK_EQ(ev.closed, 1);
    DV_CHECK_EQ(uv_loop_close(&loop), 0);
    free(data);
    dv_test_rmdir(tmp);
    free(tmp);
}

typedef struct {
    dv_blobs_t *a, *b; // the leader (holds the blob), the follower
    const char *want;  // the path b waits for
    events_t *ea;      // a's events (b's have)
    uint64_t t0;       // start (ms)
    bool timed_out;    //
} run_t;

static void
on_tick(uv_timer_t *t)
{
    run_t *r = t->data;
    dv_blobs_tick(r->a);
    dv_blobs_tick(r->b);
    bool done = dv_blobs_n_wants(r->b) <= 1 && access(r->want, F_OK) == 0 &&
                r->ea->haves > 0;
    if (uv_now(t->loop) - r->t0 > DEADLINE) {
        r->timed_out = true;
        done = true;
    }
    if (done) {
        uv_stop(t->loop);
    }
}

static void
test_transfer(void)
{
    char *tmp = dv_test_tmpdir();
    char ra[512], rb[512], src[512], dst[512], lost[512];
    snprintf(ra, sizeof ra, "%s/a/raft", tmp);
    snprintf(rb, sizeof rb, "%s/b/raft", tmp);
    snprintf(src, sizeof src, "%s/a/datasets/d/1.dvds", tmp);
    snprintf(dst, sizeof dst, "%s/b/datasets/d/1.dvds", tmp);
    snprintf(lost, sizeof lost, "%s/b/datasets/e/1.dvds", tmp);
    uv_loop_t loop;
    uv_loop_init(&loop);
    events_t ea = {0}, eb = {0};
    dv_blobs_events_t bea = {on_blob, on_have, on_hello, &ea};
    dv_blobs_events_t beb = {on_blob, on_have, on_hello, &eb};
    dv_blobs_t *a = NULL, *b = NULL;
    dv_error_t err = {0};
    // a on a port the OS picks, b on the one asked for (--raft-files-port)
    unsigned port = free_port();
    char want_ep[64];
    snprintf(want_ep, sizeof want_ep, "tcp://127.0.0.1:%u", port);
    DV_CHECK_RC(dv_blobs_open(&a, &loop, ra, "127.0.0.1", 0, 1, &bea, &err), 0,
                &err);
    DV_CHECK_RC(dv_blobs_open(&b, &loop, rb, "127.0.0.1", port, 2, &beb, &err),
                0, &err);
    DV_CHECK(port != 0 && strcmp(dv_blobs_endpoint(b), want_ep) == 0);
    size_t len = BIG + 12345;
    uint8_t *data = pattern(len, 7);
    uint8_t sha[DV_SHA256_BYTES], missing[DV_SHA256_BYTES];
    dv_sha256(data, len, sha);
    dv_sha256("nobody has this", 15, missing);
    char dir[520];
    snprintf(dir, sizeof dir, "%s/a/datasets/d", tmp);
    DV_CHECK_RC(dv_file_mkdirs(dir, 0755, &err), 0, &err);
    DV_CHECK_RC(dv_file_write_atomic(src, data, len, &err), 0, &err);
    DV_CHECK_RC(dv_blobs_adopt(a, src, sha, &err), 0, &err);
    // b follows a (its hello names its endpoints), wants the blob at dst
    // and one nobody has
    dv_blobs_set_about(b, "tcp://10.0.0.2:7470", "tcp://10.0.0.2:7471", "");
    dv_blobs_follow(b, dv_blobs_endpoint(a));
    dv_blobs_want(b, dst, sha, len, 0);
    dv_blobs_want(b, lost, missing, 4096, 0);
    dv_blobs_want(b, dst, sha, len, 0); // replaces the first wish
    DV_CHECK_EQ(dv_blobs_n_wants(b), 2);
    dv_blobs_offer(a, sha, len); // before any hello: kept for later
    run_t r = {a, b, dst, &ea, uv_now(&loop), false};
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    tick.data = &r;
    uv_timer_start(&tick, on_tick, 10, 10);
    uv_run(&loop, UV_RUN_DEFAULT);
    DV_CHECK(!r.timed_out);
    size_t n = 0;
    uint8_t *back = dv_test_read_file(dst, &n);
    DV_CHECK(back && n == len && memcmp(back, data, len) == 0);
    free(back);
    DV_CHECK(dv_blobs_has(b, sha));
    DV_CHECK_EQ(dv_blobs_n_wants(b), 1); // the one nobody has
    DV_CHECK(access(lost, F_OK) != 0);
    DV_CHECK_GE(eb.blobs, 1);
    DV_CHECK_EQ(ea.have_member, 2);
    DV_CHECK_GE(ea.hellos, 1);
    DV_CHECK_EQ(ea.hello_id, 2);
    DV_CHECK_STR_EQ(ea.hello_client, "tcp://10.0.0.2:7470");
    DV_CHECK_STR_EQ(ea.hello_worker, "tcp://10.0.0.2:7471");
    DV_CHECK_STR_EQ(ea.hello_http, "");
    DV_CHECK_EQ(eb.hellos, 0); // a follows nobody: it says no hello
    dv_blobs_unwant(b, NULL);
    DV_CHECK_EQ(dv_blobs_n_wants(b), 0);
    uv_close((uv_handle_t *)&tick, NULL);
    dv_blobs_close(a, on_closed, &ea);
    dv_blobs_close(b, on_closed, &eb);
    uv_run(&loop, UV_RUN_DEFAULT);
    DV_CHECK_EQ(ea.closed + eb.closed, 2);
    DV_CHECK_EQ(uv_loop_close(&loop), 0);
    free(data);
    dv_test_rmdir(tmp);
    free(tmp);
}

static const dv_test_case_t cases[] = {
    {"store: adopt, place, hash, collect", test_store_and_collection},
    {"transfer: want, fetch, verify, place, have", test_transfer},
    {NULL, NULL},
};

int
main(int argc, char **argv)
{
    return dv_test_main(argc, argv, cases);
}
