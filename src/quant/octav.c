/* octav.c -- the OCTAV solver (paper-notes §3): the Newton recursion
 *   s_{n+1} = sum_{|x|>s_n} |x| / ( c * #{0<|x|<=s_n} + #{|x|>s_n} )
 * iterated to its exact fixed point, per group.
 *
 * The recursion's control (start, stopping rule, two-cycle rule) lives in
 * one state machine shared by the scalar reference and the fast solver;
 * they differ only in how one step's sum and count are found.
 *
 * Fast solver: one pass takes the group's statistics (non-zero count, sum,
 * max, finiteness). Every later step needs the sum and count of magnitudes
 * above s_n only; each step copies the magnitudes above a guessed lower
 * bound of s_{n+1} (at least 15/16 s_n) into a workspace (order kept), so
 * the next steps read a shrinking compact copy instead of the tensor. On a
 * large group the bounds come from a sample of the group (the start's lower
 * bound for the first pass's copy, then a lower bound of each next iterate);
 * on a small one (a channel) from the worker's last groups: 0.8 of the last
 * start, and 0.9 of the ratios s_{n+1}/s_n. Small groups go in batches of
 * consecutive groups: first passes in a row (one memory stream), then the
 * recursions one step of each group at a time. A step below the copy's
 * bound goes back to the tensor, so a misleading guess costs time, never
 * exactness. Sums are in double over fixed pieces combined in piece order,
 * so the result does not depend on the thread count. */
#include "internal.h"
#include "recursion.h"

#include <omp.h>
#include <string.h>

/* What a worker remembers of the last group it solved, to guess the next
 * one's (neighbouring channels of a weight are alike): its cold start s0 and
 * the ratios s_{k+1}/s_k of its iterates. Guesses only set how much the
 * compact copies keep; a wrong one costs a pass over the group, never
 * exactness. */
#define RATIO_MAX 64
typedef struct {
    double s0;               /* start of the last group solved cold (0: none) */
    double ratio[RATIO_MAX]; /* the last group's s_{k+1}/s_k */
    int nratio;
    int warm;                /* the ratios come from a warm-started group */
} worker_memory;

struct octav_solver {
    float *buf;      /* compact copies */
    size_t buf_cap;  /* floats */
    double *dpart;   /* per-piece sums */
    int64_t *npart;  /* per-piece counts */
    int64_t *cnt;    /* per-piece compact lengths */
    int64_t *hcnt;   /* per-piece non-zero counts (first pass) */
    const float **srcs; /* per-piece data pointers */
    int64_t *lens;   /* per-piece lengths and offsets (2 per piece) */
    size_t part_cap;
    const octav_kernels *K;
    float *smp;      /* per worker, SAMPLE_CAP floats: samples of large groups */
    worker_memory *mem; /* per worker */
    int smp_workers;
};

#define SAMPLE_CAP (16 * 2048)

octav_status octav_solver_create(octav_solver **out) {
    if (!out) return octav_set_error(OCTAV_EINVAL, "NULL solver pointer");
    octav_solver *sv = octav_calloc(1, sizeof *sv);
    if (!sv) return octav_set_error(OCTAV_ENOMEM, "out of memory (solver)");
    sv->K = octav_kernels_best();
    *out = sv;
    return OCTAV_OK;
}

void octav_solver_destroy(octav_solver *sv) {
    if (!sv) return;
    octav_free(sv->buf);
    octav_free(sv->dpart);
    octav_free(sv->npart);
    octav_free(sv->cnt);
    octav_free(sv->hcnt);
    octav_free(sv->smp);
    octav_free(sv->mem);
    octav_free((void *)sv->srcs);
    octav_free(sv->lens);
    octav_free(sv);
}

