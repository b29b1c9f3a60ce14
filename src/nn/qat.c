/* qat.c -- quantization-aware training: a quantizer on the weight and on
 * the input of every conv and linear node, with its clipping scalars
 * chosen by dynamic OCTAV, a static calibration, a per-step baseline, or
 * learned (PACT, LSQ), and its gradient estimator (STE / PWL / MAD).
 *
 * Recipe (paper §5): weights use the signed full grid, one scale per output
 * channel for conv and per tensor for linear (configurable); inputs one
 * scale per tensor, on the unsigned grid when the producer's output is
 * non-negative (after ReLU / ReLU6, through pools), signed otherwise. The
 * first conv/linear node and the last linear node use first_last_bits.
 * Dynamic OCTAV is warm-started from the previous step's scalars.
 * Evaluation uses the stored activation scalars (as of the last training
 * step, or the static calibration); weight scalars of per-step methods are
 * re-solved from the current weights. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "nn/model_internal.h"

octav_qat_config octav_qat_default(void) {
    octav_qat_config q;
    memset(&q, 0, sizeof q);
    q.bits = 4;
    q.first_last_bits = 8;
    q.mode = OCTAV_QCLIP_OCTAV;
    q.clip = octav_clip_default(OCTAV_CLIP_OCTAV);
    q.weight_grad = OCTAV_GRAD_MAD;
    q.act_grad = OCTAV_GRAD_PWL;
    q.conv_weight_gran = OCTAV_GRAN_CHANNEL;
    q.linear_weight_gran = OCTAV_GRAN_TENSOR;
    q.calib_batches = 10;
    return q;
}

octav_status octav_qat_parse_clip(const char *s, octav_qat_config *q) {
    if (!s || !q) return octav_set_error(OCTAV_EINVAL, "--clip: NULL");
    if (strcmp(s, "octav") == 0) {
        q->mode = OCTAV_QCLIP_OCTAV;
        q->clip = octav_clip_default(OCTAV_CLIP_OCTAV);
        return OCTAV_OK;
    }
    if (strcmp(s, "pact") == 0) { q->mode = OCTAV_QCLIP_PACT; q->clip = octav_clip_default(OCTAV_CLIP_MAX); return OCTAV_OK; }
    if (strcmp(s, "lsq") == 0) { q->mode = OCTAV_QCLIP_LSQ; q->clip = octav_clip_default(OCTAV_CLIP_MAX); return OCTAV_OK; }
    const char *method = s;
    octav_qclip_mode mode = OCTAV_QCLIP_DYNAMIC;
    if (strncmp(s, "static-", 7) == 0) { method = s + 7; mode = OCTAV_QCLIP_STATIC; }
    octav_clip_config c;
    if (octav_clip_parse(method, &c) != OCTAV_OK)
        return octav_set_error(OCTAV_EINVAL,
                               "--clip '%s': expected octav, static-octav, max, percentile[-P], mse-sweep, "
                               "static-<method>, pact or lsq", s);
    /* The 100-point sweep and entropy calibration are calibration methods. */
    if (c.method == OCTAV_CLIP_MSE_SWEEP || c.method == OCTAV_CLIP_ENTROPY) mode = OCTAV_QCLIP_STATIC;
    q->mode = mode;
    q->clip = c;
    return OCTAV_OK;
}

octav_status octav_qat_parse_grad(const char *s, octav_qat_config *q) {
    if (!s || !q) return octav_set_error(OCTAV_EINVAL, "--grad: NULL");
    if (strcmp(s, "mad-pwl") == 0) { q->weight_grad = OCTAV_GRAD_MAD; q->act_grad = OCTAV_GRAD_PWL; return OCTAV_OK; }
    octav_grad_est e;
    if (octav_grad_parse(s, &e) != OCTAV_OK)
        return octav_set_error(OCTAV_EINVAL, "--grad '%s': expected ste, pwl, mad or mad-pwl", s);
    q->weight_grad = q->act_grad = e;
    return OCTAV_OK;
}

const char *octav_qat_clip_name(const octav_qat_config *q) {
    static _Thread_local char buf[64];
    switch (q->mode) {
    case OCTAV_QCLIP_OCTAV: return "octav";
    case OCTAV_QCLIP_PACT: return "pact";
    case OCTAV_QCLIP_LSQ: return "lsq";
    case OCTAV_QCLIP_STATIC:
        if (q->clip.method == OCTAV_CLIP_MSE_SWEEP || q->clip.method == OCTAV_CLIP_ENTROPY)
            return octav_clip_name(&q->clip);
        snprintf(buf, sizeof buf, "static-%s", octav_clip_name(&q->clip));
        return buf;
    default: return octav_clip_name(&q->clip);
    }
}

