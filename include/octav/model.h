/* model.h -- networks as graphs of nn.h operators, quantization-aware
 * training with OCTAV (or a baseline clipping method) on every conv and
 * linear layer, one training step, evaluation and checkpoints.
 *
 * A model is a static graph: nodes are added in topological order, each
 * taking earlier nodes as inputs, so that both chains (cnn), residual
 * blocks (resnet20, mobilenetv2) and later transformer blocks fit. Every
 * trainable tensor lives in one flat buffer (params), with its gradient and
 * optimizer state in flat buffers of the same layout (llm.c style); running
 * statistics and quantizer scales are the model's state.
 *
 *   octav_model *m;
 *   octav_model_options mo = octav_model_options_default();
 *   if (octav_model_zoo("cnn", 1, 28, 28, 10, &mo, &m) != OCTAV_OK) ... ;
 *   octav_qat_config q = octav_qat_default();   q.bits = 4;
 *   octav_model_set_qat(m, &q);
 *   octav_train_config tc = octav_train_default(); ...
 *   octav_model_init(m, seed);                  // or octav_model_load()
 *   for each batch: octav_model_train_step(m, &tc, step, x, labels, n, &res);
 *   octav_model_evaluate(m, images, labels, count, batch, &acc, &loss);
 *   octav_model_save(m, "run.safetensors", meta, nmeta);
 *   octav_model_destroy(m);
 */
#ifndef OCTAV_MODEL_H
#define OCTAV_MODEL_H

#include "octav/io.h"
#include "octav/nn.h"
#include "octav/quant.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct octav_model octav_model;

typedef enum {
    OCTAV_OP_INPUT = 0,
    OCTAV_OP_CONV2D,
    OCTAV_OP_LINEAR,
    OCTAV_OP_BATCHNORM,
    OCTAV_OP_RELU,
    OCTAV_OP_RELU6,
    OCTAV_OP_MAXPOOL,
    OCTAV_OP_AVGPOOL,
    OCTAV_OP_GAP,
    OCTAV_OP_ADD,
    OCTAV_OP_DROPOUT,
    OCTAV_OP_FLATTEN,
    OCTAV_OP_EMBEDDING,   /* token + position embedding of a (1, 1, L) id input */
    OCTAV_OP_LAYERNORM,   /* over the last axis                               */
    OCTAV_OP_GELU,
    OCTAV_OP_ATTENTION,   /* multi-head self-attention of a fused q|k|v input  */
    OCTAV_OP_TOKEN,       /* one position of a sequence ([CLS] pooling)        */
    OCTAV_OP_COUNT_
} octav_op;

const char *octav_op_name(octav_op op);

/* ---- building ---------------------------------------------------------------
 * Each builder call appends a node and returns its id (>= 0). The first
 * error (bad shape, bad argument, no memory) is kept and later calls return
 * -1; octav_model_finalize returns it. Names must be unique; NULL gives an
 * automatic one ("conv2d_3"). Per-sample shapes are (c, h, w); a linear
 * layer's input is flattened. */
octav_status octav_model_create(int c, int h, int w, octav_model **out);
void octav_model_destroy(octav_model *m);
int octav_model_input(const octav_model *m);  /* id of the input node (0) */
int octav_add_conv2d(octav_model *m, const char *name, int in, int c_out,
                     int k, int stride, int pad, int groups, int bias);
int octav_add_linear(octav_model *m, const char *name, int in, int out, int bias);
int octav_add_batchnorm(octav_model *m, const char *name, int in);
int octav_add_relu(octav_model *m, int in);
int octav_add_relu6(octav_model *m, int in);
int octav_add_maxpool(octav_model *m, int in, int k, int stride, int pad);
int octav_add_avgpool(octav_model *m, int in, int k, int stride, int pad);
int octav_add_gap(octav_model *m, int in);
int octav_add_add(octav_model *m, int a, int b);
int octav_add_dropout(octav_model *m, int in, float p);
int octav_add_flatten(octav_model *m, int in);

