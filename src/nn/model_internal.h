/* model_internal.h -- the structures behind model.h, shared by the graph
 * (model.c), quantization (qat.c), the built-in models (zoo.c) and
 * checkpoints (checkpoint.c). */
#ifndef OCTAV_MODEL_INTERNAL_H
#define OCTAV_MODEL_INTERNAL_H

#include "octav/model.h"

#define NODE_NAME_MAX 64
#define MODEL_MAX_NODES 512
#define MODEL_MAX_TENSORS 2048

/* One named tensor of the model: a parameter (trainable, with gradient and
 * optimizer state) or state (running statistics, non-learned scales). */
typedef struct {
    char name[NODE_NAME_MAX + 24];
    octav_shape shape;
    int64_t numel;
    int trainable;
    int decay;
    int pool;        /* 0 params, 1 state, 2 learned scales            */
    int64_t offset;  /* within its pool                                */
    float *data, *grad, *m, *v;  /* resolved after allocation         */
} mtensor;

/* A quantizer: the fake quantization of one conv/linear weight or input. */
/* What a quantizer quantizes. */
enum { QR_WEIGHT = 0, QR_INPUT, QR_Q, QR_K, QR_PROBS, QR_V, QR_COUNT_ };

typedef struct {
    int node;
    int is_weight;
    int role;             /* QR_*                                           */
    int bits;
    octav_grid grid;
    octav_group_spec spec;
    int64_t ngroups;
    int64_t group_numel;  /* weights: elements per group; acts: per sample */
    int tensor;           /* index of the scale tensor in m->tensors        */
    int solved;           /* scales hold a value                            */
    int calib_count;      /* STATIC: batches averaged so far                */
    double *calib_sum;    /* STATIC: ngroups                                */
    double *dscale;       /* learned: ngroups                               */
    float *tmp;           /* ngroups: solver output before copy             */
    int32_t *iters;       /* ngroups                                        */
    float *buf;           /* the fake-quantized tensor                      */
    int64_t buf_cap;
    const float *last_x;  /* tensor last quantized (for reports)            */
    octav_shape last_shape;
} quantizer;

typedef struct {
    octav_op op;
    char name[NODE_NAME_MAX];
    int in[2];
    int c, h, w;           /* per-sample output shape                       */
    int64_t size;          /* c * h * w                                     */
    int nonneg;            /* output >= 0 (after ReLU / ReLU6)              */
    int k, stride, pad, groups, bias, out;
    float p;
    int t_w, t_b, t_gamma, t_beta, t_rmean, t_rvar;   /* tensor ids or -1   */
    int q_w, q_a;          /* quantizer ids or -1                           */
    int q_att[4];          /* attention: q, k, probs, v quantizers or -1     */
    int64_t rows;          /* linear: rows per sample (dense: L, else 1)    */
    octav_conv2d *plan;    /* for plan_n                                    */
    int64_t plan_n;
    float *y, *dy;         /* [cap, size]                                   */
    float *mean, *rstd;    /* batchnorm: [c]                                */
    int32_t *argmax;       /* maxpool: [cap, size]                          */
    uint8_t *mask;         /* dropout: [cap, size]                          */
    float *aux;            /* layernorm / attention work buffers (cap)      */
    int32_t *ids;          /* embedding: [cap, L] token ids                 */
    int nconsumers;
    int grad_written;
} node;

struct octav_model {
    node nodes[MODEL_MAX_NODES];
    int nnodes;
    mtensor tensors[MODEL_MAX_TENSORS];
    int ntensors;
    quantizer *quant;
    int nquant;
    octav_status err;      /* first builder error                            */
    char errmsg[256];
    int finalized;
    int nclasses;
    int positions;         /* labels per sample (1, or L for sequences)      */
    int64_t last_n;        /* samples of the last forward (0: none yet)      */
    /* pools */
    float *params, *grads, *opt_m, *opt_v;
    int64_t nparams;
    float *state;
    int64_t nstate;
    float *qparams, *qgrads, *q_m, *q_v;
    int64_t nqparams;
    int optim_alloc;       /* 0 none, 1 m, 2 m and v                          */
    octav_optim_kind optim_kind;
    /* activations */
    int64_t cap;           /* batch capacity of the activation buffers        */
    float *scratch;        /* [cap * max size] for gradient accumulation      */
    float *gpool[MODEL_MAX_NODES];   /* gradient buffers shared by nodes whose
                                        gradients are never live together */
    int64_t gpool_size[MODEL_MAX_NODES];   /* floats                       */
    int ngpool;
    float *probs;          /* [cap, nclasses]                                 */
    int32_t *eval_labels;
    /* quantization */
    octav_qat_config qat;
    int quantized;
    octav_solver *solver;
    int64_t step;
    int training;          /* forward in training mode                        */
    int calibrating;       /* forward for static calibration (float)          */
    uint64_t dropout_seed;
};

/* qat.c */
octav_status qat_setup(octav_model *m);           /* (re)creates quantizers */
void qat_free(octav_model *m);
/* Quantizes x (numel floats, shape for layout) with quantizer q; returns
 * the tensor to use (q->buf, or x itself when quantization is off). */
octav_status qat_forward(octav_model *m, int q, const float *x,
                         const octav_shape *shape, const float **out);
/* dx from dq (gradient w.r.t. the quantized tensor); learned scales get
 * their gradient. dx may alias dq. */
octav_status qat_backward(octav_model *m, int q, const float *x,
                          const octav_shape *shape, const float *dq, float *dx);

/* model_seq.c: the sequence nodes (embedding, layernorm, gelu, attention,
 * token). aux floats per sample; forward; backward writing dx (NULL when
 * the input takes no gradient). */
int64_t seq_aux_per_sample(const octav_model *m, const node *nd);
octav_status seq_forward(octav_model *m, int i, int64_t n);
octav_status seq_backward(octav_model *m, int i, int64_t n, float *dx);

/* model.c */
node *model_new_node(octav_model *m, octav_op op, const char *name, int in0, int in1);
int model_node_id(const octav_model *m, const node *n);
int model_add_param(octav_model *m, node *n, const char *suffix, int ndim, const int64_t *dims,
                    int trainable, int decay, int pool);
int model_add_tensor(octav_model *m, const char *name, const octav_shape *shape,
                     int trainable, int decay, int pool);
void model_fail(octav_model *m, octav_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
