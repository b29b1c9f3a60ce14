/* half.h -- private helpers shared by src/io: byte-order loads and stores,
 * the exact float16 / bfloat16 / float64 -> float32 conversions, and small
 * string and error helpers of the readers. Not part of the public API.
 * Leaves out any conversion to narrower types (writers emit float32 only). */
#ifndef OCTAV_IO_HALF_H
#define OCTAV_IO_HALF_H

#include "octav/io.h"

#include <stdint.h>
#include <string.h>

static inline uint16_t octav_io_ld16(const unsigned char *p, int big) {
    return big ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

static inline uint32_t octav_io_ld32(const unsigned char *p, int big) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v = v << 8 | p[big ? i : 3 - i];
    return v;
}

static inline uint64_t octav_io_ld64(const unsigned char *p, int big) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[big ? i : 7 - i];
    return v;
}

static inline void octav_io_st32le(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> 8 * i);
}

static inline void octav_io_st64le(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> 8 * i);
}

static inline float octav_io_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t octav_io_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* 1 on a big-endian host. */
static inline int octav_io_host_big(void) {
    const uint16_t one = 1;
    unsigned char c;
    memcpy(&c, &one, 1);
    return c == 0;
}

float octav_io_f16_to_f32(uint16_t h);   /* exact; NaN payload kept */
float octav_io_bf16_to_f32(uint16_t h);  /* exact */
float octav_io_f64_to_f32(double d);     /* round to nearest even, overflow -> inf */

size_t octav_io_dtype_size(octav_dtype dt);
/* One element of type dt stored at p (any alignment) in the given order. */
float octav_io_load(const unsigned char *p, octav_dtype dt, int big);
/* dst[0..n) = elements src[0..n) of type dt. */
void octav_io_convert(float *dst, const unsigned char *src, size_t n,
                      octav_dtype dt, int big);

/* Copy of s[0..n) plus a NUL, allocated with octav_malloc; NULL if out of memory. */
char *octav_io_strndup(const char *s, size_t n);
/* OCTAV_EIO with the message "WHAT 'PATH': strerror(err)", or "WHAT: strerror(err)"
 * when path is NULL. */
octav_status octav_io_errno(const char *what, const char *path, int err);
/* Opens path read-only (retrying on EINTR); OCTAV_EIO naming it on failure. */
octav_status octav_io_open_read(const char *path, int *fd);
/* Reads an open descriptor to its end into a new buffer (octav_malloc) and
 * closes it, also on failure. */
octav_status octav_io_read_fd(int fd, const char *path, unsigned char **buf, size_t *len);
/* Rewrites the current error message as "PATH: message"; returns st. */
octav_status octav_io_prefix_error(octav_status st, const char *path);

#endif