/* Sequences. A sequence is a per-sample shape (1, L, d): L positions of d
 * features. Token models take token ids as their input of shape (1, 1, L),
 * stored as floats holding exact integers (forward checks each is an
 * integer in [0, vocab)); id 0 is padding.
 *  - embedding: y[t] = token[id_t] + position[t], tensors NAME.token
 *    [vocab, dim] and NAME.position [L, dim]; `in` must be the id input.
 *  - dense: a linear layer over the last axis (every position), weight
 *    [out, d]; quantized like linear.
 *  - layernorm: over the last axis (eps 1e-5), NAME.weight / NAME.bias.
 *  - attention: `qkv` is (1, L, 3d) holding q | k | v, head j in columns
 *    j*d/heads .. of each; y = concat_j softmax(q_j k_j^T / sqrt(d/heads)
 *    with padded keys masked) v_j, shape (1, L, d). `tokens` is the id
 *    input (keys whose id is 0 are masked) or -1 for no mask. Under QAT both
 *    operands of both products (q, k and probs, v) are fake-quantized, one
 *    scale per tensor.
 *  - token: position pos of a sequence, (1, L, d) -> (d, 1, 1).
 * A model whose last node is a sequence (1, L, k) predicts a class per
 * position: it takes L labels per sample (negative = ignored). */
int octav_add_embedding(octav_model *m, const char *name, int in, int vocab, int dim);
int octav_add_dense(octav_model *m, const char *name, int in, int out, int bias);
int octav_add_layernorm(octav_model *m, const char *name, int in);
int octav_add_gelu(octav_model *m, int in);
int octav_add_attention(octav_model *m, const char *name, int qkv, int tokens, int heads);
int octav_add_token(octav_model *m, int in, int pos);
/* Fixes the graph (the last node is the logits) and allocates parameters. */
octav_status octav_model_finalize(octav_model *m);

/* ---- the built-in models --------------------------------------------------- */
typedef struct {
    float width;      /* mobilenetv2 width multiplier (default 1.0)   */
    float dropout;    /* cnn / mlp dropout before the classifier (0.25) */
    int hidden;       /* mlp hidden units (default 512)               */
    /* transformer, transformer-mlm */
    int vocab;        /* token ids 0..vocab-1 (required)              */
    int dim;          /* width d (default 128)                        */
    int heads;        /* attention heads (default 4), dividing dim     */
    int layers;       /* blocks (default 4)                           */
    int mlp;          /* MLP hidden units (default 0: 4 * dim)        */
    float tf_dropout; /* after the embeddings and each residual branch (0.1) */
} octav_model_options;

octav_model_options octav_model_options_default(void);
/* "mlp", "cnn", "resnet20", "mobilenetv2" for inputs (c, h, w) and
 * nclasses; "transformer" (pre-LayerNorm encoder, [CLS] = position 0
 * classified by "head") and "transformer-mlm" (the same trunk with a
 * per-position "mlm" head over the vocabulary; nclasses is ignored) for
 * token inputs (1, 1, L). Tensor names: embed.token, embed.position,
 * block<i>.{ln1,qkv,proj,ln2,fc1,fc2}.{weight,bias}, ln_f.*, head.* or mlm.*. */
octav_status octav_model_zoo(const char *name, int c, int h, int w, int nclasses,
                             const octav_model_options *opt, octav_model **out);
extern const char *const octav_model_names[]; /* NULL-terminated */

/* ---- inspection ----------------------------------------------------------- */
typedef struct {
    const char *name;     /* "conv1.weight", "bn1.running_mean", ...      */
    float *data;          /* points into the model's buffers              */
    float *grad;          /* NULL for state (running statistics, scales)  */
    octav_shape shape;
    int trainable;
    int decay;            /* weight decay applies (conv/linear weights)    */
} octav_tensor_ref;

int octav_model_num_tensors(const octav_model *m);
octav_tensor_ref octav_model_tensor(const octav_model *m, int i);
int64_t octav_model_num_params(const octav_model *m);   /* trainable floats */
int octav_model_num_nodes(const octav_model *m);
const char *octav_model_node_name(const octav_model *m, int id);
octav_op octav_model_node_op(const octav_model *m, int id);

/* ---- quantization-aware training ------------------------------------------
 * Quantizes the weight and the input of every conv and linear node. */
typedef enum {
    OCTAV_QCLIP_OCTAV = 0,   /* dynamic OCTAV: re-solved every step, warm start */
    OCTAV_QCLIP_STATIC,      /* `method` calibrated on calib_batches, then fixed */
    OCTAV_QCLIP_DYNAMIC,     /* `method` recomputed every step (max, percentile) */
    OCTAV_QCLIP_PACT,        /* PACT: learned clipping scalar of activations;
                                weights max-scaled every step   */
    OCTAV_QCLIP_LSQ          /* learned step size (LSQ, with its gradient scale) */
} octav_qclip_mode;