/* Grows the workspace; keeps it for later calls. */
static octav_status reserve(octav_solver *sv, size_t nfloats, size_t nparts, int workers) {
    if (workers > sv->smp_workers) {
        float *p = octav_malloc((size_t)workers * SAMPLE_CAP * sizeof *p);
        worker_memory *h = octav_calloc((size_t)workers, sizeof *h);
        if (!p || !h) {
            octav_free(p); octav_free(h);
            return octav_set_error(OCTAV_ENOMEM, "out of memory (solver samples)");
        }
        octav_free(sv->smp);
        octav_free(sv->mem);
        sv->smp = p;
        sv->mem = h;
        sv->smp_workers = workers;
    }
    if (nfloats > sv->buf_cap) {
        float *b = octav_malloc(nfloats * sizeof *b);
        if (!b) return octav_set_error(OCTAV_ENOMEM, "out of memory (%zu-float solver workspace)", nfloats);
        octav_free(sv->buf);
        sv->buf = b;
        sv->buf_cap = nfloats;
    }
    if (nparts > sv->part_cap) {
        double *d = octav_malloc(nparts * sizeof *d);
        int64_t *n = octav_malloc(nparts * sizeof *n), *c = octav_malloc(nparts * sizeof *c);
        int64_t *h = octav_malloc(nparts * sizeof *h), *l = octav_malloc(2 * nparts * sizeof *l);
        const float **sp = octav_malloc(nparts * sizeof *sp);
        if (!d || !n || !c || !h || !l || !sp) {
            octav_free(d); octav_free(n); octav_free(c); octav_free(h); octav_free(l); octav_free((void *)sp);
            return octav_set_error(OCTAV_ENOMEM, "out of memory (solver partial sums)");
        }
        octav_free(sv->dpart); octav_free(sv->npart); octav_free(sv->cnt); octav_free(sv->hcnt);
        octav_free(sv->lens); octav_free((void *)sv->srcs);
        sv->dpart = d; sv->npart = n; sv->cnt = c; sv->hcnt = h; sv->lens = l; sv->srcs = sp;
        sv->part_cap = nparts;
    }
    return OCTAV_OK;
}

/* ---- the recursion (recursion.h), driven by a step function ----------- */
typedef step_stats (*step_fn)(void *ctx, double s);

static double recursion(step_fn step, min_above_fn min_above, void *ctx, int64_t nnz, double c, double s0,
                        int max_iter, int32_t *iterations, int *converged) {
    rec_state r;
    rec_init(&r, nnz, c, s0, max_iter);
    while (!r.done) rec_advance(&r, step(ctx, r.s), min_above, ctx);
    if (iterations) *iterations = r.it;
    if (converged) *converged = r.conv;
    return r.s;
}

/* ---- scalar reference --------------------------------------------------- */
typedef struct {
    const float *x;
    int64_t n;
    int uns;
} ref_ctx;

static step_stats ref_step(void *vctx, double s) {
    ref_ctx *r = vctx;
    step_stats st = {0.0, 0};
    for (int64_t i = 0; i < r->n; i++) {
        double m = mag_of(r->x[i], r->uns);
        if (m > s) { st.sum += m; st.n1++; }
    }
    return st;
}

static double ref_min_above(void *vctx, double s) {
    ref_ctx *r = vctx;
    double best = INFINITY;
    for (int64_t i = 0; i < r->n; i++) {
        double m = mag_of(r->x[i], r->uns);
        if (m > s && m < best) best = m;
    }
    return best;
}

double octav_solve_ref(const float *x, int64_t n, octav_grid g, double s0, int max_iter,
                       int32_t *iterations, int *converged) {
    ref_ctx r = {x, n, g.kind == OCTAV_GRID_UNSIGNED};
    double sum = 0;
    int64_t nnz = 0;
    for (int64_t i = 0; i < n; i++) {
        double m = mag_of(x[i], r.uns);
        sum += m;
        nnz += m > 0;
    }
    if (nnz == 0) {
        if (iterations) *iterations = 0;
        if (converged) *converged = 1;
        return 0.0;
    }
    if (!(s0 > 0)) s0 = sum / (double)nnz;
    return recursion(ref_step, ref_min_above, &r, nnz, octav_grid_noise_c(g), s0, max_iter, iterations, converged);
}

