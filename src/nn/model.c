/* model.c -- the graph: building, shape inference, parameter pools,
 * forward and backward over the nodes in order, one training step, and
 * evaluation.
 *
 * Nodes are kept in topological order (each input is an earlier node), so
 * forward is a loop up and backward a loop down. Gradients are summed where
 * a node feeds several consumers: the first consumer processed in backward
 * writes its input's gradient buffer, later ones write a scratch buffer
 * that is added in. Quantization of conv/linear inputs and weights is in
 * qat.c; this file calls it around the conv and linear kernels.
 * Gradient buffers are shared between nodes whose gradients are never live
 * at the same time (plan_grads). Left out here: reuse of forward outputs
 * (every node keeps its output for the backward), and in-place ops. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "nn/model_internal.h"

static const char *const op_names[OCTAV_OP_COUNT_] = {
    [OCTAV_OP_INPUT] = "input",     [OCTAV_OP_CONV2D] = "conv2d",
    [OCTAV_OP_LINEAR] = "linear",   [OCTAV_OP_BATCHNORM] = "batchnorm",
    [OCTAV_OP_RELU] = "relu",       [OCTAV_OP_RELU6] = "relu6",
    [OCTAV_OP_MAXPOOL] = "maxpool", [OCTAV_OP_AVGPOOL] = "avgpool",
    [OCTAV_OP_GAP] = "gap",         [OCTAV_OP_ADD] = "add",
    [OCTAV_OP_DROPOUT] = "dropout", [OCTAV_OP_FLATTEN] = "flatten",
    [OCTAV_OP_EMBEDDING] = "embedding", [OCTAV_OP_LAYERNORM] = "layernorm",
    [OCTAV_OP_GELU] = "gelu",       [OCTAV_OP_ATTENTION] = "attention",
    [OCTAV_OP_TOKEN] = "token",
};

const char *octav_op_name(octav_op op) {
    return (unsigned)op < OCTAV_OP_COUNT_ ? op_names[op] : "?";
}

void model_fail(octav_model *m, octav_status st, const char *fmt, ...) {
    if (m->err != OCTAV_OK) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->errmsg, sizeof m->errmsg, fmt, ap);
    va_end(ap);
    m->err = st;
}

/* A fresh node: no tensors, no quantizers, one row per sample. */
static void node_init(node *n, octav_op op, int in0, int in1) {
    memset(n, 0, sizeof *n);
    n->op = op;
    n->in[0] = in0; n->in[1] = in1;
    n->t_w = n->t_b = n->t_gamma = n->t_beta = n->t_rmean = n->t_rvar = -1;
    n->q_w = n->q_a = -1;
    for (int k = 0; k < 4; k++) n->q_att[k] = -1;
    n->rows = 1;
}

octav_status octav_model_create(int c, int h, int w, octav_model **out) {
    if (!out) return octav_set_error(OCTAV_EINVAL, "model: NULL output");
    *out = NULL;
    if (c < 1 || h < 1 || w < 1)
        return octav_set_error(OCTAV_EINVAL, "model: input shape %dx%dx%d must be positive", c, h, w);
    octav_model *m = octav_calloc(1, sizeof *m);
    if (!m) return octav_set_error(OCTAV_ENOMEM, "model: out of memory");
    node *n = &m->nodes[0];
    node_init(n, OCTAV_OP_INPUT, -1, -1);
    snprintf(n->name, sizeof n->name, "input");
    n->c = c; n->h = h; n->w = w;
    n->size = (int64_t)c * h * w;
    m->nnodes = 1;
    m->qat = octav_qat_default();
    m->qat.bits = 0;
    *out = m;
    return OCTAV_OK;
}

static void free_activations(octav_model *m) {
    for (int i = 0; i < m->nnodes; i++) {
        node *n = &m->nodes[i];
        octav_free(n->y); octav_free(n->argmax); octav_free(n->mask);
        octav_free(n->aux); octav_free(n->ids);
        n->y = n->dy = n->aux = NULL; n->argmax = n->ids = NULL; n->mask = NULL;
    }
    octav_free(m->scratch); octav_free(m->probs); octav_free(m->eval_labels);
    for (int i = 0; i < m->ngpool; i++) octav_free(m->gpool[i]);
    m->ngpool = 0;
    for (int i = 0; i < m->nquant; i++)   /* inputs pointed into the freed buffers */
        if (!m->quant[i].is_weight) m->quant[i].last_x = NULL;
    m->scratch = m->probs = NULL;
    m->eval_labels = NULL;
    m->cap = 0;
    m->last_n = 0;
}

void octav_model_destroy(octav_model *m) {
    if (!m) return;
    free_activations(m);
    for (int i = 0; i < m->nnodes; i++) {
        octav_conv2d_destroy(m->nodes[i].plan);
        octav_free(m->nodes[i].mean);
        octav_free(m->nodes[i].rstd);
    }
    qat_free(m);
    octav_free(m->params); octav_free(m->grads); octav_free(m->opt_m); octav_free(m->opt_v);
    octav_free(m->state);
    octav_solver_destroy(m->solver);
    octav_free(m);
}

int octav_model_input(const octav_model *m) { (void)m; return 0; }

int model_add_tensor(octav_model *m, const char *name, const octav_shape *shape,
                     int trainable, int decay, int pool) {
    if (m->ntensors >= MODEL_MAX_TENSORS) {
        model_fail(m, OCTAV_EINVAL, "model: more than %d tensors", MODEL_MAX_TENSORS);
        return -1;
    }
    for (int i = 0; i < m->ntensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) {
            model_fail(m, OCTAV_EINVAL, "model: duplicate tensor name '%s'", name);
            return -1;
        }
    mtensor *t = &m->tensors[m->ntensors];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->shape = *shape;
    t->numel = octav_shape_numel(shape);
    t->trainable = trainable;
    t->decay = decay;
    t->pool = pool;
    return m->ntensors++;
}

