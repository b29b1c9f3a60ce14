/* test_grid.c -- the quantization grids' constants, grid / granularity /
 * gradient-estimator / clipping-method names, and the group layouts.
 * Grid constants are recomputed here from the definitions of quant.h with
 * integer arithmetic; layouts are checked against a brute-force enumeration
 * of the multi-index of every element of small 1-d .. 4-d tensors. */
#include "octav/quant.h"
#include "test.h"

/* ---- grids ---------------------------------------------------------------- */

/* quant.h: FULL q in [-2^(B-1), 2^(B-1)-1], L = 2^(B-1); NARROW q in
 * [-(2^(B-1)-1), 2^(B-1)-1], L = 2^(B-1)-1; UNSIGNED q in [0, 2^B-1], L = 2^B. */
static void grid_ref(octav_grid g, int64_t *qmin, int64_t *qmax, int64_t *L) {
    int64_t half = 1;
    for (int i = 1; i < g.bits; i++) half *= 2; /* 2^(B-1) */
    switch (g.kind) {
    case OCTAV_GRID_FULL: *qmin = -half; *qmax = half - 1; *L = half; break;
    case OCTAV_GRID_NARROW: *qmin = -(half - 1); *qmax = half - 1; *L = half - 1; break;
    default: *qmin = 0; *qmax = 2 * half - 1; *L = 2 * half; break;
    }
}

static void test_grid_constants(void) {
    const octav_grid_kind kinds[3] = {OCTAV_GRID_FULL, OCTAV_GRID_NARROW, OCTAV_GRID_UNSIGNED};
    for (int k = 0; k < 3; k++)
        for (int b = OCTAV_MIN_BITS; b <= OCTAV_MAX_BITS; b++) {
            octav_grid g = {b, kinds[k]};
            int64_t qmin, qmax, L;
            grid_ref(g, &qmin, &qmax, &L);
            CHECK(octav_grid_check(g) == OCTAV_OK);
            CHECK_EQ_INT(octav_grid_qmin(g), qmin);
            CHECK_EQ_INT(octav_grid_qmax(g), qmax);
            CHECK(octav_grid_levels(g) == (double)L);
            /* c = (d/s)^2 / 12 = 1 / (12 L^2): 12 L^2 < 2^53 is exact in double */
            CHECK(octav_grid_noise_c(g) == 1.0 / (double)(12 * L * L));
            /* the closed forms of quant.h: FULL 4^-B/3, UNSIGNED 4^-B/12 */
            int64_t four_b = (int64_t)1 << (2 * b);
            if (kinds[k] == OCTAV_GRID_FULL) CHECK(octav_grid_noise_c(g) == 1.0 / (3.0 * (double)four_b));
            if (kinds[k] == OCTAV_GRID_UNSIGNED) CHECK(octav_grid_noise_c(g) == 1.0 / (12.0 * (double)four_b));
            /* number of grid points: 2^B (full, unsigned) or 2^B - 1 (narrow) */
            CHECK_EQ_INT(qmax - qmin + 1, ((int64_t)1 << b) - (kinds[k] == OCTAV_GRID_NARROW));
        }
}

static void test_grid_check_bounds(void) {
    const octav_grid_kind kinds[3] = {OCTAV_GRID_FULL, OCTAV_GRID_NARROW, OCTAV_GRID_UNSIGNED};
    const int bad_bits[] = {-1, 0, 1, 17, 32, 1000};
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < sizeof bad_bits / sizeof bad_bits[0]; i++) {
            octav_clear_error();
            CHECK(octav_grid_check((octav_grid){bad_bits[i], kinds[k]}) == OCTAV_EINVAL);
            CHECK(octav_last_error()[0] != '\0');
        }
    CHECK(octav_grid_check((octav_grid){2, OCTAV_GRID_FULL}) == OCTAV_OK);
    CHECK(octav_grid_check((octav_grid){16, OCTAV_GRID_UNSIGNED}) == OCTAV_OK);
    octav_clear_error();
    CHECK(octav_grid_check((octav_grid){4, (octav_grid_kind)3}) == OCTAV_EINVAL);
    CHECK(octav_last_error()[0] != '\0');
    CHECK(octav_grid_check((octav_grid){4, (octav_grid_kind)-1}) == OCTAV_EINVAL);
}

/* ---- names ---------------------------------------------------------------- */

static void check_bad_name(octav_status st) {
    CHECK(st == OCTAV_EINVAL);
    CHECK(octav_last_error()[0] != '\0');
}

