/* norm.c -- batch normalisation (train / eval / backward) and layer
 * normalisation (forward / backward), PyTorch semantics.
 *
 * Statistics are summed in double, in an order fixed by the shape alone:
 *  - BatchNorm with hw >= BN_LANES_MIN: one channel at a time (the channels
 *    run in parallel); each (sample, channel) plane is summed into 8 lanes
 *    (element j of the plane into lane j % 8), the lanes added in order at
 *    the end. The forward pass sums x - x0 and (x - x0)^2 with x0 the
 *    channel's first element (a shifted single pass: exact differences in
 *    double, no cancellation for data far from zero).
 *  - BatchNorm with small hw (hw == 1 after a linear layer): blocks of
 *    BN_CBLOCK channels (blocks in parallel), one plain double accumulator
 *    per channel, elements in memory order.
 *  - LayerNorm: one row at a time (rows in parallel), two passes over the
 *    row (mean, then squared deviations) into 8 lanes; dgamma / dbeta sum
 *    over rows in row order per column (columns in parallel).
 * So results never depend on the thread count.
 *
 * The normalised output is (x - mean) * (gamma * rstd) + beta in float, the
 * same expression in training and evaluation. Extensions beyond nn.h:
 * gamma / beta may be NULL (1 and 0: affine=False); mean, rstd, run_mean and
 * run_var may be NULL (not saved / not tracked). With a single value per
 * channel (n * hw == 1; PyTorch refuses it) the running variance is updated
 * with the biased variance 0 instead of the undefined unbiased one.
 * Left out: BatchNorm in other layouts (NHWC), group / instance norm. */
#include <math.h>
#include <string.h>

#include "octav/nn.h"

#if OCTAV_HAVE_X86_SIMD && defined(__GNUC__) && !defined(__clang__)
#define OCTAV_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define OCTAV_CLONES
#endif

#define LANES 8
#define PAR_MIN 32768        /* elements below which loops stay serial        */
#define BN_LANES_MIN 16      /* hw from which a channel is summed in lanes    */
#define BN_CBLOCK 64         /* channels per block on the small-hw path       */
#define LN_CBLOCK 256        /* columns per block of the dgamma / dbeta sums  */

static double lanes_total(const double *a) {
    double t = 0;
    for (int l = 0; l < LANES; l++) t += a[l];
    return t;
}

/* s[l] += x[j] - shift, q[l] += (x[j] - shift)^2 for l = j % LANES. */
OCTAV_CLONES
static void acc_shifted(const float *x, int64_t len, double shift, double *s_out, double *q_out) {
    double s[LANES], q[LANES];
    memcpy(s, s_out, sizeof s);
    memcpy(q, q_out, sizeof q);
    int64_t j = 0;
    for (; j + LANES <= len; j += LANES)
        for (int l = 0; l < LANES; l++) {
            double d = (double)x[j + l] - shift;
            s[l] += d;
            q[l] += d * d;
        }
    for (int l = 0; j < len; j++, l++) {
        double d = (double)x[j] - shift;
        s[l] += d;
        q[l] += d * d;
    }
    memcpy(s_out, s, sizeof s);
    memcpy(q_out, q, sizeof q);
}

/* s[l] += dy[j], q[l] += dy[j] * (x[j] - mean) for l = j % LANES. */
OCTAV_CLONES
static void acc_dy_dyx(const float *x, const float *dy, int64_t len, double mean, double *s_out,
                       double *q_out) {
    double s[LANES], q[LANES];
    memcpy(s, s_out, sizeof s);
    memcpy(q, q_out, sizeof q);
    int64_t j = 0;
    for (; j + LANES <= len; j += LANES)
        for (int l = 0; l < LANES; l++) {
            double g = (double)dy[j + l];
            s[l] += g;
            q[l] += g * ((double)x[j + l] - mean);
        }
    for (int l = 0; j < len; j++, l++) {
        double g = (double)dy[j];
        s[l] += g;
        q[l] += g * ((double)x[j] - mean);
    }
    memcpy(s_out, s, sizeof s);
    memcpy(q_out, q, sizeof q);
}