/* Appends a node; returns its pointer or NULL (error recorded). */
node *model_new_node(octav_model *m, octav_op op, const char *name, int in0, int in1) {
    if (m->err) return NULL;
    if (m->finalized) { model_fail(m, OCTAV_EINVAL, "model: already finalized"); return NULL; }
    if (m->nnodes >= MODEL_MAX_NODES) {
        model_fail(m, OCTAV_EINVAL, "model: more than %d nodes", MODEL_MAX_NODES);
        return NULL;
    }
    if (in0 < 0 || in0 >= m->nnodes || (in1 != -1 && (in1 < 0 || in1 >= m->nnodes))) {
        model_fail(m, OCTAV_EINVAL, "model: %s node input %d is not an earlier node", octav_op_name(op),
                   in0 < 0 || in0 >= m->nnodes ? in0 : in1);
        return NULL;
    }
    int id = m->nnodes;
    node *n = &m->nodes[id];
    node_init(n, op, in0, in1);
    if (name && *name) {
        if (strlen(name) >= NODE_NAME_MAX) {
            model_fail(m, OCTAV_EINVAL, "model: node name '%s' longer than %d", name, NODE_NAME_MAX - 1);
            return NULL;
        }
        for (int i = 0; i < m->nnodes; i++)
            if (strcmp(m->nodes[i].name, name) == 0) {
                model_fail(m, OCTAV_EINVAL, "model: duplicate node name '%s'", name);
                return NULL;
            }
        snprintf(n->name, sizeof n->name, "%s", name);
    } else {
        snprintf(n->name, sizeof n->name, "%s_%d", octav_op_name(op), id);
    }
    const node *a = &m->nodes[in0];
    n->c = a->c; n->h = a->h; n->w = a->w; n->size = a->size;
    m->nnodes++;
    return n;
}

int model_node_id(const octav_model *m, const node *n) { return (int)(n - m->nodes); }

int model_add_param(octav_model *m, node *n, const char *suffix, int ndim, const int64_t *dims,
                     int trainable, int decay, int pool) {
    char name[NODE_NAME_MAX + 24];
    snprintf(name, sizeof name, "%s.%s", n->name, suffix);
    octav_shape s = {.ndim = ndim};
    for (int i = 0; i < ndim; i++) s.dim[i] = dims[i];
    return model_add_tensor(m, name, &s, trainable, decay, pool);
}

int octav_add_conv2d(octav_model *m, const char *name, int in, int c_out, int k,
                     int stride, int pad, int groups, int bias) {
    node *n = model_new_node(m, OCTAV_OP_CONV2D, name, in, -1);
    if (!n) return -1;
    if (c_out < 1 || k < 1 || stride < 1 || pad < 0 || groups < 1 || n->c % groups || c_out % groups) {
        model_fail(m, OCTAV_EINVAL, "model: conv2d '%s': bad arguments (c_in %d, c_out %d, k %d, stride %d, pad %d, groups %d)",
                   n->name, n->c, c_out, k, stride, pad, groups);
        return -1;
    }
    int ho = (n->h + 2 * pad - k) / stride + 1, wo = (n->w + 2 * pad - k) / stride + 1;
    if (n->h + 2 * pad < k || n->w + 2 * pad < k || ho < 1 || wo < 1) {
        model_fail(m, OCTAV_EINVAL, "model: conv2d '%s': %dx%d input too small for kernel %d pad %d",
                   n->name, n->h, n->w, k, pad);
        return -1;
    }
    int c_in = n->c;
    n->k = k; n->stride = stride; n->pad = pad; n->groups = groups; n->bias = bias;
    n->c = c_out; n->h = ho; n->w = wo; n->size = (int64_t)c_out * ho * wo;
    int64_t wd[4] = {c_out, c_in / groups, k, k}, bd[1] = {c_out};
    n->t_w = model_add_param(m, n, "weight", 4, wd, 1, 1, 0);
    if (bias) n->t_b = model_add_param(m, n, "bias", 1, bd, 1, 0, 0);
    return m->err ? -1 : model_node_id(m, n);
}

/* A linear node: over the flattened sample (dense == 0), or over the last
 * axis of every position of a (c, h, w) sample (dense: rows = c h). */
static int add_linear(octav_model *m, const char *name, int in, int out, int bias, int dense) {
    node *n = model_new_node(m, OCTAV_OP_LINEAR, name, in, -1);
    if (!n) return -1;
    if (out < 1) {
        model_fail(m, OCTAV_EINVAL, "model: %s '%s': %d outputs", dense ? "dense" : "linear", n->name, out);
        return -1;
    }
    int64_t fin = dense ? n->w : n->size;
    n->rows = dense ? (int64_t)n->c * n->h : 1;
    n->out = out; n->bias = bias;
    if (dense) { n->w = out; }
    else { n->c = out; n->h = n->w = 1; }
    n->size = n->rows * out;
    int64_t wd[2] = {out, fin}, bd[1] = {out};
    n->t_w = model_add_param(m, n, "weight", 2, wd, 1, 1, 0);
    if (bias) n->t_b = model_add_param(m, n, "bias", 1, bd, 1, 0, 0);
    return m->err ? -1 : model_node_id(m, n);
}

int octav_add_linear(octav_model *m, const char *name, int in, int out, int bias) {
    return add_linear(m, name, in, out, bias, 0);
}
int octav_add_dense(octav_model *m, const char *name, int in, int out, int bias) {
    return add_linear(m, name, in, out, bias, 1);
}

int octav_add_batchnorm(octav_model *m, const char *name, int in) {
    node *n = model_new_node(m, OCTAV_OP_BATCHNORM, name, in, -1);
    if (!n) return -1;
    int64_t d[1] = {n->c};
    n->t_gamma = model_add_param(m, n, "weight", 1, d, 1, 0, 0);
    n->t_beta = model_add_param(m, n, "bias", 1, d, 1, 0, 0);
    n->t_rmean = model_add_param(m, n, "running_mean", 1, d, 0, 0, 1);
    n->t_rvar = model_add_param(m, n, "running_var", 1, d, 0, 0, 1);
    return m->err ? -1 : model_node_id(m, n);
}

static int add_simple(octav_model *m, octav_op op, int in, int nonneg) {
    node *n = model_new_node(m, op, NULL, in, -1);
    if (!n) return -1;
    n->nonneg = nonneg < 0 ? m->nodes[in].nonneg : nonneg;
    return model_node_id(m, n);
}