void qat_free(octav_model *m) {
    for (int i = 0; i < m->nquant; i++) {
        quantizer *q = &m->quant[i];
        octav_free(q->calib_sum); octav_free(q->dscale); octav_free(q->tmp);
        octav_free(q->iters); octav_free(q->buf);
    }
    octav_free(m->quant);
    m->quant = NULL;
    m->nquant = 0;
    for (int i = 0; i < m->nnodes; i++) {
        m->nodes[i].q_w = m->nodes[i].q_a = -1;
        for (int k = 0; k < 4; k++) m->nodes[i].q_att[k] = -1;
    }
    /* drop the scale tensors (always the last ones) */
    while (m->ntensors > 0 && m->tensors[m->ntensors - 1].pool == 2) m->ntensors--;
    octav_free(m->qparams); octav_free(m->qgrads); octav_free(m->q_m); octav_free(m->q_v);
    m->qparams = m->qgrads = m->q_m = m->q_v = NULL;
    m->nqparams = 0;
    m->quantized = 0;
}

const octav_qat_config *octav_model_get_qat(const octav_model *m) { return &m->qat; }
int octav_model_quantized(const octav_model *m) { return m->quantized; }
int octav_model_num_quantizers(const octav_model *m) { return m->nquant; }

int octav_model_calibrated(const octav_model *m) {
    if (!m->quantized || m->qat.mode != OCTAV_QCLIP_STATIC) return 1;
    for (int i = 0; i < m->nquant; i++)
        if (m->quant[i].calib_count < m->qat.calib_batches) return 0;
    return 1;
}

/* The clipping mode of one quantizer: m->qat.mode, except PACT's weights,
 * which are max-scaled on every step (DYNAMIC with m->qat.clip = max).
 * PACT learns the clipping scalar of activations only, as Choi et al.
 * define it (the DoReFa weight quantizer PACT was published with
 * normalises by the maximum). PACT's alpha gradient is an unscaled sum over
 * the clipped elements: on a weight tensor (up to 802,816 elements here,
 * per-element gradients not averaged over a batch) one SGD step moves alpha
 * by several times its size; on cnn from scratch at 3 bits the classifier's
 * weight alpha went 0.0179 -> 1e-8 (clamped) -> 886 in two steps, every
 * weight of the layer on the zero level (docs/RESULTS.md, *PACT*). */
static octav_qclip_mode quantizer_mode(const octav_model *m, int is_weight) {
    return m->qat.mode == OCTAV_QCLIP_PACT && is_weight ? OCTAV_QCLIP_DYNAMIC : m->qat.mode;
}

/* Whether a quantizer's scalars are trained (PACT, LSQ). */
static int learned_quantizer(const octav_model *m, int is_weight) {
    const octav_qclip_mode mode = quantizer_mode(m, is_weight);
    return mode == OCTAV_QCLIP_PACT || mode == OCTAV_QCLIP_LSQ;
}

