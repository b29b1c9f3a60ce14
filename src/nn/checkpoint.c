/* checkpoint.c -- a model as a safetensors file: every named tensor
 * (parameters, batchnorm running statistics, quantizer scales), the
 * optimizer state ("optim.m.<name>", "optim.v.<name>"), and metadata
 * ("octav.step", "octav.optim", "octav.quant_state" plus the caller's
 * pairs, e.g. the run's configuration). Written atomically by
 * octav_safetensors_write (temp file + fsync + rename), readable by
 * Python's safetensors / PyTorch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model_internal.h"

#define MAX_META 64

octav_status octav_model_save(const octav_model *m, const char *path, const octav_kv *meta, int nmeta) {
    if (!m || !path || nmeta < 0 || (nmeta && !meta) || nmeta > MAX_META - 4)
        return octav_set_error(OCTAV_EINVAL, "save: bad arguments");
    int maxt = m->ntensors * 3;
    octav_tensor *ts = octav_calloc((size_t)(maxt ? maxt : 1), sizeof *ts);
    char *names = octav_calloc((size_t)(maxt ? maxt : 1), NODE_NAME_MAX + 40);
    char *qstate = octav_calloc((size_t)m->nquant + 1, 1);
    if (!ts || !names || !qstate) {
        octav_free(ts); octav_free(names); octav_free(qstate);
        return octav_set_error(OCTAV_ENOMEM, "save: out of memory");
    }
    int nt = 0;
    for (int i = 0; i < m->ntensors; i++) {
        const mtensor *t = &m->tensors[i];
        ts[nt].name = (char *)t->name;
        ts[nt].shape = t->shape;
        ts[nt].data = t->data;
        nt++;
        if (!t->trainable || !m->optim_alloc) continue;
        for (int k = 0; k < m->optim_alloc; k++) {
            char *nm = names + (size_t)nt * (NODE_NAME_MAX + 40);
            snprintf(nm, NODE_NAME_MAX + 40, "optim.%c.%s", k ? 'v' : 'm', t->name);
            ts[nt].name = nm;
            ts[nt].shape = t->shape;
            ts[nt].data = k ? t->v : t->m;
            nt++;
        }
    }
    /* per quantizer: 0 unset, 1 solved; static calibration counts appear
     * as the character 'a' + count (capped) so that a resumed run goes on */
    for (int i = 0; i < m->nquant; i++) {
        const quantizer *q = &m->quant[i];
        int cnt = q->calib_count > 25 ? 25 : q->calib_count;
        qstate[i] = !q->solved ? '0' : (m->qat.mode == OCTAV_QCLIP_STATIC ? (char)('a' + cnt) : '1');
    }
    octav_kv kv[MAX_META];
    char step[32];
    snprintf(step, sizeof step, "%lld", (long long)m->step);
    int nk = 0;
    for (int i = 0; i < nmeta; i++) kv[nk++] = meta[i];
    kv[nk++] = (octav_kv){"octav.step", step};
    kv[nk++] = (octav_kv){"octav.optim", m->optim_alloc == 0 ? "none" : m->optim_kind == OCTAV_OPTIM_ADAMW ? "adamw" : "sgd"};
    kv[nk++] = (octav_kv){"octav.quant_state", qstate};
    octav_status st = octav_safetensors_write(path, ts, nt, kv, nk);
    octav_free(ts); octav_free(names); octav_free(qstate);
    return st;
}

static const char *meta_get(const octav_safetensors *st, const char *key) {
    for (int i = 0; i < st->nmeta; i++)
        if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value;
    return NULL;
}

static octav_status copy_tensor(const octav_safetensors *st, const char *path, const char *name,
                                const octav_shape *shape, float *dst, int required, int *found) {
    const octav_tensor *t = octav_safetensors_find(st, name);
    *found = 0;
    if (!t) {
        if (required) return octav_set_error(OCTAV_ENOTFOUND, "%s: tensor '%s' missing", path, name);
        return OCTAV_OK;
    }
    int same = t->shape.ndim == shape->ndim;
    for (int d = 0; same && d < shape->ndim; d++) same = t->shape.dim[d] == shape->dim[d];
    if (!same) {
        char a[96] = "", b[96] = "";
        for (int d = 0; d < t->shape.ndim; d++)
            snprintf(a + strlen(a), sizeof a - strlen(a), "%s%lld", d ? "x" : "", (long long)t->shape.dim[d]);
        for (int d = 0; d < shape->ndim; d++)
            snprintf(b + strlen(b), sizeof b - strlen(b), "%s%lld", d ? "x" : "", (long long)shape->dim[d]);
        return octav_set_error(OCTAV_EFORMAT, "%s: tensor '%s' has shape %s, the model needs %s", path, name, a, b);
    }
    int64_t n = octav_shape_numel(shape);
    octav_status s = octav_check_finite(t->data, n, name);
    if (s) return s;
    memcpy(dst, t->data, (size_t)n * sizeof(float));
    *found = 1;
    return OCTAV_OK;
}