double octav_model_cost(const float *x, int64_t n, octav_grid g, double s) {
    const int uns = g.kind == OCTAV_GRID_UNSIGNED;
    const double c = octav_grid_noise_c(g);
    double J = 0;
    for (int64_t i = 0; i < n; i++) {
        double m = mag_of(x[i], uns);
        if (m == 0) continue;
        J += m <= s ? c * s * s : (m - s) * (m - s);
    }
    return J / (double)n;
}

/* ---- fast solver ---------------------------------------------------------
 * A group is a list of pieces (contiguous runs of at most OCTAV_PIECE
 * elements); piece k owns workspace floats [off[k], off[k] + len[k]). */
typedef struct {
    const octav_kernels *K;
    const float *const *src; /* piece k's data in the tensor */
    const int64_t *len;
    const int64_t *off;
    int64_t npieces;
    float *buf;
    int64_t *cnt;            /* compact lengths per piece */
    double *dpart;
    int64_t *npart;
    int64_t *hcnt;           /* per-piece non-zero counts of the first pass */
    float *smp;              /* sample of the group's non-zero magnitudes */
    int64_t nsmp;            /* its length; 0: no (more) predictions from it */
    double c;                /* the grid's noise constant */
    worker_memory *mem;      /* the worker's memory of its last group */
    int npred;               /* ratios in mem usable as guesses for this group */
    int warm;                /* the group started warm */
    int k;                   /* steps taken */
    double last_s;           /* the previous step's s */
    int uns;
    int par;                 /* run pieces in parallel */
    int64_t nnz;             /* non-zero magnitudes of the group */
    double bound;            /* the compact copy holds magnitudes > bound; <0: none */
    int have_first;          /* first_stats answers the step at first_s */
    double first_s;
    step_stats first_stats;
} fast_ctx;

/* One step's work on piece k: sum and count above s, and a new compact copy
 * (bound nb) when recompact is set. */
static void step_piece(fast_ctx *f, int64_t k, int from_buf, int recompact, double nb, double s) {
    const float *in = from_buf ? f->buf + f->off[k] : f->src[k];
    int64_t n = from_buf ? f->cnt[k] : f->len[k];
    int uns = from_buf ? OCTAV_MAGS : f->uns;
    if (recompact) f->cnt[k] = f->K->above_compact(in, n, uns, s, nb, &f->dpart[k], &f->npart[k], f->buf + f->off[k]);
    else f->K->above(in, n, uns, s, &f->dpart[k], &f->npart[k]);
}

/* A lower bound of the next iterate F(t) from the sample (F on the sample,
 * less 4 standard errors of the tail count and 2%). Returns 0 when the
 * sample has too few magnitudes above t. */
static int sample_next_bound(const fast_ctx *f, double t, double *out) {
    double S;
    int64_t n1;
    f->K->above(f->smp, f->nsmp, OCTAV_MAGS, t, &S, &n1);
    if (n1 < 16) return 0;
    *out = S / (f->c * (double)(f->nsmp - n1) + (double)n1) * (1.0 - 4.0 / sqrt((double)n1) - 0.02);
    return 1;
}

/* Each next iterate is guessed no lower than this fraction of the previous
 * group's ratio s_{k+1}/s_k times s_k. */
#define RATIO_MARGIN 0.9