/* Creates the quantizers and their scale tensors for m->qat. */
octav_status qat_setup(octav_model *m) {
    const octav_qat_config *c = &m->qat;
    int first = -1, last = -1, count = 0;
    for (int i = 1; i < m->nnodes; i++) {
        octav_op op = m->nodes[i].op;
        if (op == OCTAV_OP_CONV2D || op == OCTAV_OP_LINEAR) {
            if (first < 0) first = i;
            last = i;
            count += 2;
        } else if (op == OCTAV_OP_ATTENTION) {
            count += 4;
        }
    }
    if (last >= 0 && m->nodes[last].op != OCTAV_OP_LINEAR) last = -1;
    m->quant = octav_calloc((size_t)(count + 1), sizeof(quantizer));
    if (!m->quant) return octav_set_error(OCTAV_ENOMEM, "qat: out of memory");
    int64_t total = 0;
    static const int gemm_roles[] = {QR_WEIGHT, QR_INPUT}, att_roles[] = {QR_Q, QR_K, QR_PROBS, QR_V};
    static const char *const suffix[QR_COUNT_] = {"weight_scale", "input_scale", "q_scale", "k_scale",
                                                  "probs_scale", "v_scale"};
    for (int i = 1; i < m->nnodes; i++) {
        node *nd = &m->nodes[i];
        const int *roles;
        int nroles;
        if (nd->op == OCTAV_OP_CONV2D || nd->op == OCTAV_OP_LINEAR) { roles = gemm_roles; nroles = 2; }
        else if (nd->op == OCTAV_OP_ATTENTION) { roles = att_roles; nroles = 4; }
        else continue;
        int bits = (i == first || i == last) ? c->first_last_bits : c->bits;
        for (int r = 0; r < nroles; r++) {
            int role = roles[r], isw = role == QR_WEIGHT;
            quantizer *q = &m->quant[m->nquant];
            q->node = i;
            q->is_weight = isw;
            q->role = role;
            q->bits = bits;
            if (isw) {
                const mtensor *w = &m->tensors[nd->t_w];
                octav_granularity g = nd->op == OCTAV_OP_CONV2D ? c->conv_weight_gran : c->linear_weight_gran;
                q->grid.kind = OCTAV_GRID_FULL;
                q->spec.kind = g == OCTAV_GRAN_CHANNEL ? OCTAV_GRAN_CHANNEL : OCTAV_GRAN_TENSOR;
                q->spec.axis = 0;
                q->ngroups = q->spec.kind == OCTAV_GRAN_CHANNEL ? w->shape.dim[0] : 1;
                q->group_numel = w->numel / q->ngroups;
            } else if (role == QR_INPUT) {
                const node *in = &m->nodes[nd->in[0]];
                q->grid.kind = in->nonneg ? OCTAV_GRID_UNSIGNED : OCTAV_GRID_FULL;
                q->spec.kind = OCTAV_GRAN_TENSOR;
                q->ngroups = 1;
                q->group_numel = in->size;
            } else {   /* attention operands: probabilities are >= 0 */
                q->grid.kind = role == QR_PROBS ? OCTAV_GRID_UNSIGNED : OCTAV_GRID_FULL;
                q->spec.kind = OCTAV_GRAN_TENSOR;
                q->ngroups = 1;
                q->group_numel = role == QR_PROBS ? (int64_t)nd->groups * nd->h * nd->h : nd->size;
            }
            q->grid.bits = bits;
            octav_status st = octav_grid_check(q->grid);
            if (st) return st;
            char name[NODE_NAME_MAX + 16];
            snprintf(name, sizeof name, "%s.%s", nd->name, suffix[role]);
            octav_shape s = {.ndim = 1};
            s.dim[0] = q->ngroups;
            const int lrn = learned_quantizer(m, isw);
            int t = model_add_tensor(m, name, &s, lrn, lrn && m->qat.mode == OCTAV_QCLIP_PACT, 2);
            if (t < 0) return octav_set_error(m->err, "%s", m->errmsg);
            m->tensors[t].offset = total;
            total += q->ngroups;
            q->tensor = t;
            m->nquant++;   /* counted before its buffers so that qat_free frees them */
            q->calib_sum = octav_calloc((size_t)q->ngroups, sizeof(double));
            q->dscale = octav_calloc((size_t)q->ngroups, sizeof(double));
            q->tmp = octav_calloc((size_t)q->ngroups, sizeof(float));
            q->iters = octav_calloc((size_t)q->ngroups, sizeof(int32_t));
            if (!q->calib_sum || !q->dscale || !q->tmp || !q->iters)
                return octav_set_error(OCTAV_ENOMEM, "qat: out of memory");
            if (role == QR_WEIGHT) nd->q_w = m->nquant - 1;
            else if (role == QR_INPUT) nd->q_a = m->nquant - 1;
            else nd->q_att[role - QR_Q] = m->nquant - 1;
        }
    }
    m->nqparams = total;
    m->qparams = octav_calloc((size_t)(total ? total : 1), sizeof(float));
    m->qgrads = octav_calloc((size_t)(total ? total : 1), sizeof(float));
    if (!m->qparams || !m->qgrads) return octav_set_error(OCTAV_ENOMEM, "qat: out of memory");
    for (int i = 0; i < m->ntensors; i++) {
        mtensor *t = &m->tensors[i];
        if (t->pool != 2) continue;
        t->data = m->qparams + t->offset;
        t->grad = m->qgrads + t->offset;
    }
    m->optim_alloc = 0;   /* optimizer state is re-made with the new layout */
    octav_free(m->opt_m); octav_free(m->opt_v);
    m->opt_m = m->opt_v = NULL;
    return OCTAV_OK;
}

