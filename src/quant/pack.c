/* pack.c -- real integer quantization for export: int8/uint8 storage and
 * 4-bit values packed two per byte (ONNX int4 layout: element 2i in the low
 * nibble). Integers are clamp(rne(x/d)) exactly as the fake quantizer's, so
 * dequantize(quantize(x)) equals octav_fq_forward(x) bit for bit. */
#include "internal.h"

static octav_status check_pack(octav_grid g, const octav_layout *lay, const void *a, const void *b,
                               const void *c, int maxbits) {
    octav_status st = octav_grid_check(g);
    if (st) return st;
    if (!lay || !a || !b || !c) return octav_set_error(OCTAV_EINVAL, "NULL argument");
    if (g.bits > maxbits)
        return octav_set_error(OCTAV_EINVAL, "%d-bit values do not fit %d-bit storage", g.bits, maxbits);
    if (lay->numel <= 0) return octav_set_error(OCTAV_EEMPTY, "empty tensor");
    return OCTAV_OK;
}

/* Integer code of element i (two's complement in the low `bits` bits). */
static inline int32_t code_of(octav_grid g, float x, float s) {
    if (!(s > 0.0f)) return 0;
    float d = grid_step(g, s);
    float q = q_clamp(q_round(x, d), (float)octav_grid_qmin(g), (float)octav_grid_qmax(g));
    return q == q ? (int32_t)q : 0; /* NaN -> 0 */
}

static inline float value_of(octav_grid g, int32_t q, float s) {
    return s > 0.0f ? (float)q * grid_step(g, s) : 0.0f;
}

typedef void (*elem_fn)(octav_grid g, int64_t i, int64_t grp, const void *in, void *out, const float *scales);

static void each_element(octav_grid g, const octav_layout *lay, const void *in, void *out, const float *scales,
                         elem_fn f) {
    const int64_t nr = layout_nruns(lay);
    for (int64_t j = 0; j < nr; j++) {
        octav_run r = layout_run(lay, j);
        for (int64_t i = r.base; i < r.base + r.len; i++) f(g, i, r.group, in, out, scales);
    }
}

static void q8(octav_grid g, int64_t i, int64_t grp, const void *in, void *out, const float *s) {
    ((uint8_t *)out)[i] = (uint8_t)(code_of(g, ((const float *)in)[i], s[grp]) & 0xff);
}

static void dq8(octav_grid g, int64_t i, int64_t grp, const void *in, void *out, const float *s) {
    uint8_t b = ((const uint8_t *)in)[i];
    int32_t q = g.kind == OCTAV_GRID_UNSIGNED ? (int32_t)b : (int32_t)(int8_t)b;
    ((float *)out)[i] = value_of(g, q, s[grp]);
}

static void q4(octav_grid g, int64_t i, int64_t grp, const void *in, void *out, const float *s) {
    uint8_t *o = out;
    uint8_t nib = (uint8_t)(code_of(g, ((const float *)in)[i], s[grp]) & 0xf);
    if (i & 1) o[i >> 1] = (uint8_t)((o[i >> 1] & 0x0f) | (nib << 4));
    else o[i >> 1] = (uint8_t)((o[i >> 1] & 0xf0) | nib);
}

static void dq4(octav_grid g, int64_t i, int64_t grp, const void *in, void *out, const float *s) {
    uint8_t nib = (uint8_t)((((const uint8_t *)in)[i >> 1] >> ((i & 1) * 4)) & 0xf);
    int32_t q = g.kind == OCTAV_GRID_UNSIGNED ? (int32_t)nib : (int32_t)(nib ^ 8) - 8;
    ((float *)out)[i] = value_of(g, q, s[grp]);
}

octav_status octav_quantize_int8(octav_grid g, const octav_layout *lay, const float *x, const float *scales,
                                 uint8_t *q) {
    octav_status st = check_pack(g, lay, x, scales, q, 8);
    if (!st) each_element(g, lay, x, q, scales, q8);
    return st;
}

octav_status octav_dequantize_int8(octav_grid g, const octav_layout *lay, const uint8_t *q, const float *scales,
                                   float *x) {
    octav_status st = check_pack(g, lay, q, scales, x, 8);
    if (!st) each_element(g, lay, q, x, scales, dq8);
    return st;
}

octav_status octav_quantize_int4(octav_grid g, const octav_layout *lay, const float *x, const float *scales,
                                 uint8_t *q) {
    octav_status st = check_pack(g, lay, x, scales, q, 4);
    if (st) return st;
    if (lay->numel & 1) q[lay->numel >> 1] = 0; /* padding nibble */
    each_element(g, lay, x, q, scales, q4);
    return OCTAV_OK;
}

octav_status octav_dequantize_int4(octav_grid g, const octav_layout *lay, const uint8_t *q, const float *scales,
                                   float *x) {
    octav_status st = check_pack(g, lay, q, scales, x, 4);
    if (!st) each_element(g, lay, q, x, scales, dq4);
    return st;
}