static void test_grid_names(void) {
    const char *want[3] = {"full", "narrow", "unsigned"};
    for (int k = 0; k < 3; k++) {
        const char *n = octav_grid_name((octav_grid_kind)k);
        CHECK(strcmp(n, want[k]) == 0);
        octav_grid_kind back = (octav_grid_kind)99;
        CHECK(octav_grid_parse(n, &back) == OCTAV_OK);
        CHECK_EQ_INT(back, k);
    }
    CHECK(strcmp(octav_grid_name((octav_grid_kind)3), "?") == 0);
    const char *bad[] = {"", "Full", "full ", "signed", "narrowx", "uns"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        octav_grid_kind k = OCTAV_GRID_FULL;
        octav_clear_error();
        check_bad_name(octav_grid_parse(bad[i], &k));
    }
    octav_grid_kind k;
    octav_clear_error();
    check_bad_name(octav_grid_parse(NULL, &k));
}

static void test_granularity_names(void) {
    const char *want[3] = {"tensor", "channel", "block"};
    for (int k = 0; k < 3; k++) {
        const char *n = octav_granularity_name((octav_granularity)k);
        CHECK(strcmp(n, want[k]) == 0);
        octav_granularity back = (octav_granularity)99;
        CHECK(octav_granularity_parse(n, &back) == OCTAV_OK);
        CHECK_EQ_INT(back, k);
    }
    CHECK(strcmp(octav_granularity_name((octav_granularity)7), "?") == 0);
    const char *bad[] = {"", "Tensor", "channels", "blk", "per-tensor"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        octav_granularity k;
        octav_clear_error();
        check_bad_name(octav_granularity_parse(bad[i], &k));
    }
    octav_granularity k;
    octav_clear_error();
    check_bad_name(octav_granularity_parse(NULL, &k));
}

static void test_grad_names(void) {
    const char *want[3] = {"ste", "pwl", "mad"};
    for (int k = 0; k < 3; k++) {
        const char *n = octav_grad_name((octav_grad_est)k);
        CHECK(strcmp(n, want[k]) == 0);
        octav_grad_est back = (octav_grad_est)99;
        CHECK(octav_grad_parse(n, &back) == OCTAV_OK);
        CHECK_EQ_INT(back, k);
    }
    CHECK(strcmp(octav_grad_name((octav_grad_est)3), "?") == 0);
    const char *bad[] = {"", "STE", "lsq", "madx", "pw"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        octav_grad_est k;
        octav_clear_error();
        check_bad_name(octav_grad_parse(bad[i], &k));
    }
    octav_grad_est k;
    octav_clear_error();
    check_bad_name(octav_grad_parse(NULL, &k));
}

/* A parameter with more than six significant digits must survive the round
 * trip too: octav_clip_name is how results and messages label a config. */
static void test_clip_name_precision(void) {
    const char *names[] = {"percentile-99.99999", "percentile-99.999999", "sigma-3.14159265", "percentile-12.3456789"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        octav_clip_config c, c2;
        CHECK(octav_clip_parse(names[i], &c) == OCTAV_OK);
        const char *n = octav_clip_name(&c);
        CHECK(octav_clip_parse(n, &c2) == OCTAV_OK);
        CHECK_MSG(c2.method == c.method && c2.param == c.param, "'%s' prints as '%s' (param %.17g -> %.17g)", names[i],
                  n, c.param, c2.param);
    }
}