octav_status octav_model_set_qat(octav_model *m, const octav_qat_config *q) {
    if (!m || !q || !m->finalized) return octav_set_error(OCTAV_EINVAL, "qat: model not finalized");
    int on = q->bits > 0 && q->bits < 32;
    if (on) {
        if (q->bits < OCTAV_MIN_BITS || q->bits > 8)
            return octav_set_error(OCTAV_EINVAL, "qat: --bits %d outside 2..8 (or 32 for float)", q->bits);
        if (q->first_last_bits < OCTAV_MIN_BITS || q->first_last_bits > 16)
            return octav_set_error(OCTAV_EINVAL, "qat: --first-last-bits %d outside 2..16", q->first_last_bits);
        if (q->mode == OCTAV_QCLIP_STATIC && q->calib_batches < 1)
            return octav_set_error(OCTAV_EINVAL, "qat: %d calibration batches", q->calib_batches);
    }
    qat_free(m);
    m->qat = *q;
    if (!on) return OCTAV_OK;
    octav_status st = qat_setup(m);
    if (st) { qat_free(m); return st; }
    m->quantized = 1;
    return OCTAV_OK;
}

static octav_status ensure_buf(quantizer *q, int64_t numel) {
    if (numel <= q->buf_cap) return OCTAV_OK;
    octav_free(q->buf);
    q->buf = octav_malloc((size_t)numel * sizeof(float));
    q->buf_cap = q->buf ? numel : 0;
    return q->buf ? OCTAV_OK : octav_set_error(OCTAV_ENOMEM, "qat: out of memory");
}

/* Initial scale of a learned quantizer from the data: PACT the max |x|,
 * LSQ s = L * 2 mean|x| / sqrt(qmax) (Esser et al.'s step init, times L).
 * Groups are contiguous (per tensor, or per channel on axis 0). */
static void learned_init(const octav_model *m, quantizer *q, const float *x, int64_t numel, float *s) {
    int64_t per = numel / q->ngroups;
    double L = octav_grid_levels(q->grid), qmax = (double)octav_grid_qmax(q->grid);
    for (int64_t g = 0; g < q->ngroups; g++) {
        const float *p = x + g * per;
        double mx = 0, sum = 0;
        for (int64_t i = 0; i < per; i++) {
            double a = q->grid.kind == OCTAV_GRID_UNSIGNED ? (p[i] > 0 ? p[i] : 0) : fabs((double)p[i]);
            if (a > mx) mx = a;
            sum += a;
        }
        double v = m->qat.mode == OCTAV_QCLIP_PACT ? mx : L * 2.0 * (sum / (double)per) / sqrt(qmax);
        s[g] = v > 1e-8 ? (float)v : 1e-8f;
    }
}

/* Computes the scales of quantizer q for tensor x according to the mode. */
static octav_status update_scales(octav_model *m, quantizer *q, const octav_layout *lay, const float *x) {
    float *s = m->tensors[q->tensor].data;
    const octav_qat_config *c = &m->qat;
    octav_clip_config cc = c->clip;
    cc.name = m->nodes[q->node].name;
    octav_clip_info info = {.iterations = q->iters, .converged = NULL};
    octav_status st;
    int training = m->training || m->calibrating;
    switch (quantizer_mode(m, q->is_weight)) {
    case OCTAV_QCLIP_OCTAV:
    case OCTAV_QCLIP_DYNAMIC:
        /* activations: re-solved in training; weights: always (eval included) */
        if (!training && !q->is_weight && q->solved) return OCTAV_OK;
        if (c->mode == OCTAV_QCLIP_OCTAV) cc.warm_start = q->solved ? s : NULL;
        st = octav_clip(m->solver, &cc, q->grid, lay, x, q->tmp, &info);
        if (st) return st;
        memcpy(s, q->tmp, (size_t)q->ngroups * sizeof(float));
        q->solved = 1;
        return OCTAV_OK;
    case OCTAV_QCLIP_STATIC:
        if (q->calib_count >= c->calib_batches) return OCTAV_OK;
        if (!training && q->solved) return OCTAV_OK;
        if (!training && !q->solved) {   /* evaluated before any calibration */
            st = octav_clip(m->solver, &cc, q->grid, lay, x, s, &info);
            if (!st) q->solved = 1;
            return st;
        }
        st = octav_clip(m->solver, &cc, q->grid, lay, x, q->tmp, &info);
        if (st) return st;
        q->calib_count++;
        for (int64_t g = 0; g < q->ngroups; g++) {
            q->calib_sum[g] += q->tmp[g];
            s[g] = (float)(q->calib_sum[g] / q->calib_count);
        }
        q->solved = 1;
        return OCTAV_OK;
    case OCTAV_QCLIP_PACT:
    case OCTAV_QCLIP_LSQ:
        if (!q->solved) {
            learned_init(m, q, x, lay->numel, s);
            q->solved = 1;
        }
        return OCTAV_OK;
    }
    return octav_set_error(OCTAV_EINVAL, "qat: unknown mode %d", (int)c->mode);
}

