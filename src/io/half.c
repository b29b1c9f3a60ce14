/* half.c -- element conversions of the file readers: float16 and bfloat16
 * (bit-exact, subnormals, infinities and NaN payloads kept), float64 with
 * round-to-nearest-even, plus octav_dtype_name, octav_tensor_free and the
 * private string/error helpers of src/io.
 * Leaves out conversions from float32 to narrower types. */
#include "half.h"

#include <math.h>
#include <stdio.h>

const char *octav_dtype_name(octav_dtype dt) {
    switch (dt) {
    case OCTAV_DTYPE_F32: return "float32";
    case OCTAV_DTYPE_F64: return "float64";
    case OCTAV_DTYPE_F16: return "float16";
    case OCTAV_DTYPE_BF16: return "bfloat16";
    }
    return "unknown";
}

void octav_tensor_free(octav_tensor *t) {
    if (!t) return;
    octav_free(t->name);
    octav_free(t->data);
    memset(t, 0, sizeof *t);
}

float octav_io_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | man << 13;
    } else if (exp != 0) {
        bits = sign | (exp + 112) << 23 | man << 13;
    } else if (man == 0) {
        bits = sign;
    } else {
        uint32_t e = 113;
        while (!(man & 0x400u)) {
            man <<= 1;
            e--;
        }
        bits = sign | e << 23 | (man & 0x3ffu) << 13;
    }
    return octav_io_bits_f32(bits);
}

float octav_io_bf16_to_f32(uint16_t h) { return octav_io_bits_f32((uint32_t)h << 16); }

float octav_io_f64_to_f32(double d) {
    /* Halfway between FLT_MAX and 2^128: from here on the float rounds to inf. */
    if (d >= 0x1.ffffffp127) return INFINITY;
    if (d <= -0x1.ffffffp127) return -INFINITY;
    return (float)d;
}

size_t octav_io_dtype_size(octav_dtype dt) {
    switch (dt) {
    case OCTAV_DTYPE_F32: return 4;
    case OCTAV_DTYPE_F64: return 8;
    case OCTAV_DTYPE_F16:
    case OCTAV_DTYPE_BF16: return 2;
    }
    return 0;
}

float octav_io_load(const unsigned char *p, octav_dtype dt, int big) {
    switch (dt) {
    case OCTAV_DTYPE_F32: return octav_io_bits_f32(octav_io_ld32(p, big));
    case OCTAV_DTYPE_F64: {
        uint64_t u = octav_io_ld64(p, big);
        double d;
        memcpy(&d, &u, sizeof d);
        return octav_io_f64_to_f32(d);
    }
    case OCTAV_DTYPE_F16: return octav_io_f16_to_f32(octav_io_ld16(p, big));
    case OCTAV_DTYPE_BF16: return octav_io_bf16_to_f32(octav_io_ld16(p, big));
    }
    return NAN;
}

void octav_io_convert(float *dst, const unsigned char *src, size_t n,
                      octav_dtype dt, int big) {
    size_t sz = octav_io_dtype_size(dt);
    if (dt == OCTAV_DTYPE_F32 && big == octav_io_host_big()) {
        if (n) memcpy(dst, src, n * sz);
        return;
    }
    for (size_t i = 0; i < n; i++) dst[i] = octav_io_load(src + i * sz, dt, big);
}

char *octav_io_strndup(const char *s, size_t n) {
    char *r = octav_malloc(n + 1);
    if (!r) return NULL;
    if (n) memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

octav_status octav_io_prefix_error(octav_status st, const char *path) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", octav_last_error());
    return octav_set_error(st, "%s: %s", path, msg);
}
