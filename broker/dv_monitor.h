// dv_monitor — what an operator watches: the broker's counters and
// histograms, and the three views of them the broker's HTTP endpoint
// serves (--http): Prometheus text at /metrics, the status page's JSON at
// /api/status, and the page itself at / (dv_status_page.c).
//
// Owns: the series that only events can count (jobs submitted and
// finished by queue/kind/state, queue waits, run times, batch rows, store
// commits, refused handshakes), bounded (DV_MAX_METRIC_SERIES: past it
// new label sets count under "_other"). Everything else is read from the
// broker's state when asked (queue depths, oldest waiting job, workers,
// kept results, dead letters, connections, the process).
//
// Called from: dv_jobs_msg.c (job_accept), dv_batching.c (run_starts),
// dv_results.c (send_result), dv_workers_msg.c (infer batches),
// dv_commit.c (after_commit), dv_authorize.c (refused handshakes),
// dv_broker.c (open/close, the HTTP handler). Loop thread only.
#ifndef DV_MONITOR_H
#define DV_MONITOR_H

#include <stddef.h>
#include <stdint.h>

#include "dv_http.h"

typedef struct dv_monitor dv_monitor_t;
struct dv_broker;

// data_dir: the broker's --data (NULL: memory only), for the store size.
dv_monitor_t *dv_monitor_new(const char *data_dir);
void dv_monitor_destroy(dv_monitor_t **self_p);

// Events (NULL-safe on self: a broker without --http still calls them).
void
dv_monitor_submitted(dv_monitor_t *self, const char *queue, const char *kind);
// A job's first attempt went to a worker after wait_s in its queue.
void dv_monitor_started(dv_monitor_t *self, const char *kind, double wait_s);
// A job ended in state ("done", "failed", "expired", "cancelled"); run_s:
// its last attempt's run time (< 0: it never ran); model: infer's, or NULL.
void dv_monitor_finished(dv_monitor_t *self,
                         const char *queue,
                         const char *kind,
                         const char *model,
                         const char *state,
                         double run_s);
void dv_monitor_batch(dv_monitor_t *self, uint32_t rows);
void dv_monitor_commit(dv_monitor_t *self, double seconds, int rc);
void dv_monitor_refused(dv_monitor_t *self, const char *why);

// The HTTP handler (dv_http_fn) for a broker: arg is the dv_broker_t.
void dv_monitor_http(void *arg,
                     const char *path,
                     const char *query,
                     dv_http_reply_t *reply);

// The page at / (dv_status_page.c): self-contained HTML, its script
// polling /api/status.
extern const char dv_status_page_html[];

#endif