int octav_add_relu(octav_model *m, int in) { return add_simple(m, OCTAV_OP_RELU, in, 1); }
int octav_add_relu6(octav_model *m, int in) { return add_simple(m, OCTAV_OP_RELU6, in, 1); }
int octav_add_flatten(octav_model *m, int in) {
    int id = add_simple(m, OCTAV_OP_FLATTEN, in, -1);
    if (id < 0) return -1;
    node *n = &m->nodes[id];
    n->c = (int)n->size; n->h = n->w = 1;
    return id;
}

int octav_add_dropout(octav_model *m, int in, float p) {
    if (!(p >= 0.0f && p < 1.0f)) {
        model_fail(m, OCTAV_EINVAL, "model: dropout probability %g not in [0, 1)", (double)p);
        return -1;
    }
    int id = add_simple(m, OCTAV_OP_DROPOUT, in, -1);
    if (id >= 0) m->nodes[id].p = p;
    return id;
}

int octav_add_gap(octav_model *m, int in) {
    int id = add_simple(m, OCTAV_OP_GAP, in, -1);
    if (id < 0) return -1;
    node *n = &m->nodes[id];
    n->h = n->w = 1; n->size = n->c;
    return id;
}

static int add_pool(octav_model *m, octav_op op, int in, int k, int stride, int pad) {
    node *n = model_new_node(m, op, NULL, in, -1);
    if (!n) return -1;
    if (k < 1 || stride < 1 || pad < 0 || 2 * pad > k || n->h + 2 * pad < k || n->w + 2 * pad < k) {
        model_fail(m, OCTAV_EINVAL, "model: %s: bad window k %d stride %d pad %d for %dx%d",
                   octav_op_name(op), k, stride, pad, n->h, n->w);
        return -1;
    }
    n->nonneg = m->nodes[in].nonneg;
    n->k = k; n->stride = stride; n->pad = pad;
    n->h = (n->h + 2 * pad - k) / stride + 1;
    n->w = (n->w + 2 * pad - k) / stride + 1;
    n->size = (int64_t)n->c * n->h * n->w;
    return model_node_id(m, n);
}

int octav_add_maxpool(octav_model *m, int in, int k, int stride, int pad) {
    return add_pool(m, OCTAV_OP_MAXPOOL, in, k, stride, pad);
}
int octav_add_avgpool(octav_model *m, int in, int k, int stride, int pad) {
    return add_pool(m, OCTAV_OP_AVGPOOL, in, k, stride, pad);
}

int octav_add_add(octav_model *m, int a, int b) {
    node *n = model_new_node(m, OCTAV_OP_ADD, NULL, a, b);
    if (!n) return -1;
    const node *na = &m->nodes[a], *nb = &m->nodes[b];
    if (na->c != nb->c || na->h != nb->h || na->w != nb->w) {
        model_fail(m, OCTAV_EINVAL, "model: add of %s (%dx%dx%d) and %s (%dx%dx%d): shapes differ",
                   na->name, na->c, na->h, na->w, nb->name, nb->c, nb->h, nb->w);
        return -1;
    }
    n->nonneg = na->nonneg && nb->nonneg;
    return model_node_id(m, n);
}

octav_status octav_model_finalize(octav_model *m) {
    if (!m) return octav_set_error(OCTAV_EINVAL, "model: NULL");
    if (m->err) return octav_set_error(m->err, "%s", m->errmsg);
    if (m->finalized) return OCTAV_OK;
    if (m->nnodes < 2) return octav_set_error(OCTAV_EINVAL, "model: no layers");
    node *last = &m->nodes[m->nnodes - 1];
    if (last->h == 1 && last->w == 1) {
        m->nclasses = last->c;
        m->positions = 1;
    } else if (last->c == 1) {   /* a sequence: logits per position */
        m->nclasses = last->w;
        m->positions = last->h;
    } else {
        return octav_set_error(OCTAV_EINVAL, "model: the last node '%s' is %dx%dx%d, not a vector of logits "
                               "or a sequence (1, L, classes)", last->name, last->c, last->h, last->w);
    }
    for (int i = 0; i < m->nnodes; i++) m->nodes[i].nconsumers = 0;
    for (int i = 1; i < m->nnodes; i++)
        for (int j = 0; j < 2; j++)
            if (m->nodes[i].in[j] >= 0) m->nodes[m->nodes[i].in[j]].nconsumers++;
    for (int i = 0; i < m->ntensors; i++) {
        mtensor *t = &m->tensors[i];
        if (t->pool == 0) { t->offset = m->nparams; m->nparams += t->numel; }
        else { t->offset = m->nstate; m->nstate += t->numel; }
    }
    m->params = octav_calloc((size_t)(m->nparams ? m->nparams : 1), sizeof(float));
    m->grads = octav_calloc((size_t)(m->nparams ? m->nparams : 1), sizeof(float));
    m->state = octav_calloc((size_t)(m->nstate ? m->nstate : 1), sizeof(float));
    if (!m->params || !m->grads || !m->state) return octav_set_error(OCTAV_ENOMEM, "model: out of memory for parameters");
    for (int i = 0; i < m->ntensors; i++) {
        mtensor *t = &m->tensors[i];
        if (t->pool == 0) { t->data = m->params + t->offset; t->grad = m->grads + t->offset; }
        else t->data = m->state + t->offset;
    }
    for (int i = 0; i < m->nnodes; i++) {
        node *n = &m->nodes[i];
        if (n->op == OCTAV_OP_BATCHNORM) {
            n->mean = octav_calloc((size_t)n->c, sizeof(float));
            n->rstd = octav_calloc((size_t)n->c, sizeof(float));
            if (!n->mean || !n->rstd) return octav_set_error(OCTAV_ENOMEM, "model: out of memory");
        }
    }
    octav_status st = octav_solver_create(&m->solver);
    if (st) return st;
    m->finalized = 1;
    return octav_model_init(m, 0);
}

/* ---- inspection ----------------------------------------------------------- */
int octav_model_num_tensors(const octav_model *m) { return m->ntensors; }

