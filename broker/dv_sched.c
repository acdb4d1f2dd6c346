// dv_sched — scheduling bookkeeping for the broker (rules in dv_sched.h).
//
// Model: every job is a node in exactly one doubly linked list: its
// queue's (waiting, FIFO), its worker's (running) or the held jobs' (waiting
// out a retry's backoff). Jobs are found by id
// through an open-addressing hash table (linear probing, tombstones,
// power-of-two size, grown at 50% load), so finish/cancel/remove are O(1)
// per job. Workers and queues are small arrays scanned linearly: a broker has
// tens to hundreds of each, and a scan of that size costs less than keeping
// an index up to date on every dispatch.
#include "dv_sched.h"

#include <stdlib.h>
#include <string.h>

#include "dv_hash.h"
#include "dv_limits.h"
#include "dv_mem.h"
#include "dv_names.h"
#include "dv_spare.h"

typedef struct job job_t;
struct job {
    uint64_t id;           // job id (never 0)
    size_t queue;          // index into queues
    const char *model;     // model key, "" for none (in key)
    uint64_t since;        // clock when it (last) joined its queue
    uint32_t attempts;     // dispatches so far
    uint32_t max_attempts; // fail after this many lost runs
    int32_t priority;      // higher runs first
    bool held;             // waiting to be released (retry backoff)
    bool heavy;            // a training job (limited per worker)
    bool rider;            // running in another job's batch: no slot
    uint32_t key_bytes;    // strlen(key) + 1: freeing needs no look at key
    size_t worker;         // index into workers while running, else SIZE_MAX
    job_t *prev, *next;    // neighbours in the queue or worker list
    job_t *lprev, *lnext;  // neighbours among its level's light jobs
    char key[];            // the model key's bytes: one allocation a job
};

typedef struct {
    job_t *head, *tail; // FIFO of jobs
    size_t n;           // length
} list_t;

// The jobs of one priority within a queue, FIFO. A level exists only while
// it holds jobs, so picking scans just the priorities in use.
typedef struct {
    int32_t priority;
    list_t jobs;
    job_t *light, *light_tail; // its jobs that are not heavy, in the same
                               //   order: a light job passes heavy ones
                               //   that must wait (first_light) at once
} level_t;

typedef struct {
    char *name;      // queue name
    uint64_t hash;   // of its name (dv_hash_bytes)
    level_t *levels; // waiting jobs by priority, highest first
    size_t n_levels; // levels in use
    size_t cap_levels;
    size_t waiting;      // jobs in its levels
    size_t running;      // its jobs on workers
    size_t held;         // its jobs held for a retry
    size_t rprev, rnext; // neighbours in the ring of queues with waiting
    bool in_ring;        //   jobs (while waiting > 0)
    size_t *servers;     // workers that name it among theirs (indices;
    size_t n_servers;    //   index_rebuild), those serving every queue
    size_t cap_servers;  //   apart (dv_sched.wild)
} queue_t;

typedef struct {
    uint64_t id;            // broker's handle for the connection
    uint64_t seq;           // registration order, breaks ties
    uint32_t capacity;      // slots
    list_t running;         // jobs on it
    char **models;          // held model keys
    size_t n_models;        // their count
    bool draining;          // takes no new jobs
    char **queues;          // queues it serves (none: all)
    uint64_t *qhashes;      //   and their names' hashes (compared first)
    size_t n_queues;        //
    uint32_t heavy_cap;     // heavy jobs at once (0: no limit)
    uint32_t heavy_running; // heavy jobs on it
    uint32_t riders;        // running jobs that take no slot (batched)
    bool is_free;           // not draining, a slot free (counted: n_free)
} worker_t;

// Slots a worker's running jobs take (riders take none).
static size_t
slots_used(const worker_t *w)
{
    return w->running.n - w->riders;
}

static void note_free(dv_sched_t *self, worker_t *w);

#define TOMBSTONE ((job_t *)(uintptr_t)1)

struct dv_sched {
    job_t **table;      // hash of job id -> job; NULL empty, TOMBSTONE gone
    size_t table_size;  // power of two
    size_t table_used;  // live + tombstones
    size_t n_jobs;      // live jobs
    queue_t *queues;    // named queues
    size_t n_queues;    // their count
    size_t cap_queues;  // room in queues (grows by doubling)
    size_t ring;        // the queue the next round starts at, in the ring
    size_t n_ring;      //   of queues with waiting jobs (SIZE_MAX: none)
    worker_t *workers;  // known workers
    size_t n_workers;   // their count
    uint64_t next_seq;  // registration counter
    size_t n_queued;    // jobs in queues
    size_t n_running;   // jobs on workers
    list_t held;        // jobs held for a retry (in no queue, on no worker)
    uint64_t now;       // the broker's clock (dv_sched_tick)
    uint64_t aging_ms;  // waiting this long is worth one priority level
    dv_spare_t *spare;  // freed job blocks (DV_SPARE_BYTES)
    dv_names_t *qnames; // queue name -> index in queues
    // Who may take a queue's jobs, so that a dispatch weighs only them and
    // not every worker (3,000 idle workers on other queues cost the broker
    // half its rate): the workers serving every queue, and each queue's
    // servers. Rebuilt before the next dispatch after a worker comes,
    // goes or names other queues, or a queue is made (index_stale).
    size_t *wild;     // workers serving every queue (indices)
    size_t n_wild;    //
    size_t cap_wild;  //
    bool index_stale; //
    size_t n_free;    // workers with is_free: none, and nothing can go
};