static step_stats fast_step(void *vctx, double s) {
    fast_ctx *f = vctx;
    const int k = f->k++;
    /* ratio k-1 is known now; ratio k of the last group is still unread */
    if (k > 0 && k <= RATIO_MAX) f->mem->ratio[k - 1] = s / f->last_s;
    f->last_s = s;
    if (f->have_first) {
        f->have_first = 0;
        if (s == f->first_s) return f->first_stats;
    }
    const int from_buf = f->bound >= 0 && s >= f->bound;
    double nb = (double)float_floor_of(s * (15.0 / 16.0)), lo;
    /* keep only what the next step can need, as far as the sample tells */
    if (f->nsmp > 0) {
        if (sample_next_bound(f, s, &lo) && lo > nb) nb = (double)float_floor_of(lo);
        else f->nsmp = 0;
    } else if (k < f->npred && s * f->mem->ratio[k] * RATIO_MARGIN > nb) {
        nb = (double)float_floor_of(s * f->mem->ratio[k] * RATIO_MARGIN);
    }
    /* re-compact from the tensor always; from the copy when the bound rises */
    const int recompact = !from_buf || nb > f->bound;
    if (f->par) {
#pragma omp parallel for schedule(static) num_threads(octav_get_threads())
        for (int64_t k = 0; k < f->npieces; k++) step_piece(f, k, from_buf, recompact, nb, s);
    } else {
        for (int64_t k = 0; k < f->npieces; k++) step_piece(f, k, from_buf, recompact, nb, s);
    }
    if (recompact) f->bound = nb;
    step_stats st = {0.0, 0};
    for (int64_t k = 0; k < f->npieces; k++) { st.sum += f->dpart[k]; st.n1 += f->npart[k]; }
    return st;
}

static double fast_min_above(void *vctx, double s) {
    fast_ctx *f = vctx;
    const int from_buf = f->bound >= 0 && s >= f->bound;
    double best = INFINITY;
    for (int64_t k = 0; k < f->npieces; k++) {
        const float *in = from_buf ? f->buf + f->off[k] : f->src[k];
        int64_t n = from_buf ? f->cnt[k] : f->len[k];
        for (int64_t i = 0; i < n; i++) {
            double m = mag_of(in[i], from_buf ? OCTAV_MAGS : f->uns);
            if (m > s && m < best) best = m;
        }
    }
    return best;
}

static int stats_piece(fast_ctx *f, int64_t k) {
    octav_stats st;
    f->K->stats(f->src[k], f->len[k], f->uns, &st);
    f->dpart[k] = st.sum;
    f->npart[k] = st.nnz;
    return st.nonfinite;
}

/* Copies a sample of the group's non-zero finite magnitudes to f->smp:
 * 16 blocks spread over the group, at most 1/64 of it; sets f->nsmp. */
static void take_sample(fast_ctx *f, int64_t n) {
    enum { NB = 16, BMAX = 2048 };
    const int64_t B = n / (64 * NB) < BMAX ? (n / (64 * NB) > 16 ? n / (64 * NB) : 16) : BMAX;
    int64_t ns = 0;
    for (int j = 0; j < NB; j++) {
        int64_t pos = (int64_t)j * (n / NB), k = 0;
        while (k + 1 < f->npieces && f->off[k + 1] <= pos) k++;
        int64_t in = pos - f->off[k], take = f->len[k] - in < B ? f->len[k] - in : B;
        for (int64_t i = 0; i < take; i++) {
            float m = mag_of(f->src[k][in + i], f->uns);
            f->smp[ns] = m;
            ns += m > 0.0f && m < INFINITY;
        }
    }
    f->nsmp = ns;
}

/* A lower bound of the start s0 (the mean of the non-zero magnitudes) from
 * a sample of the group, so that the first pass can keep a compact copy
 * that serves the first step. Returns -1 when the sample says nothing. */
static double predict_start_bound(fast_ctx *f, int64_t n) {
    take_sample(f, n);
    const int64_t ns = f->nsmp;
    if (ns < 64) { f->nsmp = 0; return -1.0; }
    octav_stats st;
    f->K->stats(f->smp, ns, OCTAV_MAGS, &st);
    const double mu = st.sum / (double)ns;
    double q[4] = {0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 4 <= ns; i += 4)
        for (int j = 0; j < 4; j++) q[j] += ((double)f->smp[i + j] - mu) * ((double)f->smp[i + j] - mu);
    for (; i < ns; i++) q[0] += ((double)f->smp[i] - mu) * ((double)f->smp[i] - mu);
    const double sd = sqrt((q[0] + q[1] + q[2] + q[3]) / (double)ns);
    const double lo = mu - 5.0 * sd / sqrt((double)ns) - 0.02 * mu;
    return lo > 0 ? lo : -1.0;
}

