// dv_consumers — listing and forgetting result stream consumers. See
// dv_consumers.h.
#include "dv_consumers.h"

#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "dv_commit.h"
#include "dv_limits.h"
#include "dv_log.h"
#include "dv_mem.h"
#include "dv_msgpack.h"
#include "dv_page.h"
#include "dv_proto.h"
#include "dv_results.h"

static const char *
queue_of(const dv_broker_t *self, const cursor_t *c)
{
    return self->qbytes[c->qidx - 1].name;
}

// A consumer listed, with its queue's name beside it (what it sorts by).
typedef struct {
    const char *queue;
    const cursor_t *c;
} entry_t;

// Order: queue, then consumer (byte order).
static int
order(const entry_t *e, const char *queue, const char *consumer)
{
    int q = strcmp(e->queue, queue);
    return q ? q : strcmp(e->c->consumer, consumer);
}

static int
cmp_entries(const void *a, const void *b)
{
    const entry_t *eb = b;
    return order(a, eb->queue, eb->c->consumer);
}

// The request's `from` ([queue, consumer]) into queue and consumer; absent:
// "" and "" (before every consumer). Returns 0 or DV_EFORMAT.
static int
page_from(const dv_msg_t *m, char *queue, char *consumer, dv_error_t *err)
{
    queue[0] = consumer[0] = '\0';
    const msgpack_object *f = dv_msg_get(m, "from");
    if (!f) {
        return 0;
    }
    const msgpack_object *a =
        f->type == MSGPACK_OBJECT_ARRAY && f->via.array.size == 2
            ? f->via.array.ptr
            : NULL;
    for (int i = 0; a && i < 2; i++) {
        if (a[i].type != MSGPACK_OBJECT_STR ||
            a[i].via.str.size > DV_MAX_WIRE_NAME) {
            a = NULL;
        }
    }
    if (!a) {
        return dv_errorf(err, DV_EFORMAT,
                         "'from' must be [queue, consumer], as a previous "
                         "page's next");
    }
    memcpy(queue, dv_msgpack_str_ptr(&a[0]), a[0].via.str.size);
    queue[a[0].via.str.size] = '\0';
    memcpy(consumer, dv_msgpack_str_ptr(&a[1]), a[1].via.str.size);
    consumer[a[1].via.str.size] = '\0';
    return 0;
}

static void
write_item(const dv_broker_t *self, dv_msgw_t *w, const cursor_t *c)
{
    bool followed = c->route_len > 0;
    const qbytes_t *q = &self->qbytes[c->qidx - 1];
    dv_msgw_v_map(w, 5 + (followed ? 2 : 0) + (c->owner[0] ? 1 : 0));
    dv_msgw_v_str(w, "queue");
    dv_msgw_v_str(w, q->name);
    dv_msgw_v_str(w, "consumer");
    dv_msgw_v_str(w, c->consumer);
    dv_msgw_v_str(w, "acked");
    dv_msgw_v_uint(w, c->acked);
    dv_msgw_v_str(w, "last");
    dv_msgw_v_uint(w, q->next_seq ? q->next_seq - 1 : 0);
    dv_msgw_v_str(w, "followed");
    dv_msgw_v_bool(w, followed);
    if (followed) {
        dv_msgw_v_str(w, "window");
        dv_msgw_v_uint(w, c->window);
        dv_msgw_v_str(w, "in_flight");
        dv_msgw_v_uint(w, c->inflight);
    }
    if (c->owner[0]) {
        dv_msgw_v_str(w, "owner");
        dv_msgw_v_str(w, c->owner);
    }
}

int
dv_consumers_on_list(dv_broker_t *self,
                     const void *route,
                     size_t route_len,
                     const dv_msg_t *m,
                     uint64_t rid,
                     dv_error_t *err)
{
    char queue[DV_MAX_WIRE_NAME + 1] = "";
    char fq[DV_MAX_WIRE_NAME + 1], fc[DV_MAX_WIRE_NAME + 1];
    int rc = 0;
    if (dv_msg_has(m, "queue")) {
        rc = dv_msg_str(m, "queue", queue, sizeof queue, err);
    }
    if (rc == 0) {
        rc = page_from(m, fq, fc, err);
    }
    if (rc) {
        return rc;
    }
    // At most DV_MAX_CONSUMERS (10,000) made by follows, sorted per page:
    // about a millisecond; consumers come and go between pages, so a
    // position in a stored order would not hold.
    entry_t *sel = dv_malloc((self->n_cursors + 1) * sizeof *sel);
    size_t n = 0;
    for (size_t i = 0; i < self->n_cursors; i++) {
        const cursor_t *c = &self->cursors[i];
        const char *q = queue_of(self, c);
        if (!queue[0] || strcmp(q, queue) == 0) {
            sel[n++] = (entry_t){q, c};
        }
    }
    qsort(sel, n, sizeof *sel, cmp_entries);
    dv_page_t *page = dv_page_new(DV_LIST_PAGE_BYTES);
    const entry_t *next = NULL;
    for (size_t i = 0; i < n; i++) {
        if (order(&sel[i], fq, fc) < 0) {
            continue; // before from
        }
        write_item(self, dv_page_item(page), sel[i].c);
        if (!dv_page_keep(page)) {
            next = &sel[i];
            break;
        }
    }
    dv_msgw_t *w = dv_msgw_new(DV_MSG_CONSUMERS, rid);
    dv_msgw_uint(w, "total", n);
    dv_page_put(page, w, "consumers");
    dv_page_destroy(&page);
    if (next) {
        dv_msgw_key(w, "next");
        dv_msgw_v_array(w, 2);
        dv_msgw_v_str(w, next->queue);
        dv_msgw_v_str(w, next->c->consumer);
    }
    free(sel);
    dv_broker_client_reply(self, route, route_len, w);
    return 0;
}

int
dv_consumers_on_forget(dv_broker_t *self,
                       const void *route,
                       size_t route_len,
                       const dv_msg_t *m,
                       uint64_t rid,
                       dv_error_t *err)
{
    char queue[DV_MAX_WIRE_NAME + 1], consumer[DV_MAX_WIRE_NAME + 1];
    int rc = dv_results_stream_names(m, queue, consumer, err);
    if (rc) {
        return rc;
    }
    const cursor_t *named = dv_results_cursor_named(self, queue, consumer);
    if (!named) {
        return dv_errorf(err, DV_ENOENT,
                         "consumer_forget: no consumer '%s' on queue '%s'",
                         consumer, queue);
    }
    cursor_t *c = &self->cursors[named - self->cursors];
    uint64_t acked = c->acked;
    bool followed = c->route_len > 0;
    dv_results_cursor_remove(self, c);
    dv_log(DV_LOG_INFO, "broker",
           "consumer '%s' on queue '%s' forgotten at seq %llu%s", consumer,
           queue, (unsigned long long)acked,
           followed ? " (its follower gets no more results)" : "");
    dv_msgw_t *w = dv_msgw_new(DV_MSG_OK, rid);
    dv_msgw_str(w, "queue", queue);
    dv_msgw_str(w, "consumer", consumer);
    dv_msgw_uint(w, "acked", acked);
    dv_commit_reply_after(self, route, route_len, rid, w);
    return 0;
}