typedef struct {
    int bits;                  /* 2..8 quantized; 0 or >= 32: float (no QAT)  */
    int first_last_bits;       /* first conv/linear and the last linear (8)   */
    octav_qclip_mode mode;
    octav_clip_config clip;    /* the method for STATIC / DYNAMIC (OCTAV for OCTAV mode) */
    octav_grad_est weight_grad;   /* default MAD */
    octav_grad_est act_grad;      /* default PWL */
    octav_granularity conv_weight_gran;    /* default per channel (axis 0) */
    octav_granularity linear_weight_gran;  /* default per tensor           */
    int calib_batches;         /* STATIC: batches averaged (default 10)       */
} octav_qat_config;

octav_qat_config octav_qat_default(void);
/* Parses "--clip" values: octav, static-octav, max, percentile[-P],
 * mse-sweep (static), static-<method>, pact, lsq; and "--grad" values:
 * ste, pwl, mad, mad-pwl. */
octav_status octav_qat_parse_clip(const char *s, octav_qat_config *q);
octav_status octav_qat_parse_grad(const char *s, octav_qat_config *q);
/* "static-octav", "percentile-99.99", ... (static buffer). */
const char *octav_qat_clip_name(const octav_qat_config *q);
/* Sets the quantization of a finalized model (before training; changing it
 * later resets the scales). bits 0 / 32 turns it off. */
octav_status octav_model_set_qat(octav_model *m, const octav_qat_config *q);
const octav_qat_config *octav_model_get_qat(const octav_model *m);
int octav_model_quantized(const octav_model *m);
/* 1 once every static quantizer is calibrated (always 1 without any). */
int octav_model_calibrated(const octav_model *m);

/* Per-quantizer report (weights and inputs of each conv / linear node). */
typedef struct {
    const char *node;        /* node name                                */
    int is_weight;           /* 1 weight, 0 an activation                */
    const char *operand;     /* "weight", "input"; attention: "q", "k",
                                "probs", "v"                              */
    int bits;
    octav_grid_kind grid;
    int64_t ngroups;
    double scale;            /* mean of the group scales                 */
    double clipped_fraction; /* of the last tensor quantized             */
    double sqnr_db;          /* of the last tensor quantized             */
    double mean_iterations;  /* OCTAV Newton steps at the last solve     */
} octav_quant_report;

int octav_model_num_quantizers(const octav_model *m);
/* Fills r for quantizer i. measure != 0 computes clipped fraction and
 * SQNR of the tensor last quantized (else they are NaN). */
octav_status octav_model_quantizer(octav_model *m, int i, int measure,
                                   octav_quant_report *r);

/* Labels per sample: 1, or L for a per-position (sequence) output. */
int octav_model_label_positions(const octav_model *m);

/* ---- training ------------------------------------------------------------- */
typedef enum { OCTAV_OPTIM_SGD = 0, OCTAV_OPTIM_ADAMW } octav_optim_kind;

typedef struct {
    octav_optim_kind optim;
    double lr;
    double momentum;        /* SGD (0.9)                          */
    int nesterov;           /* SGD (0)                            */
    double weight_decay;    /* on conv/linear weights only        */
    double beta1, beta2, eps; /* AdamW                            */
    octav_schedule sched;   /* total_steps etc.                   */
    double label_smoothing;
    double grad_clip;       /* max global L2 norm; 0 = off        */
    uint64_t seed;          /* dropout masks: hash(seed, step)    */
} octav_train_config;

octav_train_config octav_train_default(void);

typedef struct {
    double loss;            /* mean over the batch                */
    int64_t correct;        /* argmax == label                    */
    int64_t labelled;       /* labels counted (n, or the non-negative
                               ones of a per-position model)       */
    double lr;              /* used for this step                 */
    double grad_norm;       /* before clipping                    */
} octav_step_result;

/* Initialises parameters (Kaiming-normal conv weights with fan_out,
 * PyTorch's default uniform linear weights and biases, N(0, 1) embeddings,
 * batch/layer norm gamma 1 beta 0) from
 * the seed; zeroes optimizer state and the step counter. */
octav_status octav_model_init(octav_model *m, uint64_t seed);

/* One SGD/AdamW step on the batch x[n, c, h, w], labels[n]: forward (with
 * fake quantization and scale updates), loss, backward, update. step counts
 * from 0 and picks the learning rate. OCTAV_ENONFINITE if the loss or a
 * gradient is NaN/Inf (the parameters are then left unchanged). */