octav_tensor_ref octav_model_tensor(const octav_model *m, int i) {
    octav_tensor_ref r;
    memset(&r, 0, sizeof r);
    if (i < 0 || i >= m->ntensors) return r;
    const mtensor *t = &m->tensors[i];
    r.name = t->name;
    r.data = t->data;
    r.grad = t->trainable ? t->grad : NULL;
    r.shape = t->shape;
    r.trainable = t->trainable;
    r.decay = t->decay;
    return r;
}

int64_t octav_model_num_params(const octav_model *m) {
    int64_t s = 0;
    for (int i = 0; i < m->ntensors; i++)
        if (m->tensors[i].trainable) s += m->tensors[i].numel;
    return s;
}
int octav_model_num_nodes(const octav_model *m) { return m->nnodes; }
const char *octav_model_node_name(const octav_model *m, int id) {
    return id >= 0 && id < m->nnodes ? m->nodes[id].name : NULL;
}
octav_op octav_model_node_op(const octav_model *m, int id) {
    return id >= 0 && id < m->nnodes ? m->nodes[id].op : OCTAV_OP_COUNT_;
}
int64_t octav_model_step(const octav_model *m) { return m->step; }
int octav_model_num_classes(const octav_model *m) { return m->nclasses; }
int octav_model_label_positions(const octav_model *m) { return m->positions; }
int octav_model_node_nonneg(const octav_model *m, int id) {
    return id >= 0 && id < m->nnodes ? m->nodes[id].nonneg : 0;
}
int octav_model_node_input(const octav_model *m, int id) {
    return id > 0 && id < m->nnodes ? m->nodes[id].in[0] : -1;
}

octav_status octav_model_activation(const octav_model *m, int id, const float **data, octav_shape *shape) {
    if (!m || !data || !shape || id < 0 || id >= m->nnodes)
        return octav_set_error(OCTAV_EINVAL, "activation: bad arguments");
    if (!m->last_n || !m->nodes[id].y) return octav_set_error(OCTAV_EINVAL, "activation: no forward has run");
    const node *n = &m->nodes[id];
    *data = n->y;
    memset(shape, 0, sizeof *shape);
    shape->ndim = 4;
    shape->dim[0] = m->last_n;
    shape->dim[1] = n->c; shape->dim[2] = n->h; shape->dim[3] = n->w;
    return OCTAV_OK;
}
void octav_model_input_shape(const octav_model *m, int *c, int *h, int *w) {
    *c = m->nodes[0].c; *h = m->nodes[0].h; *w = m->nodes[0].w;
}

size_t octav_model_memory(const octav_model *m) {
    size_t b = (size_t)(m->nparams * 2 + m->nstate + m->nqparams * 2) * sizeof(float);
    b += (size_t)m->optim_alloc * (size_t)(m->nparams + m->nqparams) * sizeof(float);
    int64_t maxsize = 0;
    for (int i = 0; i < m->nnodes; i++) {
        const node *n = &m->nodes[i];
        b += (size_t)(m->cap * n->size) * sizeof(float);
        if (n->argmax) b += (size_t)(m->cap * n->size) * sizeof(int32_t);
        if (n->mask) b += (size_t)(m->cap * n->size);
        if (n->aux) b += (size_t)(m->cap * seq_aux_per_sample(m, n)) * sizeof(float);
        if (n->ids) b += (size_t)(m->cap * n->h) * sizeof(int32_t);
        if (n->size > maxsize) maxsize = n->size;
    }
    b += (size_t)(m->cap * maxsize) * sizeof(float);
    for (int i = 0; i < m->ngpool; i++) b += (size_t)m->gpool_size[i] * sizeof(float);
    for (int i = 0; i < m->nquant; i++) b += (size_t)m->quant[i].buf_cap * sizeof(float);
    return b;
}

/* ---- initialisation ------------------------------------------------------- */
octav_status octav_model_init(octav_model *m, uint64_t seed) {
    if (!m || !m->finalized) return octav_set_error(OCTAV_EINVAL, "model: not finalized");
    octav_rng rng;
    octav_rng_seed(&rng, seed);
    for (int i = 0; i < m->nnodes; i++) {
        node *n = &m->nodes[i];
        if (n->op == OCTAV_OP_CONV2D || n->op == OCTAV_OP_LINEAR) {
            mtensor *w = &m->tensors[n->t_w];
            int64_t fan_in = w->numel / w->shape.dim[0];
            /* conv: Kaiming normal, fan_out, gain sqrt(2) (torchvision's
             * ResNet/MobileNet init); linear: PyTorch's default
             * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias. */
            if (n->op == OCTAV_OP_CONV2D) {
                int64_t fan_out = w->shape.dim[0] * w->shape.dim[2] * w->shape.dim[3] / n->groups;
                double std = sqrt(2.0 / (double)fan_out);
                for (int64_t j = 0; j < w->numel; j++) w->data[j] = (float)(std * octav_rng_normal(&rng));
                if (n->t_b >= 0) memset(m->tensors[n->t_b].data, 0, (size_t)m->tensors[n->t_b].numel * sizeof(float));
            } else {
                double bound = 1.0 / sqrt((double)fan_in);
                for (int64_t j = 0; j < w->numel; j++)
                    w->data[j] = (float)(bound * (2.0 * octav_rng_uniform(&rng) - 1.0));
                if (n->t_b >= 0) {
                    mtensor *b = &m->tensors[n->t_b];
                    for (int64_t j = 0; j < b->numel; j++)
                        b->data[j] = (float)(bound * (2.0 * octav_rng_uniform(&rng) - 1.0));
                }
            }
        } else if (n->op == OCTAV_OP_EMBEDDING) {
            /* PyTorch's nn.Embedding default N(0, 1), for token and position */
            for (int t = 0; t < 2; t++) {
                mtensor *e = &m->tensors[t ? n->t_b : n->t_w];
                for (int64_t j = 0; j < e->numel; j++) e->data[j] = (float)octav_rng_normal(&rng);
            }
        } else if (n->op == OCTAV_OP_LAYERNORM) {
            for (int64_t j = 0; j < n->w; j++) {
                m->tensors[n->t_gamma].data[j] = 1.0f;
                m->tensors[n->t_beta].data[j] = 0.0f;
            }
        } else if (n->op == OCTAV_OP_BATCHNORM) {
            for (int64_t j = 0; j < n->c; j++) {
                m->tensors[n->t_gamma].data[j] = 1.0f;
                m->tensors[n->t_beta].data[j] = 0.0f;
                m->tensors[n->t_rmean].data[j] = 0.0f;
                m->tensors[n->t_rvar].data[j] = 1.0f;
            }
        }
    }
    if (m->opt_m) memset(m->opt_m, 0, (size_t)m->nparams * sizeof(float));
    if (m->opt_v) memset(m->opt_v, 0, (size_t)m->nparams * sizeof(float));
    if (m->q_m) memset(m->q_m, 0, (size_t)m->nqparams * sizeof(float));
    if (m->q_v) memset(m->q_v, 0, (size_t)m->nqparams * sizeof(float));
    m->step = 0;
    for (int i = 0; i < m->nquant; i++) {
        quantizer *q = &m->quant[i];
        q->solved = 0;
        q->calib_count = 0;
        memset(m->tensors[q->tensor].data, 0, (size_t)q->ngroups * sizeof(float));
    }
    return OCTAV_OK;
}

