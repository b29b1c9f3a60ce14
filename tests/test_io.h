/* test_io.h -- helpers shared by the .npy and safetensors tests. */
#ifndef OCTAV_TEST_IO_H
#define OCTAV_TEST_IO_H
#include "octav/io.h"
#include "test.h"

static inline unsigned char *slurp(const char *path, size_t *len) {
    unsigned char *buf = NULL;
    octav_status st = octav_read_file(path, &buf, len);
    CHECK_MSG(st == OCTAV_OK, "%s: %s", path, octav_last_error());
    return buf;
}

/* Same values bit for bit, except that any NaN matches any NaN. */
static inline void check_bits(const float *got, const float *ref, int64_t n, const char *what) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t a, b;
        memcpy(&a, &got[i], 4);
        memcpy(&b, &ref[i], 4);
        if (a != b && !(isnan(got[i]) && isnan(ref[i]))) {
            CHECK_MSG(0, "%s: element %lld is %a (0x%08x), expected %a (0x%08x)", what,
                      (long long)i, got[i], a, ref[i], b);
            return;
        }
    }
}

/* An allocator that fails the g_fail_at-th allocation (counted in g_count)
 * and tracks the blocks alive in g_live, for octav_set_allocator. */
static int g_fail_at, g_count, g_live;
static inline void *failing_alloc(size_t n, void *user) {
    (void)user;
    if (g_count++ == g_fail_at) return NULL;
    void *p = malloc(n);
    if (p) g_live++;
    return p;
}
static inline void counting_free(void *p, void *user) {
    (void)user;
    g_live--;
    free(p);
}

#endif
