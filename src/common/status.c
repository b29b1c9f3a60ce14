/* status.c -- status strings, the per-thread error message, the allocation
 * hook and shape helpers shared by the whole library. */
#include "octav/octav.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char g_err[512];

const char *octav_status_str(octav_status st) {
    switch (st) {
    case OCTAV_OK: return "ok";
    case OCTAV_EINVAL: return "invalid argument";
    case OCTAV_ENOMEM: return "out of memory";
    case OCTAV_EIO: return "i/o error";
    case OCTAV_EFORMAT: return "bad file format";
    case OCTAV_EUNSUPPORTED: return "unsupported";
    case OCTAV_ENONFINITE: return "non-finite value";
    case OCTAV_EEMPTY: return "empty input";
    case OCTAV_ENOTFOUND: return "not found";
    }
    return "unknown status";
}

const char *octav_last_error(void) { return g_err; }

octav_status octav_set_error(octav_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_err, sizeof g_err, fmt, ap);
    va_end(ap);
    return st;
}

void octav_clear_error(void) { g_err[0] = '\0'; }

static octav_alloc_fn g_alloc;
static octav_free_fn g_free;
static void *g_alloc_user;

void octav_set_allocator(octav_alloc_fn alloc, octav_free_fn release, void *user) {
    g_alloc = alloc;
    g_free = release;
    g_alloc_user = user;
}

void *octav_malloc(size_t size) {
    if (size == 0) size = 1;
    return g_alloc ? g_alloc(size, g_alloc_user) : malloc(size);
}

void *octav_calloc(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    void *p = octav_malloc(n * size);
    if (p && n && size) memset(p, 0, n * size);
    return p;
}

void octav_free(void *p) {
    if (!p) return;
    if (g_free) g_free(p, g_alloc_user);
    else free(p);
}

int64_t octav_shape_numel(const octav_shape *s) {
    if (!s || s->ndim < 0 || s->ndim > OCTAV_MAX_DIMS) return -1;
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++) {
        if (s->dim[i] < 0) return -1;
        if (s->dim[i] && n > INT64_MAX / s->dim[i]) return -1;
        n *= s->dim[i];
    }
    return n;
}