/* y = (x - m) * a + b */
OCTAV_CLONES
static void affine_run(const float *x, float *y, int64_t len, float m, float a, float b) {
#pragma omp simd
    for (int64_t j = 0; j < len; j++) y[j] = (x[j] - m) * a + b;
}

/* dx = a * dy - (b * (x - m) + c) */
OCTAV_CLONES
static void bn_dx_run(const float *x, const float *dy, float *dx, int64_t len, float m, float a,
                      float b, float c) {
#pragma omp simd
    for (int64_t j = 0; j < len; j++) dx[j] = a * dy[j] - (b * (x[j] - m) + c);
}

/* ---- batchnorm ------------------------------------------------------------ */

typedef struct {
    float mean, scale, shift; /* y = (x - mean) * scale + shift */
} bn_coef;

/* Finishes one channel's statistics: saved mean / rstd, running stats, and
 * the coefficients of the normalisation. s, q: sums of d and d^2 with
 * d = x - x0 over cnt values. */
static bn_coef bn_finish(double s, double q, double x0, int64_t cnt, int64_t ch, const float *gamma,
                         const float *beta, float *mean, float *rstd, float *run_mean,
                         float *run_var, float momentum, float eps) {
    double m = s / (double)cnt;
    double var = q / (double)cnt - m * m;
    if (var < 0) var = 0;
    double mu = x0 + m;
    double r = 1.0 / sqrt(var + (double)eps);
    float mf = (float)mu, rf = (float)r;
    if (mean) mean[ch] = mf;
    if (rstd) rstd[ch] = rf;
    double mom = (double)momentum;
    if (run_mean) run_mean[ch] = (float)((1.0 - mom) * (double)run_mean[ch] + mom * mu);
    if (run_var) {
        double unbiased = cnt > 1 ? var * (double)cnt / (double)(cnt - 1) : var;
        run_var[ch] = (float)((1.0 - mom) * (double)run_var[ch] + mom * unbiased);
    }
    float g = gamma ? gamma[ch] : 1.0f;
    bn_coef k = {mf, g * rf, beta ? beta[ch] : 0.0f};
    return k;
}

void octav_batchnorm_forward_train(const float *x, const float *gamma, const float *beta, float *y,
                                   float *mean, float *rstd, float *run_mean, float *run_var,
                                   int64_t n, int64_t c, int64_t hw, float momentum, float eps) {
    if (n <= 0 || c <= 0 || hw <= 0) return;
    const int64_t total = n * c * hw, cs = c * hw, cnt = n * hw;
    const int nt = octav_get_threads();
    if (hw >= BN_LANES_MIN) {
#pragma omp parallel for schedule(static) num_threads(nt) if (total >= PAR_MIN)
        for (int64_t ch = 0; ch < c; ch++) {
            const float *xc = x + ch * hw;
            double x0 = (double)xc[0], s[LANES] = {0}, q[LANES] = {0};
            for (int64_t i = 0; i < n; i++) acc_shifted(xc + i * cs, hw, x0, s, q);
            bn_coef k = bn_finish(lanes_total(s), lanes_total(q), x0, cnt, ch, gamma, beta, mean,
                                  rstd, run_mean, run_var, momentum, eps);
            for (int64_t i = 0; i < n; i++)
                affine_run(xc + i * cs, y + ch * hw + i * cs, hw, k.mean, k.scale, k.shift);
        }
        return;
    }
    const int64_t nblk = (c + BN_CBLOCK - 1) / BN_CBLOCK;
#pragma omp parallel for schedule(static) num_threads(nt) if (total >= PAR_MIN && nblk > 1)
    for (int64_t b = 0; b < nblk; b++) {
        const int64_t c0 = b * BN_CBLOCK, nc = c - c0 < BN_CBLOCK ? c - c0 : BN_CBLOCK;
        double s[BN_CBLOCK], q[BN_CBLOCK], x0[BN_CBLOCK];
        bn_coef k[BN_CBLOCK];
        for (int64_t cc = 0; cc < nc; cc++) {
            s[cc] = q[cc] = 0;
            x0[cc] = (double)x[(c0 + cc) * hw];
        }
        for (int64_t i = 0; i < n; i++) {
            const float *xi = x + i * cs + c0 * hw;
            for (int64_t cc = 0; cc < nc; cc++)
                for (int64_t j = 0; j < hw; j++) {
                    double d = (double)xi[cc * hw + j] - x0[cc];
                    s[cc] += d;
                    q[cc] += d * d;
                }
        }
        for (int64_t cc = 0; cc < nc; cc++)
            k[cc] = bn_finish(s[cc], q[cc], x0[cc], cnt, c0 + cc, gamma, beta, mean, rstd, run_mean,
                              run_var, momentum, eps);
        for (int64_t i = 0; i < n; i++)
            for (int64_t cc = 0; cc < nc; cc++) {
                int64_t o = i * cs + (c0 + cc) * hw;
                affine_run(x + o, y + o, hw, k[cc].mean, k[cc].scale, k[cc].shift);
            }
    }
}

