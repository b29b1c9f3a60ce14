/* model_seq.c -- the graph nodes of sequence models (model.h): token and
 * position embedding, layer normalisation, GELU, multi-head self-attention
 * with a padding mask, and the selection of one position ([CLS] pooling).
 * Dense layers (a linear over the last axis) are LINEAR nodes with rows > 1,
 * built and run in model.c with the other linear layers.
 *
 * A sequence is a per-sample shape (1, L, d) stored row-major. Attention
 * keeps q, k, v and the probabilities head-major ([H, L, dh], [H, L, L]) in
 * its work buffer so that each head's products are plain strided GEMMs
 * (octav_gemm_batched over n*H matrices). Under QAT the four operands of
 * the two products are fake-quantized (qat.c, roles QR_Q, QR_K, QR_PROBS,
 * QR_V); the masked softmax gives exact zeros at padded keys, which every
 * grid represents exactly, so padding stays invisible after quantization. */
#include <math.h>
#include <string.h>

#include "nn/model_internal.h"

/* ---- building ---------------------------------------------------------------- */
int octav_add_embedding(octav_model *m, const char *name, int in, int vocab, int dim) {
    node *n = model_new_node(m, OCTAV_OP_EMBEDDING, name, in, -1);
    if (!n) return -1;
    if (in != 0 || n->c != 1 || n->h != 1 || vocab < 1 || dim < 1) {
        model_fail(m, OCTAV_EINVAL, "model: embedding '%s' needs the id input (1, 1, L), vocab >= 1 and dim >= 1",
                   n->name);
        return -1;
    }
    int L = n->w;
    n->out = vocab;
    n->c = 1; n->h = L; n->w = dim; n->size = (int64_t)L * dim;
    int64_t td[2] = {vocab, dim}, pd[2] = {L, dim};
    n->t_w = model_add_param(m, n, "token", 2, td, 1, 0, 0);
    n->t_b = model_add_param(m, n, "position", 2, pd, 1, 0, 0);
    return m->err ? -1 : model_node_id(m, n);
}

int octav_add_layernorm(octav_model *m, const char *name, int in) {
    node *n = model_new_node(m, OCTAV_OP_LAYERNORM, name, in, -1);
    if (!n) return -1;
    int64_t d[1] = {n->w};
    n->t_gamma = model_add_param(m, n, "weight", 1, d, 1, 0, 0);
    n->t_beta = model_add_param(m, n, "bias", 1, d, 1, 0, 0);
    return m->err ? -1 : model_node_id(m, n);
}

int octav_add_gelu(octav_model *m, int in) {
    node *n = model_new_node(m, OCTAV_OP_GELU, NULL, in, -1);
    return n ? model_node_id(m, n) : -1;
}

int octav_add_attention(octav_model *m, const char *name, int qkv, int tokens, int heads) {
    node *n = model_new_node(m, OCTAV_OP_ATTENTION, name, qkv, tokens);
    if (!n) return -1;
    int L = n->h, d3 = n->w;
    if (n->c != 1 || d3 % 3 || heads < 1 || (d3 / 3) % heads) {
        model_fail(m, OCTAV_EINVAL, "model: attention '%s': input (%d, %d, %d) is not (1, L, 3d) with %d heads dividing d",
                   n->name, n->c, n->h, n->w, heads);
        return -1;
    }
    if (tokens >= 0) {
        const node *t = &m->nodes[tokens];
        if (tokens != 0 || t->c != 1 || t->h != 1 || t->w != L) {
            model_fail(m, OCTAV_EINVAL, "model: attention '%s': the mask source must be the (1, 1, %d) id input",
                       n->name, L);
            return -1;
        }
    }
    n->groups = heads;
    n->w = d3 / 3;
    n->size = (int64_t)L * n->w;
    return model_node_id(m, n);
}

int octav_add_token(octav_model *m, int in, int pos) {
    node *n = model_new_node(m, OCTAV_OP_TOKEN, NULL, in, -1);
    if (!n) return -1;
    if (n->c != 1 || pos < 0 || pos >= n->h) {
        model_fail(m, OCTAV_EINVAL, "model: token %d of a (%d, %d, %d) input", pos, n->c, n->h, n->w);
        return -1;
    }
    n->k = pos;
    n->c = n->w; n->h = n->w = 1; n->size = n->c;
    return model_node_id(m, n);
}

/* ---- attention work buffer -------------------------------------------------------
 * Per sample (L positions, d features, H heads, dh = d/H):
 *   q k v [3][H][L][dh] | probs [H][L][L] | o [H][L][dh]
 *   dq dk dv [3][H][L][dh] | dprobs [H][L][L]                        */
