// dv_joblist — the job_list handler (see dv_joblist.c). Internal to
// broker/ (not installed); loop thread only. The handler is a
// client_handler_fn (dv_broker_int.h).
#ifndef DV_JOBLIST_H
#define DV_JOBLIST_H

#include "dv_broker_int.h"

// job_list {state?, queue?, limit?, from?}: jobs by id, newest first, at
// most limit (default 100, at most 10,000) and one page; `next` where a
// page stopped. Finished jobs are the kept results.
client_handler_fn dv_joblist_on_list;

#endif