/* Groups at least this long are sampled (a bound of the start and of every next iterate). */
#define PREDICT_MIN 16384

/* The first pass: statistics, the sum and count above t and a compact
 * copy of the magnitudes above tc. */
static void first_piece(fast_ctx *f, int64_t k, double t, double tc, int *bad) {
    octav_stats st;
    f->cnt[k] = f->K->first(f->src[k], f->len[k], f->uns, t, tc, &st, &f->dpart[k], &f->npart[k],
                            f->buf + f->off[k]);
    f->hcnt[k] = st.nnz;
    *bad |= st.nonfinite;
}

/* The first pass over one group given as pieces. Returns 1 if a non-finite
 * value was seen. It takes the statistics and keeps a compact copy: with a
 * warm start s0 it also answers the first step (sum and count above s0, copy
 * above 7/8 s0); cold, it gives the sum (above 0) and keeps the magnitudes
 * above a lower bound of the start, so the first step reads the copy:
 * sampled on a large group, 0.8 of the previous group's start on a small one
 * (neighbouring channels of a weight are alike; when they are not, the first
 * step goes back to the group, which is in cache). The worker's memory takes
 * this group's start; f->first_s is the start. */
static int solve_first(fast_ctx *f, double c, double s0) {
    const int64_t n = f->off[f->npieces - 1] + f->len[f->npieces - 1];
    const int warm = s0 > 0;
    double t = 0.0, tc = -1.0;
    f->c = c;
    f->nsmp = 0;
    f->k = 0;
    if (warm) {
        t = s0;
        tc = (double)float_floor_of(s0 * (7.0 / 8.0));
    } else if (n >= PREDICT_MIN) {
        double lo = predict_start_bound(f, n);
        if (lo > 0) tc = (double)float_floor_of(lo);
    } else if (f->mem->s0 > 0) {
        tc = (double)float_floor_of(0.8 * f->mem->s0);
    }
    int bad = 0;
    if (tc >= 0) {
        if (f->par) {
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) reduction(| : bad)
            for (int64_t k = 0; k < f->npieces; k++) first_piece(f, k, t, tc, &bad);
        } else {
            for (int64_t k = 0; k < f->npieces; k++) first_piece(f, k, t, tc, &bad);
        }
    } else if (f->par) {
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) reduction(| : bad)
        for (int64_t k = 0; k < f->npieces; k++) bad |= stats_piece(f, k);
    } else {
        for (int64_t k = 0; k < f->npieces; k++) bad |= stats_piece(f, k);
    }
    if (bad) return 1;
    double sum = 0;
    int64_t nnz = 0, n1 = 0;
    for (int64_t k = 0; k < f->npieces; k++) {
        sum += f->dpart[k];
        n1 += f->npart[k];
        nnz += tc >= 0 ? f->hcnt[k] : f->npart[k];
    }
    f->nnz = nnz;
    f->bound = tc;
    f->have_first = warm;
    f->first_stats = (step_stats){sum, n1};
    if (!warm && nnz > 0) s0 = f->mem->s0 = sum / (double)nnz;
    f->first_s = s0;
    return 0;
}

/* The recursion of a group after its first pass, started: with the
 * worker's guesses (the ratios s_{k+1}/s_k of the groups before it). */
static void steps_begin(fast_ctx *f, int max_iter, rec_state *r) {
    rec_init(r, f->nnz, f->c, f->first_s, f->nnz > 0 ? max_iter : 0);
    f->warm = f->have_first;
    f->npred = f->mem->warm == f->warm ? f->mem->nratio : 0;
}

/* The result of a group's finished recursion. */
static void steps_end(const fast_ctx *f, const rec_state *r, float *scale, int32_t *iters, uint8_t *conv) {
    *scale = f->nnz > 0 ? (float)r->s : 0.0f;
    if (iters) *iters = f->nnz > 0 ? r->it : 0;
    if (conv) *conv = (uint8_t)(f->nnz > 0 ? r->conv : 1);
}

