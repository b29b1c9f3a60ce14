/* data.c -- what training needs around a dataset: a seeded validation
 * split, normalisation, permutations and batch gathering with random-crop
 * and flip augmentation. Reading the files is src/io's job. */
#include <math.h>
#include <string.h>

#include "nn/model_internal.h"

void octav_permutation(int64_t *perm, int64_t n, uint64_t seed) {
    octav_rng r;
    octav_rng_seed(&r, seed);
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)octav_rng_below(&r, (uint64_t)i + 1);
        int64_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
}

static octav_status alloc_like(const octav_dataset *ds, int64_t n, octav_dataset *out) {
    memset(out, 0, sizeof *out);
    if (n == 0) return OCTAV_OK;
    int64_t per = ds->c * ds->h * ds->w;
    out->images = octav_malloc((size_t)(n * per) * sizeof(float));
    out->labels = octav_malloc((size_t)n * sizeof(int32_t));
    if (!out->images || !out->labels) {
        octav_free(out->images); octav_free(out->labels);
        memset(out, 0, sizeof *out);
        return octav_set_error(OCTAV_ENOMEM, "dataset: out of memory for %lld images", (long long)n);
    }
    out->n = n; out->c = ds->c; out->h = ds->h; out->w = ds->w;
    out->nclasses = ds->nclasses;
    return OCTAV_OK;
}

octav_status octav_dataset_split(const octav_dataset *ds, int64_t nval, uint64_t seed,
                                 octav_dataset *train, octav_dataset *val) {
    if (!ds || !train || !val || nval < 0 || nval >= ds->n)
        return octav_set_error(OCTAV_EINVAL, "dataset split: %lld validation images of %lld (need fewer)",
                               (long long)nval, ds ? (long long)ds->n : 0LL);
    int64_t *perm = octav_malloc((size_t)ds->n * sizeof *perm);
    if (!perm) return octav_set_error(OCTAV_ENOMEM, "dataset split: out of memory");
    octav_permutation(perm, ds->n, seed);
    octav_status st = alloc_like(ds, ds->n - nval, train);
    if (!st) st = alloc_like(ds, nval, val);
    if (st) { octav_dataset_free(train); octav_free(perm); return st; }
    int64_t per = ds->c * ds->h * ds->w;
    for (int64_t i = 0; i < ds->n; i++) {
        octav_dataset *d = i < train->n ? train : val;
        int64_t j = i < train->n ? i : i - train->n;
        memcpy(d->images + j * per, ds->images + perm[i] * per, (size_t)per * sizeof(float));
        d->labels[j] = ds->labels[perm[i]];
    }
    octav_free(perm);
    return OCTAV_OK;
}

void octav_dataset_stats(const octav_dataset *ds, float *mean, float *std) {
    int64_t hw = ds->h * ds->w;
    for (int64_t c = 0; c < ds->c; c++) {
        double s = 0, ss = 0;
        for (int64_t i = 0; i < ds->n; i++) {
            const float *p = ds->images + (i * ds->c + c) * hw;
            for (int64_t k = 0; k < hw; k++) { s += p[k]; ss += (double)p[k] * p[k]; }
        }
        double cnt = (double)(ds->n * hw), mu = s / cnt, var = ss / cnt - mu * mu;
        mean[c] = (float)mu;
        std[c] = (float)(var > 1e-12 ? sqrt(var) : 1.0);
    }
}

void octav_dataset_normalize(octav_dataset *ds, const float *mean, const float *std) {
    int64_t hw = ds->h * ds->w;
    for (int64_t i = 0; i < ds->n; i++)
        for (int64_t c = 0; c < ds->c; c++) {
            float *p = ds->images + (i * ds->c + c) * hw;
            float mu = mean[c], inv = 1.0f / std[c];
            for (int64_t k = 0; k < hw; k++) p[k] = (p[k] - mu) * inv;
        }
}

void octav_batch_gather(const octav_dataset *ds, const int64_t *idx, int64_t n, int pad, int flip,
                        uint64_t seed, float *x, int32_t *y) {
    int64_t C = ds->c, H = ds->h, W = ds->w, per = C * H * W;
    #pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (n * per > 65536)
    for (int64_t i = 0; i < n; i++) {
        const float *src = ds->images + idx[i] * per;
        float *dst = x + i * per;
        y[i] = ds->labels[idx[i]];
        if (pad <= 0 && !flip) { memcpy(dst, src, (size_t)per * sizeof(float)); continue; }
        uint64_t r = octav_hash_u64(seed, (uint64_t)i);
        int64_t dy = pad > 0 ? (int64_t)(r % (uint64_t)(2 * pad + 1)) - pad : 0;
        int64_t dx = pad > 0 ? (int64_t)((r >> 16) % (uint64_t)(2 * pad + 1)) - pad : 0;
        int mirror = flip && ((r >> 40) & 1);
        for (int64_t c = 0; c < C; c++)
            for (int64_t yy = 0; yy < H; yy++)
                for (int64_t xx = 0; xx < W; xx++) {
                    int64_t sy = yy + dy, sx = (mirror ? W - 1 - xx : xx) + dx;
                    dst[(c * H + yy) * W + xx] = (sy >= 0 && sy < H && sx >= 0 && sx < W)
                                                     ? src[(c * H + sy) * W + sx] : 0.0f;
                }
    }
}