// ------------------------------------------------------------- job table

static size_t
slot_of(uint64_t id, size_t size)
{
    return dv_hash_slot(id, size);
}

static job_t **
find_slot(const dv_sched_t *self, uint64_t id)
{
    size_t mask = self->table_size - 1;
    for (size_t i = slot_of(id, self->table_size);; i = (i + 1) & mask) {
        job_t *j = self->table[i];
        if (j == NULL || (j != TOMBSTONE && j->id == id)) {
            return &self->table[i];
        }
    }
}

// The live job with id, or NULL (find_slot never stops on a tombstone).
static job_t *
find_job(const dv_sched_t *self, uint64_t id)
{
    return *find_slot(self, id);
}

void
dv_sched_prefetch(const dv_sched_t *self, uint64_t id, int round)
{
    job_t *const *slot = &self->table[slot_of(id, self->table_size)];
    if (round == 0) {
        __builtin_prefetch(slot);
    } else if (*slot && *slot != TOMBSTONE) { // the entry, and its neighbours'
        __builtin_prefetch(*slot);            // links (list_unlink)
        __builtin_prefetch((const char *)*slot + 64);
    }
}

static void table_insert(dv_sched_t *self, job_t *job);

static void
grow(dv_sched_t *self)
{
    job_t **old = self->table;
    size_t old_size = self->table_size;
    // Mostly tombstones (jobs come and go): rehash at the same size, so a
    // long-running broker's table tracks live jobs, not all jobs ever seen.
    self->table_size =
        (self->n_jobs + 1) * 4 > old_size ? old_size * 2 : old_size;
    self->table = dv_calloc(self->table_size, sizeof(job_t *));
    self->table_used = 0;
    for (size_t i = 0; i < old_size; i++) {
        if (old[i] && old[i] != TOMBSTONE) {
            table_insert(self, old[i]);
        }
    }
    free(old);
}

static void
table_insert(dv_sched_t *self, job_t *job)
{
    if (2 * (self->table_used + 1) > self->table_size) {
        grow(self);
    }
    size_t mask = self->table_size - 1;
    size_t i = slot_of(job->id, self->table_size);
    while (self->table[i] && self->table[i] != TOMBSTONE) {
        i = (i + 1) & mask;
    }
    if (self->table[i] == NULL) {
        self->table_used++;
    }
    self->table[i] = job;
}

static void
table_remove(dv_sched_t *self, uint64_t id)
{
    job_t **slot = find_slot(self, id);
    dv_assert(*slot != NULL);
    *slot = TOMBSTONE;
}

// ------------------------------------------------------------------ lists

static void
list_push_back(list_t *l, job_t *j)
{
    j->prev = l->tail;
    j->next = NULL;
    if (l->tail) {
        l->tail->next = j;
    } else {
        l->head = j;
    }
    l->tail = j;
    l->n++;
}

static void
list_push_front(list_t *l, job_t *j)
{
    j->prev = NULL;
    j->next = l->head;
    if (l->head) {
        l->head->prev = j;
    } else {
        l->tail = j;
    }
    l->head = j;
    l->n++;
}

static void
list_unlink(list_t *l, job_t *j)
{
    if (j->prev) {
        j->prev->next = j->next;
    } else {
        l->head = j->next;
    }
    if (j->next) {
        j->next->prev = j->prev;
    } else {
        l->tail = j->prev;
    }
    j->prev = j->next = NULL;
    l->n--;
}

static void
free_job(dv_sched_t *self, job_t *j)
{
    dv_spare_put(self->spare, j, sizeof *j + j->key_bytes);
}

// ------------------------------------------------------- priority levels