octav_status octav_model_load(octav_model *m, const char *path, int full, octav_safetensors *meta_out) {
    if (!m || !path || !m->finalized) return octav_set_error(OCTAV_EINVAL, "load: bad arguments");
    octav_safetensors st;
    octav_status s = octav_safetensors_read(path, &st);
    if (s) return s;
    /* Load into copies first so that a failure leaves the model unchanged. */
    size_t np = (size_t)m->nparams, ns = (size_t)m->nstate, nq = (size_t)m->nqparams;
    float *p = octav_malloc((np ? np : 1) * sizeof(float));
    float *sb = octav_malloc((ns ? ns : 1) * sizeof(float));
    float *qb = octav_malloc((nq ? nq : 1) * sizeof(float));
    int64_t step = 0;
    const char *optim = NULL, *qstate = NULL;
    if (!p || !sb || !qb) { s = octav_set_error(OCTAV_ENOMEM, "load: out of memory"); goto done; }
    memcpy(p, m->params, np * sizeof(float));
    memcpy(sb, m->state, ns * sizeof(float));
    if (nq) memcpy(qb, m->qparams, nq * sizeof(float));
    const int trunk = full == 2;
    if (trunk) full = 0;
    int64_t nfound = 0;
    for (int i = 0; i < m->ntensors; i++) {
        const mtensor *t = &m->tensors[i];
        float *dst = (t->pool == 0 ? p : t->pool == 1 ? sb : qb) + t->offset;
        int found = 0;
        int required = full || (!trunk && t->pool != 2);
        if (trunk && t->pool == 2) continue;
        if ((s = copy_tensor(&st, path, t->name, &t->shape, dst, required, &found))) goto done;
        nfound += found;
    }
    if (trunk && nfound == 0) {
        s = octav_set_error(OCTAV_EFORMAT, "%s: no tensor of the model is in the checkpoint", path);
        goto done;
    }
    if (full) {
        const char *sv = meta_get(&st, "octav.step");
        optim = meta_get(&st, "octav.optim");
        qstate = meta_get(&st, "octav.quant_state");
        char *end = NULL;
        if (sv) step = strtoll(sv, &end, 10);
        if (!sv || !end || *end || step < 0 || !optim || !qstate) {
            s = octav_set_error(OCTAV_EFORMAT, "%s: not a training checkpoint (octav.step/optim/quant_state metadata missing)", path);
            goto done;
        }
        if ((int)strlen(qstate) != m->nquant) {
            s = octav_set_error(OCTAV_EFORMAT, "%s: %d quantizers saved, the model has %d (different --bits/--clip?)",
                                path, (int)strlen(qstate), m->nquant);
            goto done;
        }
        if (strcmp(optim, "none") != 0) {
            octav_optim_kind k = strcmp(optim, "adamw") == 0 ? OCTAV_OPTIM_ADAMW : OCTAV_OPTIM_SGD;
            if (m->optim_alloc == 0 || m->optim_kind != k) {
                /* allocate through a zero-step train config is not possible here: do it directly */
                int need = k == OCTAV_OPTIM_ADAMW ? 2 : 1;
                octav_free(m->opt_m); octav_free(m->opt_v); octav_free(m->q_m); octav_free(m->q_v);
                m->opt_m = octav_calloc(np ? np : 1, sizeof(float));
                m->q_m = octav_calloc(nq ? nq : 1, sizeof(float));
                m->opt_v = need == 2 ? octav_calloc(np ? np : 1, sizeof(float)) : NULL;
                m->q_v = need == 2 ? octav_calloc(nq ? nq : 1, sizeof(float)) : NULL;
                m->optim_alloc = 0;
                if (!m->opt_m || !m->q_m || (need == 2 && (!m->opt_v || !m->q_v))) {
                    s = octav_set_error(OCTAV_ENOMEM, "load: out of memory");
                    goto done;
                }
                m->optim_alloc = need;
                m->optim_kind = k;
                for (int i = 0; i < m->ntensors; i++) {
                    mtensor *t = &m->tensors[i];
                    if (t->pool == 0) { t->m = m->opt_m + t->offset; t->v = m->opt_v ? m->opt_v + t->offset : NULL; }
                    else if (t->pool == 2) { t->m = m->q_m + t->offset; t->v = m->q_v ? m->q_v + t->offset : NULL; }
                }
            }
            for (int i = 0; i < m->ntensors; i++) {
                mtensor *t = &m->tensors[i];
                if (!t->trainable) continue;
                for (int k2 = 0; k2 < m->optim_alloc; k2++) {
                    char nm[NODE_NAME_MAX + 40];
                    int found;
                    snprintf(nm, sizeof nm, "optim.%c.%s", k2 ? 'v' : 'm', t->name);
                    if ((s = copy_tensor(&st, path, nm, &t->shape, k2 ? t->v : t->m, 1, &found))) goto done;
                }
            }
        }
    }
    memcpy(m->params, p, np * sizeof(float));
    memcpy(m->state, sb, ns * sizeof(float));
    if (nq) memcpy(m->qparams, qb, nq * sizeof(float));
    for (int i = 0; i < m->nquant; i++) {
        quantizer *q = &m->quant[i];
        if (full) {
            char c = qstate[i];
            q->solved = c != '0';
            q->calib_count = c >= 'a' ? c - 'a' : 0;
            if (c >= 'a') {   /* the running average resumes from its mean */
                const float *sc = m->tensors[q->tensor].data;
                for (int64_t g = 0; g < q->ngroups; g++) q->calib_sum[g] = (double)sc[g] * q->calib_count;
            }
        } else {
            q->solved = 0;
            q->calib_count = 0;
        }
    }
    if (full) m->step = step;
done:
    octav_free(p); octav_free(sb); octav_free(qb);
    if (s == OCTAV_OK && meta_out) {
        *meta_out = st;
    } else {
        octav_safetensors_free(&st);
    }
    return s;
}