static bn_coef bn_eval_coef(const float *gamma, const float *beta, const float *run_mean,
                            const float *run_var, int64_t ch, float eps) {
    double r = 1.0 / sqrt((double)run_var[ch] + (double)eps);
    double g = gamma ? (double)gamma[ch] : 1.0;
    bn_coef k = {run_mean[ch], (float)(g * r), beta ? beta[ch] : 0.0f};
    return k;
}

void octav_batchnorm_forward_eval(const float *x, const float *gamma, const float *beta,
                                  const float *run_mean, const float *run_var, float *y, int64_t n,
                                  int64_t c, int64_t hw, float eps) {
    if (n <= 0 || c <= 0 || hw <= 0) return;
    const int64_t total = n * c * hw, cs = c * hw;
    const int nt = octav_get_threads();
    if (hw >= BN_LANES_MIN) { /* one coefficient per plane of >= 16 values */
#pragma omp parallel for schedule(static) num_threads(nt) if (total >= PAR_MIN)
        for (int64_t q = 0; q < n * c; q++) {
            bn_coef k = bn_eval_coef(gamma, beta, run_mean, run_var, q % c, eps);
            affine_run(x + q * hw, y + q * hw, hw, k.mean, k.scale, k.shift);
        }
        return;
    }
    const int64_t nblk = (c + BN_CBLOCK - 1) / BN_CBLOCK;
#pragma omp parallel for schedule(static) num_threads(nt) if (total >= PAR_MIN && nblk > 1)
    for (int64_t b = 0; b < nblk; b++) {
        const int64_t c0 = b * BN_CBLOCK, nc = c - c0 < BN_CBLOCK ? c - c0 : BN_CBLOCK;
        bn_coef k[BN_CBLOCK];
        for (int64_t cc = 0; cc < nc; cc++) k[cc] = bn_eval_coef(gamma, beta, run_mean, run_var, c0 + cc, eps);
        for (int64_t i = 0; i < n; i++)
            for (int64_t cc = 0; cc < nc; cc++) {
                const int64_t o = i * cs + (c0 + cc) * hw;
                for (int64_t j = 0; j < hw; j++) y[o + j] = (x[o + j] - k[cc].mean) * k[cc].scale + k[cc].shift;
            }
    }
}

/* Backward of one channel from S1 = sum dy and S2 = sum dy (x - mean):
 * dbeta = S1, dgamma = rstd S2,
 * dx = gamma rstd (dy - S1/cnt - (x - mean) rstd^2 S2/cnt). */
typedef struct {
    float a, b, c;
} bn_bcoef;

static bn_bcoef bn_back_finish(double s1, double s2, int64_t cnt, int64_t ch, const float *gamma,
                               const float *rstd, float *dgamma, float *dbeta) {
    double r = (double)rstd[ch], g = gamma ? (double)gamma[ch] : 1.0;
    if (dbeta) dbeta[ch] = (float)s1;
    if (dgamma) dgamma[ch] = (float)(r * s2);
    double a = g * r;
    bn_bcoef k = {(float)a, (float)(a * r * r * s2 / (double)cnt), (float)(a * s1 / (double)cnt)};
    return k;
}