octav_status octav_model_train_step(octav_model *m, const octav_train_config *tc,
                                    int64_t step, const float *x,
                                    const int32_t *labels, int64_t n,
                                    octav_step_result *res);
/* Forward in evaluation mode (running statistics, no dropout, quantized
 * with the current scales; weight scales of dynamic methods re-solved) for
 * count images in chunks of batch; accuracy in [0,1], mean loss. */
octav_status octav_model_evaluate(octav_model *m, const float *images,
                                  const int32_t *labels, int64_t count,
                                  int64_t batch, double *accuracy, double *loss);
/* Forward in evaluation mode; logits[n, nclasses] (owned by the model,
 * valid until the next call). */
octav_status octav_model_forward(octav_model *m, const float *x, int64_t n,
                                 const float **logits);
/* The output of node id after the last forward or training step: n
 * samples of its per-sample shape, as shape (n, c, h, w); valid until the
 * next call. OCTAV_EINVAL before any forward or for a bad id. */
octav_status octav_model_activation(const octav_model *m, int id, const float **data, octav_shape *shape);
/* 1 if node id's output is known non-negative (after ReLU/ReLU6, through
 * pooling): its quantizer uses the unsigned grid. */
int octav_model_node_nonneg(const octav_model *m, int id);
/* The input node of node id (its first input), -1 for the input node. */
int octav_model_node_input(const octav_model *m, int id);

/* Calibration forward (float activations) that feeds static quantizers;
 * a no-op once calibrated. */
octav_status octav_model_calibrate(octav_model *m, const float *x, int64_t n);

int64_t octav_model_step(const octav_model *m);      /* optimizer steps taken */
int octav_model_num_classes(const octav_model *m);
void octav_model_input_shape(const octav_model *m, int *c, int *h, int *w);
/* Bytes held by the model's buffers (parameters, state, activations). */
size_t octav_model_memory(const octav_model *m);

/* ---- checkpoints (safetensors) ---------------------------------------------
 * Saves every tensor (parameters, running statistics, quantizer scales),
 * the optimizer state ("optim.m.<name>", "optim.v.<name>"), and metadata
 * (the given pairs plus "octav.step", "octav.qat"); atomic (temp + rename). */
octav_status octav_model_save(const octav_model *m, const char *path,
                              const octav_kv *meta, int nmeta);
/* Loads tensors by name. full == 1 (resume): every model tensor, the
 * optimizer state and the step must be present. full == 0 (init from a
 * float model): parameters and running statistics must be present; scales
 * and optimizer state are ignored. full == 2 (init from a pretrained
 * trunk, e.g. a transformer-mlm checkpoint for a transformer): parameters
 * and statistics present in the file are loaded, the others keep their
 * values (at least one must match). Shape mismatches are OCTAV_EFORMAT
 * naming the tensor. The metadata is returned when meta != NULL (caller
 * frees with octav_safetensors_free on a struct holding it; see .c). */
octav_status octav_model_load(octav_model *m, const char *path, int full,
                              octav_safetensors *meta_out);

/* ---- data for training -------------------------------------------------------
 * Copies ds into train and val: the images in the order of a permutation
 * drawn from seed, the last nval of it going to val (nval may be 0: val is
 * then empty and zeroed). */
octav_status octav_dataset_split(const octav_dataset *ds, int64_t nval, uint64_t seed,
                                 octav_dataset *train, octav_dataset *val);
/* Per-channel mean and standard deviation of ds (double accumulation);
 * mean and std hold ds->c floats. */
void octav_dataset_stats(const octav_dataset *ds, float *mean, float *std);
/* x = (x - mean[c]) / std[c] in place. */
void octav_dataset_normalize(octav_dataset *ds, const float *mean, const float *std);
/* perm = a uniformly random permutation of 0..n-1 (Fisher-Yates, seed). */
void octav_permutation(int64_t *perm, int64_t n, uint64_t seed);
/* Gathers images idx[0..n) of ds into x[n, c, h, w] and their labels into
 * y. Augmentation (training): pad > 0 shifts each image by a random offset
 * in [-pad, pad]^2 filling with zeros (random crop of the zero-padded
 * image), flip != 0 mirrors it horizontally with probability 1/2; the
 * choices are octav_hash_u64(seed, i) for batch position i, so they do not
 * depend on the thread count. */
void octav_batch_gather(const octav_dataset *ds, const int64_t *idx, int64_t n, int pad,
                        int flip, uint64_t seed, float *x, int32_t *y);

#ifdef __cplusplus
}
#endif
#endif