/* ---- activations ---------------------------------------------------------- */
/* Gradient buffers. Backward visits nodes from the last to the first; node
 * i's gradient dy is live from the backward of its last consumer (the
 * largest id reading it; the loss for the last node) down to its own
 * backward, i.e. over ids [i, start_i]. Nodes whose intervals are disjoint
 * share one buffer (greedy interval colouring in order of decreasing start,
 * the best-fitting free buffer first), so a chain needs two or three
 * buffers whatever its depth; residual branches keep theirs longer. */
static octav_status plan_grads(octav_model *m, int64_t n) {
    const int N = m->nnodes;
    int start[MODEL_MAX_NODES], order[MODEL_MAX_NODES], min_end[MODEL_MAX_NODES], nb = 0;
    for (int i = 0; i < N; i++) start[i] = i;
    start[N - 1] = N;   /* written by the loss before any backward */
    for (int i = 1; i < N; i++)
        for (int k = 0; k < 2; k++) {
            int j = m->nodes[i].in[k];
            if (j >= 1 && i > start[j]) start[j] = i;
        }
    int cnt = 0;
    for (int i = N - 1; i >= 1; i--) order[cnt++] = i;
    for (int a = 1; a < cnt; a++)   /* insertion sort by start, decreasing (ties: larger id first) */
        for (int b = a; b > 0 && start[order[b]] > start[order[b - 1]]; b--) {
            int t = order[b]; order[b] = order[b - 1]; order[b - 1] = t;
        }
    int owner[MODEL_MAX_NODES];
    for (int q = 0; q < cnt; q++) {
        const int i = order[q];
        const int64_t need = n * m->nodes[i].size;
        int best = -1;
        for (int b = 0; b < nb; b++) {
            if (!(start[i] < min_end[b])) continue;   /* an occupant still live */
            if (best < 0) { best = b; continue; }
            int fits = m->gpool_size[b] >= need, bfits = m->gpool_size[best] >= need;
            if ((fits && (!bfits || m->gpool_size[b] < m->gpool_size[best])) ||
                (!fits && !bfits && m->gpool_size[b] > m->gpool_size[best]))
                best = b;
        }
        if (best < 0) { best = nb++; m->gpool_size[best] = 0; min_end[best] = N + 1; }
        if (m->gpool_size[best] < need) m->gpool_size[best] = need;
        if (i < min_end[best]) min_end[best] = i;
        owner[i] = best;
    }
    for (int b = 0; b < nb; b++) {
        m->gpool[b] = octav_malloc((size_t)(m->gpool_size[b] ? m->gpool_size[b] : 1) * sizeof(float));
        m->ngpool = b + 1;
        if (!m->gpool[b]) return octav_set_error(OCTAV_ENOMEM, "model: out of memory for gradients");
    }
    m->nodes[0].dy = NULL;
    for (int i = 1; i < N; i++) m->nodes[i].dy = m->gpool[owner[i]];
    return OCTAV_OK;
}

static octav_status ensure_batch(octav_model *m, int64_t n) {
    if (n <= m->cap) return OCTAV_OK;
    free_activations(m);
    int64_t maxsize = 0;
    for (int i = 0; i < m->nnodes; i++) {
        node *nd = &m->nodes[i];
        size_t cnt = (size_t)(n * nd->size);
        if (nd->size > maxsize) maxsize = nd->size;
        nd->y = octav_malloc(cnt * sizeof(float));
        if (!nd->y) goto oom;
        if (nd->op == OCTAV_OP_MAXPOOL && !(nd->argmax = octav_malloc(cnt * sizeof(int32_t)))) goto oom;
        if (nd->op == OCTAV_OP_DROPOUT && !(nd->mask = octav_malloc(cnt))) goto oom;
        int64_t aux = seq_aux_per_sample(m, nd);
        if (aux && !(nd->aux = octav_malloc((size_t)(n * aux) * sizeof(float)))) goto oom;
        if (nd->op == OCTAV_OP_EMBEDDING && !(nd->ids = octav_malloc((size_t)(n * nd->h) * sizeof(int32_t))))
            goto oom;
    }
    m->scratch = octav_malloc((size_t)(n * maxsize) * sizeof(float));
    m->probs = octav_malloc((size_t)(n * m->positions * m->nclasses) * sizeof(float));
    m->eval_labels = octav_malloc((size_t)(n * m->positions) * sizeof(int32_t));
    if (!m->scratch || !m->probs || !m->eval_labels || plan_grads(m, n)) goto oom;
    m->cap = n;
    return OCTAV_OK;
oom:
    free_activations(m);
    return octav_set_error(OCTAV_ENOMEM, "model: out of memory for activations of batch %lld", (long long)n);
}

