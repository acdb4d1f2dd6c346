// dv_mem — allocation helpers that abort on OOM with the caller's file:line.
#include "dv_mem.h"

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dv_limits.h"

static void __attribute__((noreturn)) oom(size_t n, const char *file, int line)
{
    fprintf(stderr, "drover: out of memory allocating %zu bytes at %s:%d\n", n,
            file, line);
    abort();
}

void *
dv_malloc_at(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        oom(n, file, line);
    }
    return p;
}

// glibc's calloc (before 2.41) never takes a block from the thread's cache
// (tcache): each call runs _int_malloc under the arena's lock and searches
// the bins, cold memory on a busy heap. Object records (a view of one request,
// a queue entry, a message writer: tens to hundreds of bytes, made and freed
// per job) come zeroed from malloc instead, which serves them from the
// cache; perf put calloc's _int_malloc at ~6% of the broker on 1-row
// serving. Large blocks stay with calloc, which skips the memset for fresh
// pages. 1,024 bytes: glibc's tcache serves chunks up to 1,032.
#define CALLOC_BY_MALLOC_BYTES 1024

void *
dv_calloc_at(size_t n, size_t size, const char *file, int line)
{
    n = n ? n : 1;
    size = size ? size : 1;
    void *p;
    if (size <= CALLOC_BY_MALLOC_BYTES && n <= CALLOC_BY_MALLOC_BYTES / size) {
        p = malloc(n * size);
        if (p) {
            memset(p, 0, n * size);
        }
    } else {
        p = calloc(n, size);
    }
    if (!p) {
        oom(n * size, file, line);
    }
    return p;
}

void *
dv_realloc_at(void *p, size_t n, const char *file, int line)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) {
        oom(n, file, line);
    }
    return q;
}

char *
dv_strdup_at(const char *s, const char *file, int line)
{
    size_t n = strlen(s) + 1;
    char *p = dv_malloc_at(n, file, line);
    memcpy(p, s, n);
    return p;
}

void *
dv_try_malloc(size_t n_elems, size_t elem_size)
{
    if (elem_size && n_elems > SIZE_MAX / elem_size) {
        return NULL;
    }
    size_t n = n_elems * elem_size;
    return malloc(n ? n : 1);
}

void
dv_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "drover: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}

void
dv_mem_tune_daemon(void)
{
    // Setting either also ends glibc's dynamic threshold (mallopt(3)).
    mallopt(M_MMAP_THRESHOLD, (int)DV_MALLOC_MMAP_BYTES);
    mallopt(M_TRIM_THRESHOLD, (int)DV_MALLOC_TRIM_BYTES);
}
