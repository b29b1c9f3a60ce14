/* layout.c -- groups of a tensor that share one scale (per tensor, per
 * channel along any axis, per block of V along the innermost axis). */
#include "octav/quant.h"

#include <string.h>

octav_status octav_layout_make(const octav_shape *shape, octav_group_spec spec, octav_layout *out) {
    if (!shape || !out) return octav_set_error(OCTAV_EINVAL, "layout: NULL argument");
    int64_t n = octav_shape_numel(shape);
    if (n < 0) return octav_set_error(OCTAV_EINVAL, "layout: invalid shape");
    if (n == 0) return octav_set_error(OCTAV_EEMPTY, "layout: empty tensor");
    memset(out, 0, sizeof *out);
    out->kind = spec.kind;
    out->numel = n;
    out->axis = -1;
    switch (spec.kind) {
    case OCTAV_GRAN_TENSOR:
        out->ngroups = 1;
        out->outer = 1; out->channels = 1; out->inner = n;
        return OCTAV_OK;
    case OCTAV_GRAN_CHANNEL: {
        int nd = shape->ndim, a = spec.axis < 0 ? spec.axis + nd : spec.axis;
        if (nd == 0 || a < 0 || a >= nd)
            return octav_set_error(OCTAV_EINVAL, "axis %d out of range for a %d-d tensor", spec.axis, nd);
        out->axis = a;
        out->outer = 1; out->inner = 1;
        for (int i = 0; i < a; i++) out->outer *= shape->dim[i];
        for (int i = a + 1; i < nd; i++) out->inner *= shape->dim[i];
        out->channels = shape->dim[a];
        out->ngroups = out->channels;
        return OCTAV_OK;
    }
    case OCTAV_GRAN_BLOCK: {
        if (spec.block < 1) return octav_set_error(OCTAV_EINVAL, "block size must be >= 1 (got %lld)", (long long)spec.block);
        int64_t D = shape->ndim ? shape->dim[shape->ndim - 1] : 1;
        out->inner = D;
        out->outer = n / D;
        out->block = spec.block;
        out->nblocks = (D + spec.block - 1) / spec.block;
        out->ngroups = out->outer * out->nblocks;
        return OCTAV_OK;
    }
    }
    return octav_set_error(OCTAV_EINVAL, "unknown granularity %d", (int)spec.kind);
}

int64_t octav_layout_group_size(const octav_layout *lay, int64_t g) {
    switch (lay->kind) {
    case OCTAV_GRAN_TENSOR: return lay->numel;
    case OCTAV_GRAN_CHANNEL: return lay->outer * lay->inner;
    default: {
        int64_t b = g % lay->nblocks, start = b * lay->block;
        int64_t len = lay->inner - start;
        return len < lay->block ? len : lay->block;
    }
    }
}

int64_t octav_layout_group_of(const octav_layout *lay, int64_t i) {
    switch (lay->kind) {
    case OCTAV_GRAN_TENSOR: return 0;
    case OCTAV_GRAN_CHANNEL: return (i / lay->inner) % lay->channels;
    default: return (i / lay->inner) * lay->nblocks + (i % lay->inner) / lay->block;
    }
}

static const char *const gran_names[] = {"tensor", "channel", "block"};

const char *octav_granularity_name(octav_granularity k) { return (unsigned)k < 3 ? gran_names[k] : "?"; }

octav_status octav_granularity_parse(const char *name, octav_granularity *out) {
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, gran_names[i]) == 0) { *out = (octav_granularity)i; return OCTAV_OK; }
    return octav_set_error(OCTAV_EINVAL, "unknown granularity '%s' (expected tensor, channel or block)",
                           name ? name : "");
}