typedef struct {
    int64_t L, d, H, dh, ld, hll;
    float *q, *k, *v, *p, *o, *dq, *dk, *dv, *dp;   /* batch bases */
} att_bufs;

static att_bufs att_layout(const node *nd, int64_t cap) {
    att_bufs b;
    b.L = nd->h; b.d = nd->w; b.H = nd->groups; b.dh = b.d / b.H;
    b.ld = b.L * b.d; b.hll = b.H * b.L * b.L;
    float *p = nd->aux;
    b.q = p; p += cap * b.ld;
    b.k = p; p += cap * b.ld;
    b.v = p; p += cap * b.ld;
    b.p = p; p += cap * b.hll;
    b.o = p; p += cap * b.ld;
    b.dq = p; p += cap * b.ld;
    b.dk = p; p += cap * b.ld;
    b.dv = p; p += cap * b.ld;
    b.dp = p;
    return b;
}

int64_t seq_aux_per_sample(const octav_model *m, const node *nd) {
    (void)m;
    switch (nd->op) {
    case OCTAV_OP_LAYERNORM: return 2 * (int64_t)nd->c * nd->h;   /* mean, rstd per row */
    case OCTAV_OP_GELU: return 2 * nd->size;                         /* Phi(x) as doubles */
    case OCTAV_OP_ATTENTION: {
        int64_t ld = (int64_t)nd->h * nd->w, hll = (int64_t)nd->groups * nd->h * nd->h;
        return 7 * ld + 2 * hll;
    }
    default: return 0;
    }
}

/* [n, L, 3d] -> three [n, H, L, dh] (or back, adding nothing: overwrite) */
static void split_heads(const att_bufs *b, const float *qkv, int64_t n, float *q, float *k, float *v) {
    float *dst[3] = {q, k, v};
    for (int64_t s = 0; s < n; s++)
        for (int64_t t = 0; t < b->L; t++) {
            const float *row = qkv + (s * b->L + t) * 3 * b->d;
            for (int w = 0; w < 3; w++)
                for (int64_t h = 0; h < b->H; h++)
                    memcpy(dst[w] + s * b->ld + (h * b->L + t) * b->dh, row + w * b->d + h * b->dh,
                           (size_t)b->dh * sizeof(float));
        }
}

static void merge_heads(const att_bufs *b, const float *q, const float *k, const float *v, int64_t n,
                        float *qkv) {
    const float *src[3] = {q, k, v};
    for (int64_t s = 0; s < n; s++)
        for (int64_t t = 0; t < b->L; t++) {
            float *row = qkv + (s * b->L + t) * 3 * b->d;
            for (int w = 0; w < 3; w++) {
                if (!src[w]) continue;
                for (int64_t h = 0; h < b->H; h++)
                    memcpy(row + w * b->d + h * b->dh, src[w] + s * b->ld + (h * b->L + t) * b->dh,
                           (size_t)b->dh * sizeof(float));
            }
        }
}

/* Row softmax over the valid keys (id != 0); masked keys get exactly 0. A
 * row with no valid key cannot happen with a [CLS] first, but would give
 * zeros rather than NaN. */
static void masked_softmax(float *s, const float *ids, int64_t n, int64_t H, int64_t L) {
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (n * H * L * L >= 32768)
    for (int64_t r = 0; r < n * H * L; r++) {
        const float *id = ids ? ids + (r / (H * L)) * L : NULL;
        float *x = s + r * L;
        float mx = -INFINITY;
        for (int64_t j = 0; j < L; j++)
            if ((!id || id[j] != 0.0f) && x[j] > mx) mx = x[j];
        double sum = 0;
        for (int64_t j = 0; j < L; j++) {
            if (id && id[j] == 0.0f) { x[j] = 0.0f; continue; }
            x[j] = expf(x[j] - mx);
            sum += x[j];
        }
        float inv = sum > 0 ? (float)(1.0 / sum) : 0.0f;
        for (int64_t j = 0; j < L; j++) x[j] *= inv;
    }
}

static octav_status quant(octav_model *m, int q, const float *x, int64_t n, int64_t per, const float **out) {
    if (q < 0) { *out = x; return OCTAV_OK; }
    octav_shape s = {.ndim = 2};
    s.dim[0] = n; s.dim[1] = per;
    return qat_forward(m, q, x, &s, out);
}

static octav_status quant_back(octav_model *m, int q, const float *x, int64_t n, int64_t per, float *d) {
    if (q < 0) return OCTAV_OK;
    octav_shape s = {.ndim = 2};
    s.dim[0] = n; s.dim[1] = per;
    return qat_backward(m, q, x, &s, d, d);
}