void octav_batchnorm_backward(const float *x, const float *gamma, const float *mean,
                              const float *rstd, const float *dy, float *dx, float *dgamma,
                              float *dbeta, int64_t n, int64_t c, int64_t hw) {
    if (n <= 0 || c <= 0 || hw <= 0) return;
    const int64_t total = n * c * hw, cs = c * hw, cnt = n * hw;
    const int nt = octav_get_threads();
    if (hw >= BN_LANES_MIN) {
#pragma omp parallel for schedule(static) num_threads(nt) if (total >= PAR_MIN)
        for (int64_t ch = 0; ch < c; ch++) {
            const int64_t o = ch * hw;
            double s[LANES] = {0}, q[LANES] = {0};
            for (int64_t i = 0; i < n; i++) acc_dy_dyx(x + o + i * cs, dy + o + i * cs, hw, mean[ch], s, q);
            bn_bcoef k = bn_back_finish(lanes_total(s), lanes_total(q), cnt, ch, gamma, rstd, dgamma, dbeta);
            if (dx)
                for (int64_t i = 0; i < n; i++)
                    bn_dx_run(x + o + i * cs, dy + o + i * cs, dx + o + i * cs, hw, mean[ch], k.a, k.b, k.c);
        }
        return;
    }
    const int64_t nblk = (c + BN_CBLOCK - 1) / BN_CBLOCK;
#pragma omp parallel for schedule(static) num_threads(nt) if (total >= PAR_MIN && nblk > 1)
    for (int64_t b = 0; b < nblk; b++) {
        const int64_t c0 = b * BN_CBLOCK, nc = c - c0 < BN_CBLOCK ? c - c0 : BN_CBLOCK;
        double s[BN_CBLOCK], q[BN_CBLOCK], mu[BN_CBLOCK];
        bn_bcoef k[BN_CBLOCK];
        for (int64_t cc = 0; cc < nc; cc++) {
            s[cc] = q[cc] = 0;
            mu[cc] = (double)mean[c0 + cc];
        }
        for (int64_t i = 0; i < n; i++) {
            const int64_t o = i * cs + c0 * hw;
            for (int64_t cc = 0; cc < nc; cc++)
                for (int64_t j = 0; j < hw; j++) {
                    double g = (double)dy[o + cc * hw + j];
                    s[cc] += g;
                    q[cc] += g * ((double)x[o + cc * hw + j] - mu[cc]);
                }
        }
        for (int64_t cc = 0; cc < nc; cc++)
            k[cc] = bn_back_finish(s[cc], q[cc], cnt, c0 + cc, gamma, rstd, dgamma, dbeta);
        if (dx)
            for (int64_t i = 0; i < n; i++)
                for (int64_t cc = 0; cc < nc; cc++) {
                    int64_t o = i * cs + (c0 + cc) * hw;
                    bn_dx_run(x + o, dy + o, dx + o, hw, mean[c0 + cc], k[cc].a, k[cc].b, k[cc].c);
                }
    }
}

/* ---- layernorm ------------------------------------------------------------ */

/* y = ((x - m) * r) * g + b with optional g, b */
OCTAV_CLONES
static void ln_out_run(const float *x, const float *gamma, const float *beta, float *y, int64_t d,
                       float m, float r) {
    if (gamma && beta) {
#pragma omp simd
        for (int64_t j = 0; j < d; j++) y[j] = ((x[j] - m) * r) * gamma[j] + beta[j];
    } else {
        for (int64_t j = 0; j < d; j++)
            y[j] = ((x[j] - m) * r) * (gamma ? gamma[j] : 1.0f) + (beta ? beta[j] : 0.0f);
    }
}

void octav_layernorm_forward(const float *x, const float *gamma, const float *beta, float *y,
                             float *mean, float *rstd, int64_t rows, int64_t d, float eps) {
    if (rows <= 0 || d <= 0) return;
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (rows * d >= PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * d;
        double s[LANES] = {0}, q[LANES] = {0}, zero[LANES] = {0};
        acc_shifted(xr, d, 0.0, s, zero);
        double mu = lanes_total(s) / (double)d;
        memset(s, 0, sizeof s);
        acc_shifted(xr, d, mu, s, q);
        double var = lanes_total(q) / (double)d;
        float mf = (float)mu, rf = (float)(1.0 / sqrt(var + (double)eps));
        if (mean) mean[r] = mf;
        if (rstd) rstd[r] = rf;
        ln_out_run(xr, gamma, beta, y + r * d, d, mf, rf);
    }
}

