/* bench.h -- shared by the parts of `octav bench`: timing helpers and the
 * output state (text table or one JSON document whose cases are written
 * by several files). */
#ifndef OCTAV_CLI_BENCH_H
#define OCTAV_CLI_BENCH_H

#include <stdint.h>

typedef struct {
    double med, lo, hi;
} bench_timing;

typedef struct {
    int json;          /* --json                                          */
    int first;         /* no case printed yet (JSON commas)               */
    int reps;          /* --reps: timed repetitions (training: steps)     */
    const char *only;  /* --case SUBSTRING, or NULL                       */
} bench_out;

typedef struct {
    int quick;         /* cnn only, batch 16 unless --batch, 1 warm-up    */
    int warmup;        /* untimed steps first (-1: default)               */
    int64_t batch;     /* images per step (0: default 128; quick 16)      */
    int cifar;         /* 3x32x32 inputs instead of 1x28x28               */
    double width;      /* mobilenetv2 width multiplier                    */
} bench_train_opts;

double bench_now_ms(void);
/* Sorts t[0..r) and returns its median, minimum and maximum. */
bench_timing bench_summarize(double *t, int r);

/* `octav bench train`: training steps of the built-in models, float and
 * QAT (max-scaling, dynamic OCTAV). Returns non-zero on failure. */
int bench_train(bench_out *o, const bench_train_opts *t);

#endif