// The level of priority in q, created (in order) when create is set; NULL
// when absent and not created.
static level_t *
level_of(queue_t *q, int32_t priority, bool create)
{
    size_t lo = 0, hi = q->n_levels;
    while (lo < hi) { // highest priority first
        size_t mid = (lo + hi) / 2;
        if (q->levels[mid].priority == priority) {
            return &q->levels[mid];
        }
        if (q->levels[mid].priority > priority) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (!create) {
        return NULL;
    }
    if (q->n_levels == q->cap_levels) {
        q->cap_levels = q->cap_levels ? q->cap_levels * 2 : 4;
        q->levels = dv_realloc(q->levels, q->cap_levels * sizeof(level_t));
    }
    memmove(&q->levels[lo + 1], &q->levels[lo],
            (q->n_levels - lo) * sizeof(level_t));
    memset(&q->levels[lo], 0, sizeof(level_t));
    q->levels[lo].priority = priority;
    q->n_levels++;
    return &q->levels[lo];
}

// ------------------------------------------------------- queue ring
//
// The queues with waiting jobs, in a ring: dispatch goes round it, so a
// broker with thousands of queues (DV_MAX_QUEUES) and a few busy ones looks
// at the busy ones only (a scan of every queue per dispatch took 4,000
// queues, one busy, from 91k to 35k echo jobs/s). A queue joins just
// before the round's start, so it waits for one round at most.

static void
ring_add(dv_sched_t *self, size_t qi)
{
    queue_t *q = &self->queues[qi];
    if (q->in_ring) {
        return;
    }
    if (self->n_ring == 0) {
        q->rprev = q->rnext = qi;
        self->ring = qi;
    } else {
        size_t next = self->ring, prev = self->queues[next].rprev;
        q->rprev = prev;
        q->rnext = next;
        self->queues[prev].rnext = qi;
        self->queues[next].rprev = qi;
    }
    q->in_ring = true;
    self->n_ring++;
}

static void
ring_remove(dv_sched_t *self, size_t qi)
{
    queue_t *q = &self->queues[qi];
    if (!q->in_ring) {
        return;
    }
    if (self->n_ring == 1) {
        self->ring = SIZE_MAX;
    } else {
        self->queues[q->rprev].rnext = q->rnext;
        self->queues[q->rnext].rprev = q->rprev;
        if (self->ring == qi) {
            self->ring = q->rnext;
        }
    }
    q->in_ring = false;
    self->n_ring--;
}

// A level's light jobs, kept in the order of its list (links lprev,
// lnext): at the back or the front, as the job joins the level.
static void
light_add(level_t *l, job_t *j, bool front)
{
    if (front) {
        j->lprev = NULL;
        j->lnext = l->light;
        if (l->light) {
            l->light->lprev = j;
        } else {
            l->light_tail = j;
        }
        l->light = j;
        return;
    }
    j->lnext = NULL;
    j->lprev = l->light_tail;
    if (l->light_tail) {
        l->light_tail->lnext = j;
    } else {
        l->light = j;
    }
    l->light_tail = j;
}

static void
light_unlink(level_t *l, job_t *j)
{
    if (j->lprev) {
        j->lprev->lnext = j->lnext;
    } else {
        l->light = j->lnext;
    }
    if (j->lnext) {
        j->lnext->lprev = j->lprev;
    } else {
        l->light_tail = j->lprev;
    }
    j->lprev = j->lnext = NULL;
}

// Put a waiting job into its queue: at the back of its level, or at the
// front (a job given back by a lost worker keeps its place).
static void
enqueue(dv_sched_t *self, job_t *j, bool front)
{
    queue_t *q = &self->queues[j->queue];
    level_t *l = level_of(q, j->priority, true);
    if (front) {
        list_push_front(&l->jobs, j);
    } else {
        j->since = self->now;
        list_push_back(&l->jobs, j);
    }
    if (!j->heavy) {
        light_add(l, j, front);
    }
    if (q->waiting++ == 0) {
        ring_add(self, j->queue);
    }
    self->n_queued++;
}

// Take a waiting job out of its queue (dropping its level when empty).
static void
dequeue(dv_sched_t *self, job_t *j)
{
    queue_t *q = &self->queues[j->queue];
    level_t *l = level_of(q, j->priority, false);
    dv_assert(l != NULL);
    list_unlink(&l->jobs, j);
    if (!j->heavy) {
        light_unlink(l, j);
    }
    if (l->jobs.n == 0) {
        size_t i = (size_t)(l - q->levels);
        memmove(l, l + 1, (q->n_levels - i - 1) * sizeof(level_t));
        q->n_levels--;
    }
    if (--q->waiting == 0) {
        ring_remove(self, j->queue);
    }
    self->n_queued--;
}

// The job q serves next: the head of the level whose head scores highest,
// score = priority + waited / aging_ms (so a low priority job overtakes
// higher ones once it has waited long enough); ties go to the higher
// priority. Without aging, strictly the highest priority's head.
static job_t *
queue_head(const dv_sched_t *self, const queue_t *q)
{
    if (q->n_levels == 0) {
        return NULL;
    }
    if (self->aging_ms == 0) {
        return q->levels[0].jobs.head;
    }
    job_t *best = NULL;
    long double best_score = 0;
    for (size_t i = 0; i < q->n_levels; i++) {
        job_t *h = q->levels[i].jobs.head;
        uint64_t waited = self->now > h->since ? self->now - h->since : 0;
        long double score =
            (long double)h->priority + (long double)waited / self->aging_ms;
        if (!best || score > best_score) {
            best = h;
            best_score = score;
        }
    }
    return best;
}

// --------------------------------------------------------------- sched

dv_sched_t *
dv_sched_new(void)
{
    dv_sched_t *self = dv_calloc(1, sizeof *self);
    self->table_size = 64;
    self->table = dv_calloc(self->table_size, sizeof(job_t *));
    self->spare = dv_spare_new(DV_SPARE_MAX_BLOCK, DV_SPARE_BYTES);
    self->qnames = dv_names_new();
    self->ring = SIZE_MAX;
    return self;
}

static void
free_models(worker_t *w)
{
    for (size_t m = 0; m < w->n_models; m++) {
        free(w->models[m]);
    }
    free(w->models);
    w->models = NULL;
    w->n_models = 0;
}

static void
free_queues(worker_t *w)
{
    for (size_t q = 0; q < w->n_queues; q++) {
        free(w->queues[q]);
    }
    free(w->queues);
    free(w->qhashes);
    w->queues = NULL;
    w->qhashes = NULL;
    w->n_queues = 0;
}

static uint64_t
name_hash(const char *name)
{
    return dv_hash_bytes(name, strlen(name), DV_HASH_BYTES_INIT);
}

// Whether w serves queue q: a dispatch asks it of every free worker, so
// the names' hashes are compared before the names.
static inline bool
serves(const worker_t *w, const queue_t *q)
{
    if (w->n_queues == 0) {
        return true;
    }
    for (size_t i = 0; i < w->n_queues; i++) {
        if (w->qhashes[i] == q->hash && strcmp(w->queues[i], q->name) == 0) {
            return true;
        }
    }
    return false;
}

void
dv_sched_destroy(dv_sched_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    dv_sched_t *self = *self_p;
    for (size_t i = 0; i < self->table_size; i++) {
        if (self->table[i] && self->table[i] != TOMBSTONE) {
            free_job(self, self->table[i]);
        }
    }
    free(self->table);
    dv_spare_destroy(&self->spare);
    dv_names_destroy(&self->qnames);
    for (size_t q = 0; q < self->n_queues; q++) {
        free(self->queues[q].name);
        free(self->queues[q].levels);
        free(self->queues[q].servers);
    }
    free(self->wild);
    free(self->queues);
    for (size_t w = 0; w < self->n_workers; w++) {
        free_models(&self->workers[w]);
        free_queues(&self->workers[w]);
    }
    free(self->workers);
    free(self);
    *self_p = NULL;
}

static size_t
queue_index(dv_sched_t *self, const char *name)
{
    size_t found = dv_names_find(self->qnames, name);
    if (found != SIZE_MAX) {
        return found;
    }
    if (self->n_queues == self->cap_queues) { // doubling, not one at a time
        self->cap_queues = self->cap_queues ? 2 * self->cap_queues : 16;
        self->queues =
            dv_realloc(self->queues, self->cap_queues * sizeof(queue_t));
    }
    queue_t *q = &self->queues[self->n_queues];
    memset(q, 0, sizeof *q);
    q->name = dv_strdup(name);
    q->hash = name_hash(name);
    dv_names_add(self->qnames, name, self->n_queues);
    self->index_stale = true; // workers may name it already
    return self->n_queues++;
}

int
dv_sched_submit(dv_sched_t *self,
                uint64_t job,
                const char *queue,
                const char *model,
                uint32_t max_attempts)
{
    return dv_sched_submit_prio(self, job, queue, model, max_attempts, 0);
}

int
dv_sched_submit_prio(dv_sched_t *self,
                     uint64_t job,
                     const char *queue,
                     const char *model,
                     uint32_t max_attempts,
                     int32_t priority)
{
    if (job == 0 || max_attempts == 0 || find_job(self, job)) {
        return DV_EINVAL;
    }
    size_t klen = strlen(model) + 1;
    job_t *j = dv_spare_get(self->spare, sizeof *j + klen); // never NULL
    memset(j, 0, sizeof *j);
    memcpy(j->key, model, klen);
    j->key_bytes = (uint32_t)klen;
    j->id = job;
    j->queue = queue_index(self, queue);
    j->model = j->key;
    j->max_attempts = max_attempts;
    j->priority = priority;
    j->worker = SIZE_MAX;
    table_insert(self, j);
    enqueue(self, j, false);
    self->n_jobs++;
    return 0;
}

void
dv_sched_tick(dv_sched_t *self, uint64_t now_ms)
{
    if (now_ms > self->now) {
        self->now = now_ms;
    }
}

void
dv_sched_set_aging(dv_sched_t *self, uint64_t aging_ms)
{
    self->aging_ms = aging_ms;
}

static worker_t *
find_worker(const dv_sched_t *self, uint64_t id, size_t *index)
{
    for (size_t w = 0; w < self->n_workers; w++) {
        if (self->workers[w].id == id) {
            if (index) {
                *index = w;
            }
            return &self->workers[w];
        }
    }
    return NULL;
}

int
dv_sched_worker_add(dv_sched_t *self, uint64_t worker, uint32_t capacity)
{
    if (capacity == 0) {
        return DV_EINVAL;
    }
    worker_t *w = find_worker(self, worker, NULL);
    if (w) {
        w->capacity = capacity; // re-register: running jobs stay
        w->draining = false;
        note_free(self, w);
        return 0;
    }
    self->workers =
        dv_realloc(self->workers, (self->n_workers + 1) * sizeof(worker_t));
    w = &self->workers[self->n_workers++];
    memset(w, 0, sizeof *w);
    w->id = worker;
    w->capacity = capacity;
    w->seq = self->next_seq++;
    note_free(self, w);
    self->index_stale = true;
    return 0;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void
dv_sched_worker_models(dv_sched_t *self,
                       uint64_t worker,
                       const char *const *models,
                       size_t n)
{
    worker_t *w = find_worker(self, worker, NULL);
    if (!w) {
        return;
    }
    free_models(w);
    w->models = dv_malloc((n ? n : 1) * sizeof(char *));
    for (size_t m = 0; m < n; m++) {
        w->models[m] = dv_strdup(models[m]);
    }
    w->n_models = n;
    // Sorted: holds() is a binary search (every dispatch asks it of every
    // free worker, and a worker may hold 4,096 keys).
    qsort(w->models, n, sizeof *w->models, cmp_str);
}

void
dv_sched_worker_queues(dv_sched_t *self,
                       uint64_t worker,
                       const char *const *queues,
                       size_t n)
{
    worker_t *w = find_worker(self, worker, NULL);
    if (!w) {
        return;
    }
    free_queues(w);
    w->queues = dv_malloc((n ? n : 1) * sizeof(char *));
    w->qhashes = dv_malloc((n ? n : 1) * sizeof *w->qhashes);
    for (size_t q = 0; q < n; q++) {
        w->queues[q] = dv_strdup(queues[q]);
        w->qhashes[q] = name_hash(queues[q]);
    }
    w->n_queues = n;
    self->index_stale = true;
}

// Remove worker; with refund its running jobs get their attempt back (see
// dv_sched_worker_evict).
static void
worker_remove(dv_sched_t *self,
              uint64_t worker,
              dv_sched_lost_t *lost,
              size_t *n_lost,
              bool refund)
{
    size_t index;
    *n_lost = 0;
    worker_t *w = find_worker(self, worker, &index);
    if (!w) {
        return;
    }
    // Newest first, each pushed to the front of its queue: the jobs end up
    // in their original order ahead of everything that waited less.
    while (w->running.tail) {
        job_t *j = w->running.tail;
        list_unlink(&w->running, j);
        w->riders -= j->rider;
        j->rider = false;
        self->n_running--;
        self->queues[j->queue].running--;
        if (refund) {
            j->max_attempts++; // attempt numbers stay unique: one more run
        }
        bool failed = j->attempts >= j->max_attempts;
        if (lost) {
            lost[*n_lost] = (dv_sched_lost_t){j->id, failed, j->attempts};
        }
        (*n_lost)++;
        if (failed) {
            table_remove(self, j->id);
            self->n_jobs--;
            free_job(self, j);
        } else {
            j->worker = SIZE_MAX;
            enqueue(self, j, true);
        }
    }
    free_models(w);
    free_queues(w);
    self->n_free -= w->is_free;
    self->index_stale = true;
    // Keep indices of running jobs valid: move the last worker into the gap
    // and repoint its jobs.
    size_t last = self->n_workers - 1;
    if (index != last) {
        self->workers[index] = self->workers[last];
        for (job_t *j = self->workers[index].running.head; j; j = j->next) {
            j->worker = index;
        }
    }
    self->n_workers--;
}

void
dv_sched_worker_remove(dv_sched_t *self,
                       uint64_t worker,
                       dv_sched_lost_t *lost,
                       size_t *n_lost)
{
    worker_remove(self, worker, lost, n_lost, false);
}

void
dv_sched_worker_evict(dv_sched_t *self,
                      uint64_t worker,
                      dv_sched_lost_t *lost,
                      size_t *n_lost)
{
    worker_remove(self, worker, lost, n_lost, true);
}

// Whether w holds model (its keys are sorted: dv_sched_worker_models).
static bool
holds(const worker_t *w, const char *model)
{
    size_t lo = 0, hi = w->n_models;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(w->models[mid], model);
        if (c == 0) {
            return true;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return false;
}

// True when a is a better choice than b for a job needing a model: one
// that holds it (ha, hb: whether each does; both false for a job needing
// none), then the least loaded.
static bool
better(const worker_t *a, bool ha, const worker_t *b, bool hb)
{
    if (!b) {
        return true;
    }
    if (ha != hb) {
        return ha;
    }
    // Compare running/capacity without division.
    uint64_t la = (uint64_t)slots_used(a) * b->capacity;
    uint64_t lb = (uint64_t)slots_used(b) * a->capacity;
    if (la != lb) {
        return la < lb;
    }
    if (slots_used(a) != slots_used(b)) {
        return slots_used(a) < slots_used(b);
    }
    return a->seq < b->seq;
}

// ------------------------------------------------- who serves a queue

// w's is_free after a change of its jobs, capacity or draining.
static void
note_free(dv_sched_t *self, worker_t *w)
{
    bool f = !w->draining && slots_used(w) < w->capacity;
    if (f != w->is_free) {
        w->is_free = f;
        self->n_free += f ? 1 : (size_t)-1;
    }
}

static void
push_index(size_t **a, size_t *n, size_t *cap, size_t v)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 4;
        *a = dv_realloc(*a, *cap * sizeof **a);
    }
    (*a)[(*n)++] = v;
}

// Each queue's servers and the workers serving every queue, from the
// workers' lists (a queue not made yet gets its servers when it is: a
// made queue marks the index stale). A name listed twice counts once.
static void
index_rebuild(dv_sched_t *self)
{
    self->n_wild = 0;
    for (size_t q = 0; q < self->n_queues; q++) {
        self->queues[q].n_servers = 0;
    }
    for (size_t w = 0; w < self->n_workers; w++) {
        const worker_t *wk = &self->workers[w];
        if (wk->n_queues == 0) {
            push_index(&self->wild, &self->n_wild, &self->cap_wild, w);
        }
        for (size_t i = 0; i < wk->n_queues; i++) {
            size_t q = dv_names_find(self->qnames, wk->queues[i]);
            queue_t *qu = q == SIZE_MAX ? NULL : &self->queues[q];
            if (qu &&
                (qu->n_servers == 0 || qu->servers[qu->n_servers - 1] != w)) {
                push_index(&qu->servers, &qu->n_servers, &qu->cap_servers, w);
            }
        }
    }
    self->index_stale = false;
}

#ifndef NDEBUG
// Debug builds (the ASan suite) check the index and the free count against
// the workers themselves at every dispatch.
static void
index_verify(const dv_sched_t *self)
{
    size_t free_now = 0, wild = 0;
    for (size_t w = 0; w < self->n_workers; w++) {
        const worker_t *wk = &self->workers[w];
        bool f = !wk->draining && slots_used(wk) < wk->capacity;
        dv_assert(f == wk->is_free);
        free_now += f;
        wild += wk->n_queues == 0;
    }
    dv_assert(free_now == self->n_free);
    dv_assert(wild == self->n_wild);
    for (size_t k = 0; k < self->n_wild; k++) {
        dv_assert(self->workers[self->wild[k]].n_queues == 0);
    }
    for (size_t q = 0; q < self->n_queues; q++) {
        const queue_t *qu = &self->queues[q];
        size_t expect = 0;
        for (size_t w = 0; w < self->n_workers; w++) {
            const worker_t *wk = &self->workers[w];
            if (wk->n_queues == 0 || !serves(wk, qu)) {
                continue;
            }
            expect++;
            bool listed = false;
            for (size_t k = 0; k < qu->n_servers && !listed; k++) {
                listed = qu->servers[k] == w;
            }
            dv_assert(listed);
        }
        dv_assert(expect == qu->n_servers);
    }
}
#endif

// The best free worker for job j of queue q (NULL: none can take it);
// *any_free tells whether any worker has a free slot at all.
static worker_t *
pick_worker(
    dv_sched_t *self, size_t q, const job_t *j, bool *any_free, size_t *index)
{
    worker_t *best = NULL;
    bool best_holds = false;
    *any_free = self->n_free > 0;
    if (!*any_free) {
        return NULL;
    }
    if (self->index_stale) {
        index_rebuild(self);
    }
    const queue_t *qu = &self->queues[q];
    size_t n = self->n_wild + qu->n_servers;
    for (size_t k = 0; k < n; k++) {
        size_t w =
            k < self->n_wild ? self->wild[k] : qu->servers[k - self->n_wild];
        worker_t *cand = &self->workers[w];
        if (!cand->is_free || (j->heavy && cand->heavy_cap &&
                               cand->heavy_running >= cand->heavy_cap)) {
            continue;
        }
        // Whether it holds the model, asked once per candidate (and not
        // at all once the best holds it and this one is not less loaded).
        bool h = *j->model && (!best_holds || better(cand, true, best, true))
                     ? holds(cand, j->model)
                     : false;
        if (better(cand, h, best, best_holds)) {
            best = cand;
            best_holds = h;
            *index = w;
        }
    }
    return best;
}

// The first waiting job of q that is not heavy, highest priority first.
static job_t *
first_light(const queue_t *q)
{
    for (size_t l = 0; l < q->n_levels; l++) {
        if (q->levels[l].light) {
            return q->levels[l].light;
        }
    }
    return NULL;
}

bool
dv_sched_next(dv_sched_t *self,
              uint64_t *job,
              uint64_t *worker,
              uint32_t *attempt)
{
    if (self->n_queued == 0) {
        return false;
    }
#ifndef NDEBUG
    if (self->index_stale) {
        index_rebuild(self);
    }
    index_verify(self);
#endif
    size_t q = self->ring;
    for (size_t k = 0, n = self->n_ring; k < n;
         k++, q = self->queues[q].rnext) {
        job_t *j = queue_head(self, &self->queues[q]);
        if (!j) {
            continue;
        }
        bool any_free = false;
        size_t best_index = 0;
        worker_t *best = pick_worker(self, q, j, &any_free, &best_index);
        if (!any_free) {
            return false; // no free slot anywhere: nothing can go
        }
        if (!best && j->heavy) {
            // Heavy jobs are at their cap: the first light job of this
            // queue (by priority, then FIFO) may go instead, so training
            // never holds inference up behind it.
            j = first_light(&self->queues[q]);
            best = j ? pick_worker(self, q, j, &any_free, &best_index) : NULL;
        }
        if (!best) {
            continue; // nobody free serves this queue: try the next
        }
        size_t after = self->queues[q].rnext; // the next round starts there
        dequeue(self, j);   // q may leave the ring (after stays in it)
        if (self->n_ring) { // else q was the last: the ring is empty
            self->ring = after;
        }
        j->attempts++;
        j->worker = best_index;
        best->heavy_running += j->heavy;
        list_push_back(&best->running, j);
        note_free(self, best);
        self->n_running++;
        self->queues[q].running++;
        *job = j->id;
        *worker = best->id;
        *attempt = j->attempts;
        return true;
    }
    return false;
}

size_t
dv_sched_ride(dv_sched_t *self,
              uint64_t lead,
              dv_sched_fits_fn *fits,
              void *arg,
              uint64_t *jobs,
              uint32_t *attempts,
              size_t max)
{
    job_t *l = find_job(self, lead);
    if (!l || l->worker == SIZE_MAX || l->heavy || !*l->model) {
        return 0;
    }
    queue_t *q = &self->queues[l->queue];
    level_t *lv = level_of(q, l->priority, false);
    worker_t *w = &self->workers[l->worker];
    size_t n = 0, passed = 0;
    for (job_t *j = lv ? lv->jobs.head : NULL, *next; j && n < max; j = next) {
        next = j->next;
        if (j->heavy || strcmp(j->model, l->model) != 0) {
            if (++passed > DV_RIDE_PASS_MAX) {
                break; // a rare model in a deep queue: no walk of it all
            }
            continue; // another model's job keeps its place
        }
        if (!fits(j->id, arg)) {
            break; // first in first out: nothing behind it jumps it
        }
        bool last = lv->jobs.n == 1; // dequeue frees the level with it
        dequeue(self, j);
        j->attempts++;
        j->worker = l->worker;
        j->rider = true;
        w->riders++;
        list_push_back(&w->running, j);
        self->n_running++;
        q->running++;
        jobs[n] = j->id;
        attempts[n] = j->attempts;
        n++;
        if (last) {
            break;
        }
    }
    return n;
}

// Take a running job off its worker (the slot is free again).
static job_t *
take_running(dv_sched_t *self, uint64_t job, uint64_t worker)
{
    job_t *j = find_job(self, job);
    if (!j || j->worker == SIZE_MAX || self->workers[j->worker].id != worker) {
        return NULL;
    }
    list_unlink(&self->workers[j->worker].running, j);
    self->workers[j->worker].heavy_running -= j->heavy;
    self->workers[j->worker].riders -= j->rider;
    note_free(self, &self->workers[j->worker]);
    j->rider = false;
    j->worker = SIZE_MAX;
    self->n_running--;
    self->queues[j->queue].running--;
    return j;
}

static void
forget(dv_sched_t *self, job_t *j)
{
    table_remove(self, j->id);
    self->n_jobs--;
    free_job(self, j);
}

int
dv_sched_finish(dv_sched_t *self, uint64_t job, uint64_t worker)
{
    job_t *j = take_running(self, job, worker);
    if (!j) {
        return DV_ENOENT;
    }
    forget(self, j);
    return 0;
}

static void
hold(dv_sched_t *self, job_t *j)
{
    j->held = true;
    self->queues[j->queue].held++;
    list_push_back(&self->held, j);
}

// j leaves the held jobs (its next place is the caller's).
static void
unhold(dv_sched_t *self, job_t *j)
{
    j->held = false;
    self->queues[j->queue].held--;
    list_unlink(&self->held, j);
}

int
dv_sched_retry(dv_sched_t *self, uint64_t job, uint64_t worker)
{
    job_t *j = take_running(self, job, worker);
    if (!j) {
        return DV_ENOENT;
    }
    hold(self, j);
    return 0;
}

int
dv_sched_give_back(dv_sched_t *self, uint64_t job, uint64_t worker)
{
    job_t *j = take_running(self, job, worker);
    if (!j) {
        return DV_ENOENT;
    }
    j->max_attempts++;
    enqueue(self, j, true);
    return 0;
}

int
dv_sched_hold(dv_sched_t *self, uint64_t job)
{
    job_t *j = job ? find_job(self, job) : NULL;
    if (!j || j->worker != SIZE_MAX || j->held) {
        return DV_ENOENT;
    }
    dequeue(self, j);
    hold(self, j);
    return 0;
}

int
dv_sched_claim(dv_sched_t *self,
               uint64_t job,
               uint64_t worker,
               uint64_t from,
               bool need_room)
{
    job_t *j = job ? find_job(self, job) : NULL;
    size_t index = 0;
    worker_t *w = find_worker(self, worker, &index);
    bool where =
        j && (from ? j->worker != SIZE_MAX &&
                         self->workers[j->worker].id == from && from != worker
                   : j->worker == SIZE_MAX);
    if (!where) {
        return DV_ENOENT;
    }
    if (!w) {
        return DV_EINVAL;
    }
    if (!serves(w, &self->queues[j->queue])) {
        return DV_EPERM; // a worker answers only for the queues it serves
    }
    if (need_room && !j->rider && w->running.n - w->riders >= w->capacity) {
        return DV_ELIMIT; // it says it runs more than it has room for
    }
    if (from) {
        worker_t *old = &self->workers[j->worker];
        list_unlink(&old->running, j);
        old->heavy_running -= j->heavy;
        old->riders -= j->rider;
        note_free(self, old);
        self->n_running--;
        self->queues[j->queue].running--;
    } else if (j->held) {
        unhold(self, j);
    } else {
        dequeue(self, j);
    }
    j->worker = index;
    w->heavy_running += j->heavy;
    w->riders += j->rider;
    list_push_back(&w->running, j);
    note_free(self, w);
    self->n_running++;
    self->queues[j->queue].running++;
    return 0;
}

int
dv_sched_refund(dv_sched_t *self, uint64_t job)
{
    job_t *j = job ? find_job(self, job) : NULL;
    if (!j || j->worker != SIZE_MAX) {
        return DV_ENOENT;
    }
    j->max_attempts++;
    return 0;
}

int
dv_sched_release(dv_sched_t *self, uint64_t job)
{
    job_t *j = job ? find_job(self, job) : NULL;
    if (!j || !j->held) {
        return DV_ENOENT;
    }
    unhold(self, j);
    enqueue(self, j, false);
    return 0;
}

int
dv_sched_cancel(dv_sched_t *self, uint64_t job)
{
    job_t *j = job ? find_job(self, job) : NULL;
    if (!j || j->worker != SIZE_MAX) {
        return DV_ENOENT;
    }
    if (j->held) {
        unhold(self, j);
    } else {
        dequeue(self, j);
    }
    forget(self, j);
    return 0;
}

int
dv_sched_job(const dv_sched_t *self,
             uint64_t job,
             bool *running,
             uint32_t *attempts)
{
    dv_sched_state_t state;
    int rc = dv_sched_job_state(self, job, &state, attempts);
    if (rc == 0) {
        *running = state == DV_SCHED_RUNNING;
    }
    return rc;
}

int
dv_sched_job_state(const dv_sched_t *self,
                   uint64_t job,
                   dv_sched_state_t *state,
                   uint32_t *attempts)
{
    const job_t *j = job ? find_job(self, job) : NULL;
    if (!j) {
        return DV_ENOENT;
    }
    *state = j->worker != SIZE_MAX ? DV_SCHED_RUNNING
             : j->held             ? DV_SCHED_HELD
                                   : DV_SCHED_QUEUED;
    *attempts = j->attempts;
    return 0;
}

size_t
dv_sched_queued(const dv_sched_t *self)
{
    return self->n_queued;
}

size_t
dv_sched_running(const dv_sched_t *self)
{
    return self->n_running;
}

size_t
dv_sched_ids(const dv_sched_t *self, bool running, bool held, uint64_t *ids)
{
    size_t n = 0;
    for (size_t w = 0; running && w < self->n_workers; w++) {
        for (const job_t *j = self->workers[w].running.head; j; j = j->next) {
            ids[n++] = j->id;
        }
    }
    for (const job_t *j = held ? self->held.head : NULL; j; j = j->next) {
        ids[n++] = j->id;
    }
    return n;
}

size_t
dv_sched_workers(const dv_sched_t *self)
{
    return self->n_workers;
}

size_t
dv_sched_worker_running(const dv_sched_t *self, uint64_t worker)
{
    const worker_t *w = find_worker(self, worker, NULL);
    return w ? w->running.n : 0;
}

void
dv_sched_worker_drain(dv_sched_t *self, uint64_t worker)
{
    worker_t *w = find_worker(self, worker, NULL);
    if (w) {
        w->draining = true;
        note_free(self, w);
    }
}

size_t
dv_sched_queue_count(const dv_sched_t *self)
{
    return self->n_queues;
}

const char *
dv_sched_queue_info(const dv_sched_t *self,
                    size_t i,
                    size_t *queued,
                    size_t *running)
{
    if (i >= self->n_queues) {
        return NULL;
    }
    *queued = self->queues[i].waiting;
    *running = self->queues[i].running;
    return self->queues[i].name;
}

size_t
dv_sched_queue_held(const dv_sched_t *self, size_t i)
{
    return i < self->n_queues ? self->queues[i].held : 0;
}

uint64_t
dv_sched_backoff_ms(uint32_t base_ms, uint32_t failures, uint64_t *rng)
{
    if (base_ms == 0) {
        return 0;
    }
    uint64_t d = base_ms;
    for (uint32_t i = 1; i < failures && d < DV_SCHED_BACKOFF_CAP_MS; i++) {
        d *= 2;
    }
    d = d < DV_SCHED_BACKOFF_CAP_MS ? d : DV_SCHED_BACKOFF_CAP_MS;
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    return d / 2 + *rng % (d / 2 + 1);
}

int
dv_sched_set_attempts(dv_sched_t *self, uint64_t job, uint32_t attempts)
{
    job_t *j = job ? find_job(self, job) : NULL;
    if (!j || j->worker != SIZE_MAX) {
        return DV_ENOENT;
    }
    j->attempts = attempts;
    return 0;
}

size_t
dv_sched_held(const dv_sched_t *self)
{
    return self->held.n;
}

size_t
dv_sched_queue_find(const dv_sched_t *self, const char *name)
{
    return dv_names_find(self->qnames, name);
}

size_t
dv_sched_queue_waiting(const dv_sched_t *self, const char *name)
{
    size_t i = dv_sched_queue_find(self, name);
    return i == SIZE_MAX ? 0 : self->queues[i].waiting + self->queues[i].held;
}

int
dv_sched_job_worker(const dv_sched_t *self, uint64_t job, uint64_t *worker)
{
    const job_t *j = job ? find_job(self, job) : NULL;
    if (!j || j->worker == SIZE_MAX) {
        return DV_ENOENT;
    }
    *worker = self->workers[j->worker].id;
    return 0;
}

int
dv_sched_set_heavy(dv_sched_t *self, uint64_t job)
{
    job_t *j = job ? find_job(self, job) : NULL;
    if (!j || j->worker != SIZE_MAX) {
        return DV_ENOENT;
    }
    level_t *l = !j->heavy && !j->held
                     ? level_of(&self->queues[j->queue], j->priority, false)
                     : NULL;
    if (l) { // waiting in its queue: no longer among the light ones
        light_unlink(l, j);
    }
    j->heavy = true;
    return 0;
}

void
dv_sched_worker_heavy_cap(dv_sched_t *self, uint64_t worker, uint32_t cap)
{
    worker_t *w = find_worker(self, worker, NULL);
    if (w) {
        w->heavy_cap = cap;
    }
}