/* Sums over one row of g = dy * gamma and g * xhat, xhat = (x - m) r
 * (element j into lane j % LANES; gamma NULL: 1). */
OCTAV_CLONES
static void ln_row_sums(const float *x, const float *dy, const float *gamma, int64_t d, double m,
                        double r, double *a_out, double *b_out) {
    double a[LANES] = {0}, b[LANES] = {0};
    int64_t j = 0;
    if (gamma) {
        for (; j + LANES <= d; j += LANES)
            for (int l = 0; l < LANES; l++) {
                double g = (double)dy[j + l] * (double)gamma[j + l];
                a[l] += g;
                b[l] += g * (((double)x[j + l] - m) * r);
            }
    } else {
        for (; j + LANES <= d; j += LANES)
            for (int l = 0; l < LANES; l++) {
                double g = (double)dy[j + l];
                a[l] += g;
                b[l] += g * (((double)x[j + l] - m) * r);
            }
    }
    for (int l = 0; j < d; j++, l++) {
        double g = (double)dy[j] * (gamma ? (double)gamma[j] : 1.0);
        a[l] += g;
        b[l] += g * (((double)x[j] - m) * r);
    }
    *a_out = lanes_total(a);
    *b_out = lanes_total(b);
}

/* dx = r (g - ma - xhat mb), g = dy * gamma, xhat = (x - m) r */
OCTAV_CLONES
static void ln_dx_run(const float *x, const float *dy, const float *gamma, float *dx, int64_t d,
                      float m, float r, float ma, float mb) {
    if (gamma) {
#pragma omp simd
        for (int64_t j = 0; j < d; j++) dx[j] = r * ((dy[j] * gamma[j] - ma) - ((x[j] - m) * r) * mb);
    } else {
#pragma omp simd
        for (int64_t j = 0; j < d; j++) dx[j] = r * ((dy[j] - ma) - ((x[j] - m) * r) * mb);
    }
}

/* dgamma[j] += dy * xhat, dbeta[j] += dy over one row's columns [0, nc). */
OCTAV_CLONES
static void ln_col_acc(const float *x, const float *dy, int64_t nc, double m, double r, double *sg,
                       double *sb) {
#pragma omp simd
    for (int64_t j = 0; j < nc; j++) {
        double g = (double)dy[j];
        sg[j] += g * (((double)x[j] - m) * r);
        sb[j] += g;
    }
}

void octav_layernorm_backward(const float *x, const float *gamma, const float *mean,
                              const float *rstd, const float *dy, float *dx, float *dgamma,
                              float *dbeta, int64_t rows, int64_t d) {
    if (rows <= 0 || d <= 0) return;
    const int nt = octav_get_threads();
    const int par = rows * d >= PAR_MIN;
    if (dx) {
#pragma omp parallel for schedule(static) num_threads(nt) if (par && rows > 1)
        for (int64_t r = 0; r < rows; r++) {
            const int64_t o = r * d;
            double a, b;
            ln_row_sums(x + o, dy + o, gamma, d, (double)mean[r], (double)rstd[r], &a, &b);
            ln_dx_run(x + o, dy + o, gamma, dx + o, d, mean[r], rstd[r], (float)(a / (double)d),
                      (float)(b / (double)d));
        }
    }
    if (dgamma || dbeta) {
        const int64_t nblk = (d + LN_CBLOCK - 1) / LN_CBLOCK;
#pragma omp parallel for schedule(static) num_threads(nt) if (par && nblk > 1)
        for (int64_t blk = 0; blk < nblk; blk++) {
            const int64_t j0 = blk * LN_CBLOCK, nc = d - j0 < LN_CBLOCK ? d - j0 : LN_CBLOCK;
            double sg[LN_CBLOCK] = {0}, sb[LN_CBLOCK] = {0};
            for (int64_t r = 0; r < rows; r++)
                ln_col_acc(x + r * d + j0, dy + r * d + j0, nc, (double)mean[r], (double)rstd[r], sg, sb);
            for (int64_t j = 0; j < nc; j++) {
                if (dgamma) dgamma[j0 + j] = (float)sg[j];
                if (dbeta) dbeta[j0 + j] = (float)sb[j];
            }
        }
    }
}