static octav_status conv_plan(octav_model *m, node *nd, int64_t n) {
    if (nd->plan && nd->plan_n == n) return OCTAV_OK;
    octav_conv2d_destroy(nd->plan);
    nd->plan = NULL;
    const node *in = &m->nodes[nd->in[0]];
    octav_conv2d_desc d = {.n = n, .c_in = in->c, .h_in = in->h, .w_in = in->w, .c_out = nd->c,
                           .kh = nd->k, .kw = nd->k, .stride_h = nd->stride, .stride_w = nd->stride,
                           .pad_h = nd->pad, .pad_w = nd->pad, .groups = nd->groups};
    octav_status st = octav_conv2d_create(&d, OCTAV_BACKEND_AUTO, &nd->plan);
    if (st) return st;
    nd->plan_n = n;
    return OCTAV_OK;
}

static octav_shape weight_shape(const octav_model *m, const node *nd) {
    return m->tensors[nd->t_w].shape;
}

static octav_shape act_shape(const node *in, int64_t n) {
    octav_shape s = {.ndim = 2};
    s.dim[0] = n;
    s.dim[1] = in->size;
    return s;
}

static octav_status forward_node(octav_model *m, int i, int64_t n) {
    node *nd = &m->nodes[i];
    const node *a = &m->nodes[nd->in[0]];
    const float *x = a->y;
    octav_status st = OCTAV_OK;
    switch (nd->op) {
    case OCTAV_OP_CONV2D:
    case OCTAV_OP_LINEAR: {
        const float *xq = x, *wq = m->tensors[nd->t_w].data;
        const float *b = nd->t_b >= 0 ? m->tensors[nd->t_b].data : NULL;
        if (nd->q_a >= 0) {
            octav_shape s = act_shape(a, n);
            if ((st = qat_forward(m, nd->q_a, x, &s, &xq))) return st;
        }
        if (nd->q_w >= 0) {
            octav_shape s = weight_shape(m, nd);
            if ((st = qat_forward(m, nd->q_w, wq, &s, &wq))) return st;
        }
        if (nd->op == OCTAV_OP_CONV2D) {
            if ((st = conv_plan(m, nd, n))) return st;
            st = octav_conv2d_forward(nd->plan, xq, wq, b, nd->y);
        } else {
            octav_linear_forward(xq, wq, b, nd->y, n * nd->rows, a->size / nd->rows, nd->out);
        }
        return st;
    }
    case OCTAV_OP_BATCHNORM: {
        const float *g = m->tensors[nd->t_gamma].data, *be = m->tensors[nd->t_beta].data;
        float *rm = m->tensors[nd->t_rmean].data, *rv = m->tensors[nd->t_rvar].data;
        if (m->training)
            octav_batchnorm_forward_train(x, g, be, nd->y, nd->mean, nd->rstd, rm, rv, n, nd->c,
                                          (int64_t)nd->h * nd->w, 0.1f, 1e-5f);
        else
            octav_batchnorm_forward_eval(x, g, be, rm, rv, nd->y, n, nd->c, (int64_t)nd->h * nd->w, 1e-5f);
        return OCTAV_OK;
    }
    case OCTAV_OP_RELU: octav_relu_forward(x, nd->y, n * nd->size); return OCTAV_OK;
    case OCTAV_OP_RELU6: octav_relu6_forward(x, nd->y, n * nd->size); return OCTAV_OK;
    case OCTAV_OP_MAXPOOL:
        octav_maxpool2d_forward(x, nd->y, nd->argmax, n, a->c, a->h, a->w, nd->k, nd->stride, nd->pad);
        return OCTAV_OK;
    case OCTAV_OP_AVGPOOL:
        octav_avgpool2d_forward(x, nd->y, n, a->c, a->h, a->w, nd->k, nd->stride, nd->pad);
        return OCTAV_OK;
    case OCTAV_OP_GAP: octav_gap_forward(x, nd->y, n, a->c, (int64_t)a->h * a->w); return OCTAV_OK;
    case OCTAV_OP_ADD: octav_add_forward(x, m->nodes[nd->in[1]].y, nd->y, n * nd->size); return OCTAV_OK;
    case OCTAV_OP_DROPOUT:
        if (m->training && nd->p > 0.0f)
            octav_dropout_forward(x, nd->y, nd->mask, n * nd->size, nd->p,
                                  octav_hash_u64(m->dropout_seed, (uint64_t)m->step * MODEL_MAX_NODES + (uint64_t)i));
        else
            memcpy(nd->y, x, (size_t)(n * nd->size) * sizeof(float));
        return OCTAV_OK;
    case OCTAV_OP_FLATTEN: memcpy(nd->y, x, (size_t)(n * nd->size) * sizeof(float)); return OCTAV_OK;
    default: return seq_forward(m, i, n);
    }
}

/* Where the gradient for input node j goes: its dy (first writer) or the
 * scratch buffer (later writers; added by finish_grad). */
static float *grad_target(octav_model *m, int j) {
    node *nj = &m->nodes[j];
    if (j == 0) return NULL;
    return nj->grad_written ? m->scratch : nj->dy;
}

static void finish_grad(octav_model *m, int j, int64_t n) {
    node *nj = &m->nodes[j];
    if (j == 0) return;
    if (nj->grad_written) {
        int64_t cnt = n * nj->size;
        float *d = nj->dy;
        const float *s = m->scratch;
        for (int64_t e = 0; e < cnt; e++) d[e] += s[e];
    }
    nj->grad_written = 1;
}