static octav_status attention_forward(octav_model *m, node *nd, int64_t n) {
    att_bufs b = att_layout(nd, m->cap);
    const float *x = m->nodes[nd->in[0]].y;
    const float *ids = nd->in[1] >= 0 ? m->nodes[nd->in[1]].y : NULL;
    split_heads(&b, x, n, b.q, b.k, b.v);
    const float *q, *k, *p, *v;
    octav_status st;
    if ((st = quant(m, nd->q_att[0], b.q, n, b.ld, &q))) return st;
    if ((st = quant(m, nd->q_att[1], b.k, n, b.ld, &k))) return st;
    const int64_t nb = n * b.H;
    const float alpha = (float)(1.0 / sqrt((double)b.dh));
    octav_gemm_batched(0, 1, nb, b.L, b.L, b.dh, alpha, q, b.dh, b.L * b.dh, k, b.dh, b.L * b.dh, 0.0f, b.p, b.L,
                       b.L * b.L);
    masked_softmax(b.p, ids, n, b.H, b.L);
    if ((st = quant(m, nd->q_att[2], b.p, n, b.hll, &p))) return st;
    if ((st = quant(m, nd->q_att[3], b.v, n, b.ld, &v))) return st;
    octav_gemm_batched(0, 0, nb, b.L, b.dh, b.L, 1.0f, p, b.L, b.L * b.L, v, b.dh, b.L * b.dh, 0.0f, b.o, b.dh,
                       b.L * b.dh);
    /* o [n, H, L, dh] -> y [n, L, d] */
    for (int64_t s = 0; s < n; s++)
        for (int64_t h = 0; h < b.H; h++)
            for (int64_t t = 0; t < b.L; t++)
                memcpy(nd->y + (s * b.L + t) * b.d + h * b.dh, b.o + s * b.ld + (h * b.L + t) * b.dh,
                       (size_t)b.dh * sizeof(float));
    return OCTAV_OK;
}

static const float *quantized(const octav_model *m, int q, const float *x) {
    return q >= 0 && !m->calibrating && m->quantized ? m->quant[q].buf : x;
}

static octav_status attention_backward(octav_model *m, node *nd, int64_t n, float *dx) {
    if (!dx) return OCTAV_OK;
    att_bufs b = att_layout(nd, m->cap);
    const float *q = quantized(m, nd->q_att[0], b.q), *k = quantized(m, nd->q_att[1], b.k);
    const float *p = quantized(m, nd->q_att[2], b.p), *v = quantized(m, nd->q_att[3], b.v);
    /* dy [n, L, d] -> do [n, H, L, dh] (into the forward's o) */
    float *dout = b.o;
    for (int64_t s = 0; s < n; s++)
        for (int64_t h = 0; h < b.H; h++)
            for (int64_t t = 0; t < b.L; t++)
                memcpy(dout + s * b.ld + (h * b.L + t) * b.dh, nd->dy + (s * b.L + t) * b.d + h * b.dh,
                       (size_t)b.dh * sizeof(float));
    const int64_t nb = n * b.H, lh = b.L * b.dh, ll = b.L * b.L;
    /* O = P V: dP = dO V^T, dV = P^T dO */
    octav_gemm_batched(0, 1, nb, b.L, b.L, b.dh, 1.0f, dout, b.dh, lh, v, b.dh, lh, 0.0f, b.dp, b.L, ll);
    octav_gemm_batched(1, 0, nb, b.L, b.dh, b.L, 1.0f, p, b.L, ll, dout, b.dh, lh, 0.0f, b.dv, b.dh, lh);
    octav_status st;
    if ((st = quant_back(m, nd->q_att[2], b.p, n, b.hll, b.dp))) return st;
    if ((st = quant_back(m, nd->q_att[3], b.v, n, b.ld, b.dv))) return st;
    /* softmax (masked entries have p = 0, so their dS is 0) */
    octav_softmax_backward(b.p, b.dp, b.dp, nb * b.L, b.L);
    /* S = alpha Q K^T: dQ = alpha dS K, dK = alpha dS^T Q */
    const float alpha = (float)(1.0 / sqrt((double)b.dh));
    octav_gemm_batched(0, 0, nb, b.L, b.dh, b.L, alpha, b.dp, b.L, ll, k, b.dh, lh, 0.0f, b.dq, b.dh, lh);
    octav_gemm_batched(1, 0, nb, b.L, b.dh, b.L, alpha, b.dp, b.L, ll, q, b.dh, lh, 0.0f, b.dk, b.dh, lh);
    if ((st = quant_back(m, nd->q_att[0], b.q, n, b.ld, b.dq))) return st;
    if ((st = quant_back(m, nd->q_att[1], b.k, n, b.ld, b.dk))) return st;
    merge_heads(&b, b.dq, b.dk, b.dv, n, dx);
    return OCTAV_OK;
}