static void test_clip_names(void) {
    /* plain names: parse gives the method with its default parameter, the
     * name prints back (percentile and sigma print their parameter) */
    static const struct {
        const char *in;
        octav_clip_method m;
        double param;
        const char *out;
    } ok[] = {
        {"octav", OCTAV_CLIP_OCTAV, 0, "octav"},
        {"max", OCTAV_CLIP_MAX, 0, "max"},
        {"percentile", OCTAV_CLIP_PERCENTILE, 99.99, "percentile-99.99"},
        {"percentile-99.9", OCTAV_CLIP_PERCENTILE, 99.9, "percentile-99.9"},
        {"percentile-99.999", OCTAV_CLIP_PERCENTILE, 99.999, "percentile-99.999"},
        {"percentile-50", OCTAV_CLIP_PERCENTILE, 50, "percentile-50"},
        {"percentile-100", OCTAV_CLIP_PERCENTILE, 100, "percentile-100"},
        {"sigma", OCTAV_CLIP_SIGMA, 3, "sigma-3"},
        {"sigma-4", OCTAV_CLIP_SIGMA, 4, "sigma-4"},
        {"sigma-2.5", OCTAV_CLIP_SIGMA, 2.5, "sigma-2.5"},
        {"aciq-laplace", OCTAV_CLIP_ACIQ_LAPLACE, 0, "aciq-laplace"},
        {"aciq-gauss", OCTAV_CLIP_ACIQ_GAUSS, 0, "aciq-gauss"},
        {"mse-sweep", OCTAV_CLIP_MSE_SWEEP, 100, "mse-sweep"},
        {"entropy", OCTAV_CLIP_ENTROPY, 2048, "entropy"},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        octav_clip_config c;
        memset(&c, 0xAB, sizeof c);
        octav_status st = octav_clip_parse(ok[i].in, &c);
        CHECK_MSG(st == OCTAV_OK, "'%s': %s", ok[i].in, octav_last_error());
        if (st) continue;
        CHECK_EQ_INT(c.method, ok[i].m);
        CHECK_MSG(c.param == ok[i].param, "'%s': param %g", ok[i].in, c.param);
        CHECK(c.warm_start == NULL && c.name == NULL && c.max_iter == 100);
        const char *n = octav_clip_name(&c);
        CHECK_MSG(strcmp(n, ok[i].out) == 0, "'%s' prints as '%s'", ok[i].in, n);
        /* round trip: name -> parse -> same config */
        octav_clip_config c2;
        CHECK(octav_clip_parse(n, &c2) == OCTAV_OK);
        CHECK(c2.method == c.method && c2.param == c.param);
    }
    /* the default config of every method prints a name that parses back to it */
    for (int m = 0; m < OCTAV_CLIP_COUNT_; m++) {
        octav_clip_config c = octav_clip_default((octav_clip_method)m), c2;
        CHECK(octav_clip_parse(octav_clip_name(&c), &c2) == OCTAV_OK);
        CHECK(c2.method == c.method && c2.param == c.param);
    }
    CHECK(strcmp(octav_clip_name(NULL), "?") == 0);
    octav_clip_config badm = octav_clip_default(OCTAV_CLIP_MAX);
    badm.method = OCTAV_CLIP_COUNT_;
    CHECK(strcmp(octav_clip_name(&badm), "?") == 0);

    const char *bad[] = {"", "Octav", "octav-3", "max-2", "maximum", "percentile-", "percentile-abc",
                         "percentile-99.9x", "sigma-", "sigma-4k", "aciq", "aciq-", "aciq-uniform",
                         "mse", "mse-sweep-50", "entropy-1024", "kl", "octavx"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        octav_clip_config c;
        octav_clear_error();
        octav_status st = octav_clip_parse(bad[i], &c);
        CHECK_MSG(st == OCTAV_EINVAL, "'%s' parsed", bad[i]);
        CHECK(octav_last_error()[0] != '\0');
    }
    octav_clip_config c;
    octav_clear_error();
    check_bad_name(octav_clip_parse(NULL, &c));
    check_bad_name(octav_clip_parse("max", NULL));
}

/* ---- layouts -------------------------------------------------------------- */

/* Group of flat index i, from its multi-index (the definitions of quant.h). */
static int64_t group_ref(const octav_shape *shp, octav_group_spec spec, int64_t i) {
    int64_t idx[OCTAV_MAX_DIMS];
    int64_t r = i;
    for (int d = shp->ndim - 1; d >= 0; d--) { idx[d] = r % shp->dim[d]; r /= shp->dim[d]; }
    switch (spec.kind) {
    case OCTAV_GRAN_TENSOR: return 0;
    case OCTAV_GRAN_CHANNEL: {
        int a = spec.axis < 0 ? spec.axis + shp->ndim : spec.axis;
        return idx[a];
    }
    default: {
        int64_t D = shp->ndim ? shp->dim[shp->ndim - 1] : 1;
        int64_t row = 0;
        for (int d = 0; d + 1 < shp->ndim; d++) row = row * shp->dim[d] + idx[d];
        int64_t col = shp->ndim ? idx[shp->ndim - 1] : 0;
        int64_t nb = (D + spec.block - 1) / spec.block;
        return row * nb + col / spec.block;
    }
    }
}

static int64_t ngroups_ref(const octav_shape *shp, octav_group_spec spec) {
    switch (spec.kind) {
    case OCTAV_GRAN_TENSOR: return 1;
    case OCTAV_GRAN_CHANNEL: return shp->dim[spec.axis < 0 ? spec.axis + shp->ndim : spec.axis];
    default: {
        int64_t D = shp->ndim ? shp->dim[shp->ndim - 1] : 1, rows = 1;
        for (int d = 0; d + 1 < shp->ndim; d++) rows *= shp->dim[d];
        return rows * ((D + spec.block - 1) / spec.block);
    }
    }
}

