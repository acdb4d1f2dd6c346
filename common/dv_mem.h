// dv_mem — allocation helpers and dv_assert.
//
// dv_malloc/dv_calloc/dv_realloc/dv_strdup abort with file:line on OOM: they
// are for our own bounded bookkeeping (czmq, Redis). Sizes that come from
// files or peers are checked against DV_MAX_* first, and large buffers whose
// failure should fail one job, not the process, use dv_try_malloc.
#ifndef DV_MEM_H
#define DV_MEM_H

#include <stddef.h>

#define dv_malloc(n)     dv_malloc_at((n), __FILE__, __LINE__)
#define dv_calloc(n, sz) dv_calloc_at((n), (sz), __FILE__, __LINE__)
#define dv_realloc(p, n) dv_realloc_at((p), (n), __FILE__, __LINE__)
#define dv_strdup(s)     dv_strdup_at((s), __FILE__, __LINE__)

// On in every build (Release adds -DNDEBUG): guards our own invariants and
// API misuse, never bytes from a socket, file, config or environment.
#define dv_assert(expr)                                                        \
    ((expr) ? (void)0 : dv_assert_fail(#expr, __FILE__, __LINE__))

// Caller owns the result (free with free()); never NULL.
void *dv_malloc_at(size_t n, const char *file, int line);
void *dv_calloc_at(size_t n, size_t size, const char *file, int line);
void *dv_realloc_at(void *p, size_t n, const char *file, int line);
char *dv_strdup_at(const char *s, const char *file, int line);

// Like malloc, but NULL on failure or when n_elems * elem_size overflows; for
// buffers sized by data (tensors, batches). Caller owns the result.
void *dv_try_malloc(size_t n_elems, size_t elem_size);

// For a daemon's main, before its threads start: keep blocks up to
// DV_MALLOC_MMAP_BYTES in the heap and up to DV_MALLOC_TRIM_BYTES free at
// an arena's top (dv_limits.h says why). Never from a library.
void dv_mem_tune_daemon(void);

// Report and abort; does not return.
void dv_assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn));

#endif