/* Number of pieces of group g (segments split at OCTAV_PIECE). */
static int64_t group_npieces(const octav_layout *lay) {
    octav_span sp = layout_span(lay, 0);
    return sp.nseg * ((sp.seglen + OCTAV_PIECE - 1) / OCTAV_PIECE);
}

static int64_t max_group_size(const octav_layout *lay) {
    if (lay->kind == OCTAV_GRAN_BLOCK) return lay->block < lay->inner ? lay->block : lay->inner;
    return layout_span(lay, 0).nseg * layout_span(lay, 0).seglen;
}

/* Fills piece tables for group g; returns the piece count. */
static int64_t group_pieces(const octav_layout *lay, int64_t g, const float *x,
                            const float **src, int64_t *len, int64_t *off) {
    octav_span sp = layout_span(lay, g);
    int64_t k = 0, o = 0;
    for (int64_t j = 0; j < sp.nseg; j++) {
        const float *seg = x + sp.base + j * sp.stride;
        for (int64_t b = 0; b < sp.seglen; b += OCTAV_PIECE) {
            src[k] = seg + b;
            len[k] = sp.seglen - b < OCTAV_PIECE ? sp.seglen - b : OCTAV_PIECE;
            off[k] = o;
            o += len[k];
            k++;
        }
    }
    return k;
}

typedef struct {
    octav_solver *sv;
    const octav_layout *lay;
    const float *x;
    const float **srcs;
    int64_t *lens;
    int64_t P, gsize;
    int uns;
    double c;
    int max_iter;
    const float *warm;
    float *scales;
    octav_clip_info *info;
    int one;
    int B;           /* groups per batch (workspace slots per worker) */
} solve_args;

/* Groups of at most this many elements are solved BATCH at a time per
 * worker: the first passes of the batch, then the recursions (each in cache,
 * on its compact copy). Consecutive groups of a weight are consecutive in
 * memory, so the first passes read one long stream, and a pass's software
 * prefetches past the end of its row (4 KB ahead, kernels_avx512.c) fetch
 * the row read next; one group at a time, the stream stopped for every
 * group's in-cache steps and those prefetches were wasted. (Measured: the
 * batches alone changed nothing and the longer prefetch alone little; both
 * together took about 10% off a 4096x4096 solve from memory.) Larger groups
 * (which sample themselves and need their own sample through their steps)
 * go one at a time. */
#define BATCH 8
#define BATCH_MAX_GROUP 8192

/* Fills f for group gi in workspace slot `slot` (of a->B per worker). */
static void group_ctx(const solve_args *a, int64_t gi, int w, int slot, fast_ctx *f) {
    const int64_t P = a->P, ws = (int64_t)w * a->B + slot;
    const float **src = a->srcs + ws * P;
    int64_t *len = a->lens + ws * P * 2, *off = len + P;
    f->K = a->sv->K;
    f->npieces = group_pieces(a->lay, gi, a->x, src, len, off);
    f->src = src; f->len = len; f->off = off;
    f->buf = a->sv->buf + ws * a->gsize;
    f->cnt = a->sv->cnt + ws * P;
    f->dpart = a->sv->dpart + ws * P;
    f->npart = a->sv->npart + ws * P;
    f->hcnt = a->sv->hcnt + ws * P;
    f->smp = a->sv->smp + (size_t)w * SAMPLE_CAP;
    f->uns = a->uns;
    f->par = a->one && f->npieces > 1 && octav_get_threads() > 1;
    f->mem = &a->sv->mem[w];
}

/* Groups [g0, g0 + ng) (ng <= a->B) on worker w: the first passes in
 * order, then the recursions interleaved one step at a time (the steps of
 * different groups are independent, so one group's step overlaps the
 * serial end of another's: the reduction, the division, the next bounds). */
