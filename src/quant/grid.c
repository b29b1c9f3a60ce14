/* grid.c -- the quantization grids of quant.h (full, narrow, unsigned), their
 * constants, and the name tables shared with the CLI. */
#include "octav/quant.h"

#include <string.h>

octav_status octav_grid_check(octav_grid g) {
    if (g.bits < OCTAV_MIN_BITS || g.bits > OCTAV_MAX_BITS)
        return octav_set_error(OCTAV_EINVAL, "bits must be in %d..%d (got %d)",
                               OCTAV_MIN_BITS, OCTAV_MAX_BITS, g.bits);
    if (g.kind != OCTAV_GRID_FULL && g.kind != OCTAV_GRID_NARROW && g.kind != OCTAV_GRID_UNSIGNED)
        return octav_set_error(OCTAV_EINVAL, "unknown grid kind %d", (int)g.kind);
    return OCTAV_OK;
}

int32_t octav_grid_qmin(octav_grid g) {
    switch (g.kind) {
    case OCTAV_GRID_FULL: return -(int32_t)(1u << (g.bits - 1));
    case OCTAV_GRID_NARROW: return -(int32_t)((1u << (g.bits - 1)) - 1);
    default: return 0;
    }
}

int32_t octav_grid_qmax(octav_grid g) {
    if (g.kind == OCTAV_GRID_UNSIGNED) return (int32_t)((1u << g.bits) - 1);
    return (int32_t)((1u << (g.bits - 1)) - 1);
}

double octav_grid_levels(octav_grid g) {
    switch (g.kind) {
    case OCTAV_GRID_FULL: return (double)(1u << (g.bits - 1));
    case OCTAV_GRID_NARROW: return (double)((1u << (g.bits - 1)) - 1);
    default: return (double)(1u << g.bits);
    }
}

double octav_grid_noise_c(octav_grid g) {
    double L = octav_grid_levels(g);
    return 1.0 / (12.0 * L * L);
}

static const char *const grid_names[] = {"full", "narrow", "unsigned"};

const char *octav_grid_name(octav_grid_kind k) {
    return (unsigned)k < 3 ? grid_names[k] : "?";
}

octav_status octav_grid_parse(const char *name, octav_grid_kind *out) {
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, grid_names[i]) == 0) { *out = (octav_grid_kind)i; return OCTAV_OK; }
    return octav_set_error(OCTAV_EINVAL, "unknown grid '%s' (expected full, narrow or unsigned)",
                           name ? name : "");
}

static const char *const grad_names[] = {"ste", "pwl", "mad"};

const char *octav_grad_name(octav_grad_est e) { return (unsigned)e < 3 ? grad_names[e] : "?"; }

octav_status octav_grad_parse(const char *name, octav_grad_est *out) {
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, grad_names[i]) == 0) { *out = (octav_grad_est)i; return OCTAV_OK; }
    return octav_set_error(OCTAV_EINVAL, "unknown gradient estimator '%s' (expected ste, pwl or mad)",
                           name ? name : "");
}