static octav_status backward_node(octav_model *m, int i, int64_t n) {
    node *nd = &m->nodes[i];
    int j = nd->in[0];
    node *a = &m->nodes[j];
    const float *x = a->y, *dy = nd->dy;
    float *dx = grad_target(m, j);
    octav_status st = OCTAV_OK;
    int64_t cnt = n * nd->size;
    switch (nd->op) {
    case OCTAV_OP_CONV2D:
    case OCTAV_OP_LINEAR: {
        mtensor *w = &m->tensors[nd->t_w];
        float *db = nd->t_b >= 0 ? m->tensors[nd->t_b].grad : NULL;
        const float *xq = nd->q_a >= 0 ? m->quant[nd->q_a].buf : x;
        const float *wq = nd->q_w >= 0 ? m->quant[nd->q_w].buf : w->data;
        if (nd->op == OCTAV_OP_CONV2D)
            st = octav_conv2d_backward(nd->plan, xq, wq, dy, dx, w->grad, db);
        else
            octav_linear_backward(xq, wq, dy, dx, w->grad, db, n * nd->rows, a->size / nd->rows, nd->out);
        if (st) return st;
        if (nd->q_w >= 0) {
            octav_shape s = weight_shape(m, nd);
            if ((st = qat_backward(m, nd->q_w, w->data, &s, w->grad, w->grad))) return st;
        }
        if (dx && nd->q_a >= 0) {
            octav_shape s = act_shape(a, n);
            if ((st = qat_backward(m, nd->q_a, x, &s, dx, dx))) return st;
        }
        break;
    }
    case OCTAV_OP_BATCHNORM:
        octav_batchnorm_backward(x, m->tensors[nd->t_gamma].data, nd->mean, nd->rstd, dy, dx,
                                 m->tensors[nd->t_gamma].grad, m->tensors[nd->t_beta].grad, n, nd->c,
                                 (int64_t)nd->h * nd->w);
        break;
    case OCTAV_OP_RELU: if (dx) octav_relu_backward(x, dy, dx, cnt); break;
    case OCTAV_OP_RELU6: if (dx) octav_relu6_backward(x, dy, dx, cnt); break;
    case OCTAV_OP_MAXPOOL:
        if (dx) octav_maxpool2d_backward(nd->argmax, dy, dx, n, a->c, a->h, a->w, nd->k, nd->stride, nd->pad);
        break;
    case OCTAV_OP_AVGPOOL:
        if (dx) octav_avgpool2d_backward(dy, dx, n, a->c, a->h, a->w, nd->k, nd->stride, nd->pad);
        break;
    case OCTAV_OP_GAP: if (dx) octav_gap_backward(dy, dx, n, a->c, (int64_t)a->h * a->w); break;
    case OCTAV_OP_DROPOUT:
        if (dx) {
            if (nd->p > 0.0f) octav_dropout_backward(nd->mask, dy, dx, cnt, nd->p);
            else memcpy(dx, dy, (size_t)cnt * sizeof(float));
        }
        break;
    case OCTAV_OP_FLATTEN:
        if (dx) memcpy(dx, dy, (size_t)cnt * sizeof(float));
        break;
    case OCTAV_OP_ADD: {
        if (dx) memcpy(dx, dy, (size_t)cnt * sizeof(float));
        finish_grad(m, j, n);
        int k = nd->in[1];
        float *dx2 = grad_target(m, k);
        if (dx2) memcpy(dx2, dy, (size_t)cnt * sizeof(float));
        finish_grad(m, k, n);
        return OCTAV_OK;
    }
    default:
        if ((st = seq_backward(m, i, n, dx))) return st;
        break;
    }
    finish_grad(m, j, n);
    return OCTAV_OK;
}

static octav_status run_forward(octav_model *m, const float *x, int64_t n) {
    octav_status st = ensure_batch(m, n);
    if (st) return st;
    memcpy(m->nodes[0].y, x, (size_t)(n * m->nodes[0].size) * sizeof(float));
    m->last_n = 0;
    for (int i = 1; i < m->nnodes; i++)
        if ((st = forward_node(m, i, n))) return st;
    m->last_n = n;
    return OCTAV_OK;
}

/* n samples' labels (positions per sample); per-position models may
 * leave positions unlabelled (negative). Returns the labelled count. */
static int64_t check_labels(const octav_model *m, const int32_t *labels, int64_t n, octav_status *st) {
    int64_t cnt = n * m->positions, used = 0;
    for (int64_t i = 0; i < cnt; i++) {
        if (labels[i] < 0 && m->positions > 1) continue;
        if (labels[i] < 0 || labels[i] >= m->nclasses) {
            if (m->positions > 1)
                *st = octav_set_error(OCTAV_EINVAL, "model: label %d of sample %lld position %lld outside [0, %d)",
                                      (int)labels[i], (long long)(i / m->positions),
                                      (long long)(i % m->positions), m->nclasses);
            else
                *st = octav_set_error(OCTAV_EINVAL, "model: label %d of sample %lld outside [0, %d)",
                                      (int)labels[i], (long long)i, m->nclasses);
            return 0;
        }
        used++;
    }
    return used;
}

/* ---- optimizer -------------------------------------------------------------- */
static octav_status ensure_optim(octav_model *m, octav_optim_kind kind) {
    int need = kind == OCTAV_OPTIM_ADAMW ? 2 : 1;
    if (m->optim_alloc >= need && m->optim_kind == kind) return OCTAV_OK;
    size_t np = (size_t)(m->nparams ? m->nparams : 1), nq = (size_t)(m->nqparams ? m->nqparams : 1);
    octav_free(m->opt_m); octav_free(m->opt_v); octav_free(m->q_m); octav_free(m->q_v);
    m->opt_m = octav_calloc(np, sizeof(float));
    m->q_m = octav_calloc(nq, sizeof(float));
    m->opt_v = need == 2 ? octav_calloc(np, sizeof(float)) : NULL;
    m->q_v = need == 2 ? octav_calloc(nq, sizeof(float)) : NULL;
    m->optim_alloc = 0;
    if (!m->opt_m || !m->q_m || (need == 2 && (!m->opt_v || !m->q_v)))
        return octav_set_error(OCTAV_ENOMEM, "model: out of memory for optimizer state");
    m->optim_alloc = need;
    m->optim_kind = kind;
    for (int i = 0; i < m->ntensors; i++) {
        mtensor *t = &m->tensors[i];
        if (t->pool == 0) { t->m = m->opt_m + t->offset; t->v = m->opt_v ? m->opt_v + t->offset : NULL; }
        else if (t->pool == 2) { t->m = m->q_m + t->offset; t->v = m->q_v ? m->q_v + t->offset : NULL; }
    }
    return OCTAV_OK;
}

octav_train_config octav_train_default(void) {
    octav_train_config c;
    memset(&c, 0, sizeof c);
    c.optim = OCTAV_OPTIM_SGD;
    c.lr = 0.05;
    c.momentum = 0.9;
    c.weight_decay = 5e-4;
    c.beta1 = 0.9; c.beta2 = 0.999; c.eps = 1e-8;
    c.sched.kind = OCTAV_SCHED_CONSTANT;
    c.sched.gamma = 0.1;
    return c;
}