static int solve_batch(const solve_args *a, int64_t g0, int ng, int w) {
    fast_ctx f[BATCH];
    rec_state r[BATCH];
    int bad = 0;
    for (int j = 0; j < ng; j++) {
        const int64_t gi = g0 + j;
        group_ctx(a, gi, w, j, &f[j]);
        bad |= solve_first(&f[j], a->c, a->warm ? (double)a->warm[gi] : 0.0);
    }
    if (bad) return 1;
    int active = 0;
    for (int j = 0; j < ng; j++) {
        steps_begin(&f[j], a->max_iter, &r[j]);
        active += !r[j].done;
    }
    while (active > 0)
        for (int j = 0; j < ng; j++)
            if (!r[j].done && rec_advance(&r[j], fast_step(&f[j], r[j].s), fast_min_above, &f[j])) active--;
    /* the next batch's guesses: the ratios its groups wrote (the longest
     * trajectory's count; entries a shorter one did not reach are older) */
    worker_memory *mem = &a->sv->mem[w];
    int nr = 0;
    for (int j = 0; j < ng; j++)
        if (f[j].nnz > 0 && f[j].k - 1 > nr) nr = f[j].k - 1 < RATIO_MAX ? f[j].k - 1 : RATIO_MAX;
    if (nr > 0) {
        mem->nratio = nr;
        mem->warm = f[ng - 1].warm;
    }
    const octav_clip_info *info = a->info;
    for (int j = 0; j < ng; j++) {
        const int64_t gi = g0 + j;
        steps_end(&f[j], &r[j], &a->scales[gi], info && info->iterations ? &info->iterations[gi] : NULL,
                  info && info->converged ? &info->converged[gi] : NULL);
    }
    return 0;
}

/* ---- many small groups (blocks, short channels) ---------------------------
 * OCTAV_LANES groups at a time, one per lane: the kernels transpose their
 * magnitudes into rows of 16 doubles, so every step is a vector loop over
 * the rows, and run the 16 recursions side by side (lanes_load and
 * lanes_solve; each lane sums in element order like the reference, so the
 * results are bit-identical to octav_solve_ref). */
#define SMALL_MAX 256

/* 1 if every group is one contiguous run of at most SMALL_MAX elements. */
static int small_groups(const octav_layout *lay) {
    if (lay->kind == OCTAV_GRAN_BLOCK) return lay->block <= SMALL_MAX || lay->inner <= SMALL_MAX;
    if (lay->kind == OCTAV_GRAN_CHANNEL) return lay->outer == 1 && lay->inner <= SMALL_MAX && lay->channels > 1;
    return 0;
}

/* Floats of solver workspace per worker for the lanes' magnitudes: SMALL_MAX
 * rows of OCTAV_LANES doubles, and room to align them to 64 bytes (32 KB
 * would be a lot of stack on the caller's thread). */
#define SMALL_WORKSPACE (2 * SMALL_MAX * OCTAV_LANES + 16)

static int solve_small_batch(const octav_kernels *K, double *M, const octav_layout *lay, const float *x, int64_t g0,
                             int ng, int uns, double c, int max_iter, const float *warm, float *scales,
                             octav_clip_info *info) {
    double sum[OCTAV_LANES], s[OCTAV_LANES];
    int64_t nnz[OCTAV_LANES], base[OCTAV_LANES], len[OCTAV_LANES], V = 0;
    int32_t it[OCTAV_LANES], conv[OCTAV_LANES];
    /* the groups' runs follow each other (a block row's last block may be
     * shorter): one division for the first, then in step */
    octav_span sp = layout_span(lay, g0);
    int64_t b = lay->kind == OCTAV_GRAN_BLOCK ? g0 % lay->nblocks : 0;
    for (int j = 0; j < OCTAV_LANES; j++) {
        base[j] = len[j] = 0;
        if (j >= ng) continue;
        base[j] = j == 0 ? sp.base : base[j - 1] + len[j - 1];
        len[j] = sp.seglen;
        if (lay->kind == OCTAV_GRAN_BLOCK) {
            len[j] = lay->inner - b * lay->block < lay->block ? lay->inner - b * lay->block : lay->block;
            b = b + 1 == lay->nblocks ? 0 : b + 1;
        }
        V = len[j] > V ? len[j] : V;
    }
    if (K->lanes_load(x, base, len, V, uns, M, sum, nnz)) return 1;
    for (int j = 0; j < OCTAV_LANES; j++)
        s[j] = nnz[j] == 0 ? 0.0 : warm && warm[g0 + j] > 0 ? (double)warm[g0 + j] : sum[j] / (double)nnz[j];
    K->lanes_solve(M, V, nnz, c, max_iter, s, it, conv);
    for (int j = 0; j < ng; j++) {
        scales[g0 + j] = (float)s[j];
        if (info && info->iterations) info->iterations[g0 + j] = it[j];
        if (info && info->converged) info->converged[g0 + j] = (uint8_t)conv[j];
    }
    return 0;
}