/* ---- embedding ------------------------------------------------------------------- */
static octav_status embedding_forward(octav_model *m, node *nd, int64_t n) {
    const float *x = m->nodes[nd->in[0]].y;
    const int64_t L = nd->h, d = nd->w, cnt = n * L;
    for (int64_t i = 0; i < cnt; i++) {
        float f = x[i];
        if (!(f >= 0.0f && f < (float)nd->out) || f != floorf(f))
            return octav_set_error(OCTAV_EINVAL, "model: token id %g at sample %lld position %lld is not an integer in [0, %d)",
                                   (double)f, (long long)(i / L), (long long)(i % L), nd->out);
        nd->ids[i] = (int32_t)f;
    }
    octav_embedding_forward(nd->ids, m->tensors[nd->t_w].data, nd->y, cnt, d);
    const float *pos = m->tensors[nd->t_b].data;
    for (int64_t s = 0; s < n; s++) {
        float *y = nd->y + s * L * d;
        for (int64_t e = 0; e < L * d; e++) y[e] += pos[e];
    }
    return OCTAV_OK;
}

static void embedding_backward(octav_model *m, node *nd, int64_t n) {
    const int64_t L = nd->h, d = nd->w;
    octav_embedding_backward(nd->ids, nd->dy, m->tensors[nd->t_w].grad, n * L, nd->out, d);
    float *dp = m->tensors[nd->t_b].grad;
    memset(dp, 0, (size_t)(L * d) * sizeof(float));
    for (int64_t s = 0; s < n; s++) {
        const float *g = nd->dy + s * L * d;
        for (int64_t e = 0; e < L * d; e++) dp[e] += g[e];
    }
}

/* ---- dispatch ---------------------------------------------------------------------- */
octav_status seq_forward(octav_model *m, int i, int64_t n) {
    node *nd = &m->nodes[i];
    const node *a = &m->nodes[nd->in[0]];
    switch (nd->op) {
    case OCTAV_OP_EMBEDDING: return embedding_forward(m, nd, n);
    case OCTAV_OP_LAYERNORM: {
        int64_t rows = n * nd->c * nd->h;
        octav_layernorm_forward(a->y, m->tensors[nd->t_gamma].data, m->tensors[nd->t_beta].data, nd->y, nd->aux,
                                nd->aux + rows, rows, nd->w, 1e-5f);
        return OCTAV_OK;
    }
    case OCTAV_OP_GELU:   /* aux: doubles, 8-byte aligned (malloc'ed, even float offsets) */
        octav_gelu_forward_save(a->y, nd->y, (double *)(void *)nd->aux, n * nd->size);
        return OCTAV_OK;
    case OCTAV_OP_ATTENTION: return attention_forward(m, nd, n);
    case OCTAV_OP_TOKEN:
        for (int64_t s = 0; s < n; s++)
            memcpy(nd->y + s * nd->size, a->y + s * a->size + (int64_t)nd->k * a->w, (size_t)nd->size * sizeof(float));
        return OCTAV_OK;
    default: return octav_set_error(OCTAV_EINVAL, "model: unexpected op %d", (int)nd->op);
    }
}

octav_status seq_backward(octav_model *m, int i, int64_t n, float *dx) {
    node *nd = &m->nodes[i];
    const node *a = &m->nodes[nd->in[0]];
    switch (nd->op) {
    case OCTAV_OP_EMBEDDING: embedding_backward(m, nd, n); return OCTAV_OK;
    case OCTAV_OP_LAYERNORM: {
        int64_t rows = n * nd->c * nd->h;
        /* dgamma / dbeta are needed even when the input takes no gradient */
        float *d = dx ? dx : m->scratch;
        octav_layernorm_backward(a->y, m->tensors[nd->t_gamma].data, nd->aux, nd->aux + rows, nd->dy, d,
                                 m->tensors[nd->t_gamma].grad, m->tensors[nd->t_beta].grad, rows, nd->w);
        return OCTAV_OK;
    }
    case OCTAV_OP_GELU:
        if (dx) octav_gelu_backward_saved(a->y, (const double *)(const void *)nd->aux, nd->dy, dx, n * nd->size);
        return OCTAV_OK;
    case OCTAV_OP_ATTENTION: return attention_backward(m, nd, n, dx);
    case OCTAV_OP_TOKEN:
        if (!dx) return OCTAV_OK;
        memset(dx, 0, (size_t)(n * a->size) * sizeof(float));
        for (int64_t s = 0; s < n; s++)
            memcpy(dx + s * a->size + (int64_t)nd->k * a->w, nd->dy + s * nd->size, (size_t)nd->size * sizeof(float));
        return OCTAV_OK;
    default: return octav_set_error(OCTAV_EINVAL, "model: unexpected op %d", (int)nd->op);
    }
}