static void check_layout(const octav_shape *shp, octav_group_spec spec) {
    octav_layout lay;
    octav_status st = octav_layout_make(shp, spec, &lay);
    CHECK_MSG(st == OCTAV_OK, "kind %d axis %d block %lld: %s", (int)spec.kind, spec.axis,
              (long long)spec.block, octav_last_error());
    if (st) return;
    int64_t n = 1;
    for (int d = 0; d < shp->ndim; d++) n *= shp->dim[d];
    const int64_t G = ngroups_ref(shp, spec);
    CHECK_EQ_INT(lay.numel, n);
    CHECK_EQ_INT(lay.ngroups, G);
    CHECK_EQ_INT(lay.kind, spec.kind);
    if (spec.kind == OCTAV_GRAN_CHANNEL) CHECK_EQ_INT(lay.axis, spec.axis < 0 ? spec.axis + shp->ndim : spec.axis);
    else CHECK_EQ_INT(lay.axis, -1);
    if (lay.ngroups != G) return;
    int64_t *count = calloc((size_t)G, sizeof *count);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t want = group_ref(shp, spec, i), got = octav_layout_group_of(&lay, i);
        if (want != got && !bad) {
            fprintf(stderr, "  kind %d axis %d block %lld: element %lld in group %lld, expected %lld\n",
                    (int)spec.kind, spec.axis, (long long)spec.block, (long long)i, (long long)got, (long long)want);
            bad = 1;
        }
        count[want]++;
    }
    CHECK(!bad);
    int64_t total = 0;
    for (int64_t g = 0; g < G; g++) {
        CHECK_MSG(octav_layout_group_size(&lay, g) == count[g], "kind %d group %lld: size %lld, expected %lld",
                  (int)spec.kind, (long long)g, (long long)octav_layout_group_size(&lay, g), (long long)count[g]);
        CHECK(count[g] > 0);
        total += count[g];
    }
    CHECK_EQ_INT(total, n);
    free(count);
}