octav_status octav_model_train_step(octav_model *m, const octav_train_config *tc, int64_t step,
                                    const float *x, const int32_t *labels, int64_t n,
                                    octav_step_result *res) {
    if (!m || !m->finalized || !tc || !x || !labels || n < 1)
        return octav_set_error(OCTAV_EINVAL, "train step: bad arguments");
    octav_status st = OCTAV_OK;
    int64_t labelled = check_labels(m, labels, n, &st);
    if (st) return st;
    if ((st = ensure_optim(m, tc->optim))) return st;
    m->training = 1;
    m->dropout_seed = tc->seed;
    st = run_forward(m, x, n);
    m->training = 0;
    if (st) return st;
    node *last = &m->nodes[m->nnodes - 1];
    int64_t correct = 0;
    const int64_t rows = n * m->positions;
    double loss = octav_xent_forward(last->y, labels, m->probs, rows, m->nclasses, (float)tc->label_smoothing,
                                     &correct);
    if (!isfinite(loss))
        return octav_set_error(OCTAV_ENONFINITE, "train step %lld: loss is %g", (long long)step, loss);
    for (int i = 0; i < m->nnodes; i++) m->nodes[i].grad_written = 0;
    octav_xent_backward(m->probs, labels, last->dy, rows, m->nclasses, (float)tc->label_smoothing,
                        labelled ? 1.0f / (float)labelled : 0.0f);
    last->grad_written = 1;
    m->training = 1;
    for (int i = m->nnodes - 1; i >= 1; i--) {
        node *nd = &m->nodes[i];
        if (!nd->grad_written) {   /* a node whose output feeds nothing */
            memset(nd->dy, 0, (size_t)(n * nd->size) * sizeof(float));
            nd->grad_written = 1;
        }
        if ((st = backward_node(m, i, n))) { m->training = 0; return st; }
    }
    m->training = 0;
    /* global gradient norm over every trainable tensor */
    double ss = 0;
    for (int i = 0; i < m->ntensors; i++) {
        const mtensor *t = &m->tensors[i];
        if (!t->trainable) continue;
        double nn = octav_grad_norm(t->grad, t->numel);
        ss += nn * nn;
    }
    double gnorm = sqrt(ss);
    if (!isfinite(gnorm))
        return octav_set_error(OCTAV_ENONFINITE, "train step %lld: gradient norm is %g (loss %g)",
                               (long long)step, gnorm, loss);
    float clip = 1.0f;
    if (tc->grad_clip > 0 && gnorm > tc->grad_clip) clip = (float)(tc->grad_clip / gnorm);
    double lr = octav_schedule_lr(&tc->sched, tc->lr, step);
    for (int i = 0; i < m->ntensors; i++) {
        mtensor *t = &m->tensors[i];
        if (!t->trainable) continue;
        if (clip != 1.0f) octav_scale(t->grad, t->numel, clip);
        double wd = t->decay ? tc->weight_decay : 0.0;
        if (tc->optim == OCTAV_OPTIM_SGD)
            octav_sgd_step(t->data, t->grad, tc->momentum > 0 ? t->m : NULL, t->numel, (float)lr,
                           (float)tc->momentum, (float)wd, tc->nesterov, m->step + 1);
        else
            octav_adamw_step(t->data, t->grad, t->m, t->v, t->numel, (float)lr, (float)tc->beta1,
                             (float)tc->beta2, (float)tc->eps, (float)wd, m->step + 1);
        if (t->pool == 2)   /* learned scales stay positive */
            for (int64_t e = 0; e < t->numel; e++)
                if (!(t->data[e] > 1e-8f)) t->data[e] = 1e-8f;
    }
    m->step++;
    if (res) {
        res->loss = loss;
        res->correct = correct;
        res->labelled = labelled;
        res->lr = lr;
        res->grad_norm = gnorm;
    }
    return OCTAV_OK;
}

octav_status octav_model_forward(octav_model *m, const float *x, int64_t n, const float **logits) {
    if (!m || !m->finalized || !x || n < 1) return octav_set_error(OCTAV_EINVAL, "forward: bad arguments");
    m->training = 0;
    octav_status st = run_forward(m, x, n);
    if (st) return st;
    if (logits) *logits = m->nodes[m->nnodes - 1].y;
    return OCTAV_OK;
}

octav_status octav_model_calibrate(octav_model *m, const float *x, int64_t n) {
    if (!m || !m->finalized || !x || n < 1) return octav_set_error(OCTAV_EINVAL, "calibrate: bad arguments");
    if (octav_model_calibrated(m)) return OCTAV_OK;
    m->calibrating = 1;
    m->training = 0;
    octav_status st = run_forward(m, x, n);
    m->calibrating = 0;
    return st;
}

octav_status octav_model_evaluate(octav_model *m, const float *images, const int32_t *labels,
                                  int64_t count, int64_t batch, double *accuracy, double *loss) {
    if (!m || !m->finalized || !images || !labels || count < 1 || batch < 1)
        return octav_set_error(OCTAV_EINVAL, "evaluate: bad arguments");
    octav_status st = OCTAV_OK;
    int64_t labelled = check_labels(m, labels, count, &st);
    if (st) return st;
    int64_t correct = 0;
    double lsum = 0;
    int64_t per = m->nodes[0].size;
    for (int64_t s = 0; s < count; s += batch) {
        int64_t n = count - s < batch ? count - s : batch;
        const float *logits;
        if ((st = octav_model_forward(m, images + s * per, n, &logits))) return st;
        int64_t c = 0;
        const int32_t *lab = labels + s * m->positions;
        int64_t used = n * m->positions;
        if (m->positions > 1) {
            used = 0;
            for (int64_t e = 0; e < n * m->positions; e++) used += lab[e] >= 0;
        }
        double l = octav_xent_forward(logits, lab, m->probs, n * m->positions, m->nclasses, 0.0f, &c);
        correct += c;
        lsum += l * (double)used;
    }
    if (accuracy) *accuracy = labelled ? (double)correct / (double)labelled : 0.0;
    if (loss) *loss = labelled ? lsum / (double)labelled : 0.0;
    return OCTAV_OK;
}