octav_status qat_forward(octav_model *m, int qi, const float *x, const octav_shape *shape, const float **out) {
    quantizer *q = &m->quant[qi];
    octav_layout lay;
    octav_status st = octav_layout_make(shape, q->spec, &lay);
    if (st) return st;
    if ((st = update_scales(m, q, &lay, x))) return st;
    q->last_x = x;
    q->last_shape = *shape;
    if (m->calibrating) { *out = x; return OCTAV_OK; }   /* calibration sees float tensors */
    if ((st = ensure_buf(q, lay.numel))) return st;
    if ((st = octav_fq_forward(q->grid, &lay, x, m->tensors[q->tensor].data, q->buf))) return st;
    *out = q->buf;
    return OCTAV_OK;
}

octav_status qat_backward(octav_model *m, int qi, const float *x, const octav_shape *shape,
                          const float *dq, float *dx) {
    quantizer *q = &m->quant[qi];
    octav_layout lay;
    octav_status st = octav_layout_make(shape, q->spec, &lay);
    if (st) return st;
    octav_scale_grad sg = !learned_quantizer(m, q->is_weight) ? OCTAV_SGRAD_NONE
                        : m->qat.mode == OCTAV_QCLIP_LSQ ? OCTAV_SGRAD_LSQ : OCTAV_SGRAD_PACT;
    octav_grad_est est = q->is_weight ? m->qat.weight_grad : m->qat.act_grad;
    mtensor *t = &m->tensors[q->tensor];
    st = octav_fq_backward(q->grid, &lay, x, t->data, dq, est, sg, dx, sg ? q->dscale : NULL);
    if (st) return st;
    if (sg) {
        /* LSQ's gradient scale 1/sqrt(N qmax), N = elements per group
         * (weights) or per sample (activations); PACT unscaled. */
        double gs = 1.0;
        if (sg == OCTAV_SGRAD_LSQ) gs = 1.0 / sqrt((double)q->group_numel * (double)octav_grid_qmax(q->grid));
        for (int64_t g = 0; g < q->ngroups; g++) t->grad[g] = (float)(q->dscale[g] * gs);
    }
    return OCTAV_OK;
}

octav_status octav_model_quantizer(octav_model *m, int i, int measure, octav_quant_report *r) {
    if (!m || !r || i < 0 || i >= m->nquant) return octav_set_error(OCTAV_EINVAL, "quantizer %d out of range", i);
    quantizer *q = &m->quant[i];
    const float *s = m->tensors[q->tensor].data;
    memset(r, 0, sizeof *r);
    r->node = m->nodes[q->node].name;
    r->is_weight = q->is_weight;
    static const char *const operand[QR_COUNT_] = {"weight", "input", "q", "k", "probs", "v"};
    r->operand = operand[q->role];
    r->bits = q->bits;
    r->grid = q->grid.kind;
    r->ngroups = q->ngroups;
    double sum = 0, it = 0;
    for (int64_t g = 0; g < q->ngroups; g++) { sum += s[g]; it += q->iters[g]; }
    r->scale = sum / (double)q->ngroups;
    r->mean_iterations = m->qat.mode == OCTAV_QCLIP_OCTAV || m->qat.clip.method == OCTAV_CLIP_OCTAV
                             ? it / (double)q->ngroups : NAN;
    r->clipped_fraction = NAN;
    r->sqnr_db = NAN;
    if (measure && q->last_x && q->solved) {
        octav_layout lay;
        octav_quant_error e;
        octav_status st = octav_layout_make(&q->last_shape, q->spec, &lay);
        if (!st) st = octav_quant_error_eval(q->grid, &lay, q->last_x, s, &e);
        if (st) return st;
        r->clipped_fraction = e.clipped_fraction;
        r->sqnr_db = e.sqnr_db;
    }
    return OCTAV_OK;
}