static void test_layout_tensor(void) {
    const octav_shape shapes[] = {{0, {0}}, {1, {1}}, {1, {17}}, {3, {2, 3, 5}}, {4, {3, 1, 4, 2}}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        check_layout(&shapes[i], (octav_group_spec){OCTAV_GRAN_TENSOR, 0, 0});
}

static void test_layout_channel(void) {
    const octav_shape shapes[] = {{1, {7}}, {2, {4, 6}}, {3, {3, 4, 5}}, {4, {2, 3, 1, 5}}, {4, {5, 2, 3, 4}}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int nd = shapes[i].ndim;
        for (int a = -nd; a < nd; a++) /* axes 0, middle, last, and all negative forms */
            check_layout(&shapes[i], (octav_group_spec){OCTAV_GRAN_CHANNEL, a, 0});
    }
    /* channel layout fields: (outer, C, inner) view */
    octav_shape s = {4, {2, 3, 4, 5}};
    octav_layout lay;
    CHECK(octav_layout_make(&s, (octav_group_spec){OCTAV_GRAN_CHANNEL, -2, 0}, &lay) == OCTAV_OK);
    CHECK_EQ_INT(lay.axis, 2);
    CHECK_EQ_INT(lay.outer, 6);
    CHECK_EQ_INT(lay.channels, 4);
    CHECK_EQ_INT(lay.inner, 5);
}

static void test_layout_block(void) {
    const octav_shape shapes[] = {{1, {10}}, {2, {3, 10}}, {3, {2, 3, 7}}, {4, {2, 2, 3, 9}}, {2, {4, 1}}, {0, {0}}};
    const int64_t blocks[] = {1, 2, 3, 4, 7, 9, 10, 11, 64};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        for (size_t j = 0; j < sizeof blocks / sizeof blocks[0]; j++)
            check_layout(&shapes[i], (octav_group_spec){OCTAV_GRAN_BLOCK, 0, blocks[j]});
    /* row length 10 not divisible by 4: blocks 4, 4, 2 per row */
    octav_shape s = {2, {3, 10}};
    octav_layout lay;
    CHECK(octav_layout_make(&s, (octav_group_spec){OCTAV_GRAN_BLOCK, 0, 4}, &lay) == OCTAV_OK);
    CHECK_EQ_INT(lay.ngroups, 9);
    CHECK_EQ_INT(lay.nblocks, 3);
    CHECK_EQ_INT(lay.outer, 3);
    CHECK_EQ_INT(lay.inner, 10);
    CHECK_EQ_INT(octav_layout_group_size(&lay, 2), 2);
    CHECK_EQ_INT(octav_layout_group_size(&lay, 3), 4);
    CHECK_EQ_INT(octav_layout_group_of(&lay, 10), 3);
    /* V larger than the row: one group per row of D elements */
    CHECK(octav_layout_make(&s, (octav_group_spec){OCTAV_GRAN_BLOCK, 0, 25}, &lay) == OCTAV_OK);
    CHECK_EQ_INT(lay.ngroups, 3);
    for (int g = 0; g < 3; g++) CHECK_EQ_INT(octav_layout_group_size(&lay, g), 10);
}

static void test_layout_errors(void) {
    octav_layout lay;
    const octav_shape s3 = {3, {2, 3, 4}};
    const int bad_axes[] = {3, 4, -4, -100, 100};
    for (size_t i = 0; i < sizeof bad_axes / sizeof bad_axes[0]; i++) {
        octav_clear_error();
        CHECK_MSG(octav_layout_make(&s3, (octav_group_spec){OCTAV_GRAN_CHANNEL, bad_axes[i], 0}, &lay) == OCTAV_EINVAL,
                  "axis %d", bad_axes[i]);
        CHECK(octav_last_error()[0] != '\0');
    }
    /* a scalar has no channel axis */
    const octav_shape s0 = {0, {0}};
    CHECK(octav_layout_make(&s0, (octav_group_spec){OCTAV_GRAN_CHANNEL, 0, 0}, &lay) == OCTAV_EINVAL);
    const int64_t bad_blocks[] = {0, -1, -64};
    for (size_t i = 0; i < sizeof bad_blocks / sizeof bad_blocks[0]; i++) {
        octav_clear_error();
        CHECK(octav_layout_make(&s3, (octav_group_spec){OCTAV_GRAN_BLOCK, 0, bad_blocks[i]}, &lay) == OCTAV_EINVAL);
        CHECK(octav_last_error()[0] != '\0');
    }
    /* empty tensor: any dimension 0, for every granularity */
    const octav_shape empties[] = {{1, {0}}, {3, {2, 0, 4}}, {2, {5, 0}}};
    const octav_group_spec specs[] = {{OCTAV_GRAN_TENSOR, 0, 0}, {OCTAV_GRAN_CHANNEL, 0, 0}, {OCTAV_GRAN_BLOCK, 0, 2}};
    for (size_t i = 0; i < sizeof empties / sizeof empties[0]; i++)
        for (size_t j = 0; j < 3; j++) {
            octav_clear_error();
            octav_status st = octav_layout_make(&empties[i], specs[j], &lay);
            CHECK_MSG(st == OCTAV_EEMPTY, "empty shape %zu spec %zu: status %d", i, j, (int)st);
            CHECK(octav_last_error()[0] != '\0');
        }
    /* invalid shapes and arguments */
    const octav_shape neg = {2, {3, -1}}, toomany = {OCTAV_MAX_DIMS + 1, {1}}, negnd = {-1, {1}};
    CHECK(octav_layout_make(&neg, specs[0], &lay) == OCTAV_EINVAL);
    CHECK(octav_layout_make(&toomany, specs[0], &lay) == OCTAV_EINVAL);
    CHECK(octav_layout_make(&negnd, specs[0], &lay) == OCTAV_EINVAL);
    CHECK(octav_layout_make(NULL, specs[0], &lay) == OCTAV_EINVAL);
    CHECK(octav_layout_make(&s3, specs[0], NULL) == OCTAV_EINVAL);
    octav_clear_error();
    CHECK(octav_layout_make(&s3, (octav_group_spec){(octav_granularity)5, 0, 0}, &lay) == OCTAV_EINVAL);
    CHECK(octav_last_error()[0] != '\0');
}

int main(void) {
    RUN(test_grid_constants);
    RUN(test_grid_check_bounds);
    RUN(test_grid_names);
    RUN(test_granularity_names);
    RUN(test_grad_names);
    RUN(test_clip_names);
    RUN(test_clip_name_precision);
    RUN(test_layout_tensor);
    RUN(test_layout_channel);
    RUN(test_layout_block);
    RUN(test_layout_errors);
    return TEST_SUMMARY();
}
