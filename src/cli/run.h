/* run.h -- shared by `octav train` and `octav eval`: the run configuration
 * and its JSON form (kept in checkpoints), data loading, model building,
 * and the progress line on stderr. */
#ifndef OCTAV_CLI_RUN_H
#define OCTAV_CLI_RUN_H

#include "cli/cli.h"
#include "octav/model.h"

#include <cjson/cJSON.h>

typedef struct {
    char model[32];
    char data[4096];
    int epochs;
    int64_t batch;
    double lr;
    octav_optim_kind optimizer;
    octav_sched_kind sched;
    double warmup;            /* epochs of linear warmup */
    double momentum;
    int nesterov;
    double weight_decay;
    double label_smoothing;
    double grad_clip;
    uint64_t seed;
    int bits;                 /* 32 = float */
    int first_last_bits;
    char clip[48];
    char grad[16];
    char weight_gran[16];
    int calib_batches;
    int64_t val;              /* validation images split off the training set */
    int64_t limit;            /* use only this many training images (0 = all) */
    int aug_pad;
    int aug_flip;
    double width;
    double dropout;
    char init[4096];
    /* transformer and the langid corpus */
    char task[16];            /* "classify" or "mlm" (masked-token pretraining) */
    int dim, heads, layers, mlp;
    char langs[256];          /* comma list, "" = all 12 */
    int64_t words_per_lang;
    int max_len;
    int vocab;                /* set when the corpus is loaded */
} run_config;

void run_config_defaults(run_config *c);
void run_config_finish(run_config *c);
int run_config_check(const run_config *c);          /* prints the error */
cJSON *run_config_json(const run_config *c);
int run_config_from_json(const char *text, run_config *c);
/* Training and test sets; val receives the corpus's own validation split
 * for langid data (token ids as floats, (1, 1, max_len)) and is left empty
 * for image data (train.c splits it off the training set). Sets c->vocab. */
int run_load_data(run_config *c, octav_dataset *train, octav_dataset *val, octav_dataset *test);
int run_is_langid(const run_config *c);
/* What the last run_load_data of langid data read (NULL for images). */
const char *run_data_summary(void);
int run_is_transformer(const run_config *c);
/* The zoo name: transformer-mlm for --task mlm. */
const char *run_zoo_name(const run_config *c);
/* Masked-token inputs for the n sequences of xb (token ids as floats, in
 * place) and their per-position labels (n * max_len); sample ids key the
 * masks (octav_langid_mask). */
void run_mlm_mask(const run_config *c, float *xb, int32_t *labels, const int64_t *ids, int64_t n, uint64_t seed,
                  int32_t *tmp);
/* Masks a whole evaluation set once (sample index as id) in place and
 * returns its per-position labels (malloc'ed; NULL when out of memory).
 * `octav train` and `octav eval` use the same seeds, so eval reproduces
 * the run's masked-token accuracy. */
#define RUN_MLM_VAL_SEED 0x7a1u
#define RUN_MLM_TEST_SEED 0x7e57u
int32_t *run_mlm_mask_set(const run_config *c, octav_dataset *ds, uint64_t seed);
int run_build_model(const run_config *c, int ch, int h, int w, int nclasses, octav_model **out);
double run_now(void);
/* The model's quantizers as a JSON array (layer, tensor, bits, grid, groups,
 * scale, clipped_fraction, sqnr_db, octav_iterations); NULL on failure. */
cJSON *run_quant_json(octav_model *m);
/* Checkpoint metadata: a value by key (NULL if absent), and the per-channel
 * normalisation "m0,m1,..;s0,s1,.." (parse returns 0 if malformed). */
const char *run_meta_get(const octav_safetensors *st, const char *key);
void run_norm_format(const float *mean, const float *std, int c, char *buf, size_t cap);
int run_norm_parse(const char *s, float *mean, float *std, int c);

typedef struct {
    int tty, quiet;
    double last;
    const char *unit;   /* "img" or "words" (per second) */
} progress;

void progress_init(progress *p, int quiet);
void progress_update(progress *p, int epoch, int epochs, int64_t step, int64_t steps, double loss,
                     double acc, double ips, double eta, int final);

int cli_train(int argc, char **argv);
void cli_train_usage(FILE *f);
int cli_eval(int argc, char **argv);
void cli_eval_usage(FILE *f);

#endif