octav_status octav_solve_octav_(octav_solver *sv, octav_grid g, const octav_layout *lay, const float *x,
                                int max_iter, const float *warm, float *scales, octav_clip_info *info,
                                const char *name);

octav_status octav_solve_octav_(octav_solver *sv, octav_grid g, const octav_layout *lay, const float *x,
                                int max_iter, const float *warm, float *scales, octav_clip_info *info,
                                const char *name) {
    const int uns = g.kind == OCTAV_GRID_UNSIGNED;
    const double c = octav_grid_noise_c(g);
    if (small_groups(lay)) {
        const int64_t nb = (lay->ngroups + OCTAV_LANES - 1) / OCTAV_LANES;
        const int T = octav_get_threads() < nb ? octav_get_threads() : (int)nb;
        octav_status st = reserve(sv, (size_t)T * SMALL_WORKSPACE, 0, 0);
        if (st) return st;
        int bad = 0;
#pragma omp parallel for schedule(static) num_threads(T) if (nb > 1) reduction(| : bad)
        for (int64_t b = 0; b < nb; b++) {
            int64_t g0 = b * OCTAV_LANES;
            int ng = lay->ngroups - g0 < OCTAV_LANES ? (int)(lay->ngroups - g0) : OCTAV_LANES;
            float *w = sv->buf + (size_t)omp_get_thread_num() * SMALL_WORKSPACE;
            double *M = (double *)(void *)(((uintptr_t)w + 63) & ~(uintptr_t)63);
            bad |= solve_small_batch(sv->K, M, lay, x, g0, ng, uns, c, max_iter, warm, scales, info);
        }
        return bad ? octav_check_finite(x, lay->numel, name) : OCTAV_OK;
    }
    const int64_t G = lay->ngroups, P = group_npieces(lay), gsize = max_group_size(lay);
    const int one = G == 1;
    const int T = one ? 1 : (octav_get_threads() < G ? octav_get_threads() : (int)G);
    const int B = one || gsize > BATCH_MAX_GROUP ? 1 : BATCH;
    /* per worker and slot: gsize floats of workspace, P pieces x (src, len, off) */
    octav_status st = reserve(sv, (size_t)T * (size_t)B * (size_t)gsize, (size_t)T * (size_t)B * (size_t)P, T);
    if (st) return st;
    int bad = 0;
    solve_args a = {sv, lay, x, sv->srcs, sv->lens, P, gsize, uns, c, max_iter, warm, scales, info, one, B};
    const int64_t nbatch = (G + B - 1) / B;
    if (one) {
        bad = solve_batch(&a, 0, 1, 0);
    } else {
#pragma omp parallel for schedule(dynamic, 16 / BATCH) num_threads(T) reduction(| : bad)
        for (int64_t bi = 0; bi < nbatch; bi++)
            bad |= solve_batch(&a, bi * B, G - bi * B < B ? (int)(G - bi * B) : B, omp_get_thread_num());
    }
    if (bad) return octav_check_finite(x, lay->numel, name);
    return OCTAV_OK;
}

/* For tests and benchmarks: run this solver with a given kernel set. */
void octav_solver_set_kernels_(octav_solver *sv, const octav_kernels *K);
void octav_solver_set_kernels_(octav_solver *sv, const octav_kernels *K) {
    if (sv && K) sv->K = K;
}
