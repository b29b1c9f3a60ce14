/* cli.h -- shared pieces of the octav command-line tool: subcommand entry
 * points, exit codes and small helpers. The CLI is the only place that
 * prints; it turns library statuses into one-line messages on stderr. */
#ifndef OCTAV_CLI_H
#define OCTAV_CLI_H

#include "octav/io.h"
#include "octav/quant.h"

#include <stdio.h>

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

int cli_clip(int argc, char **argv);
void cli_clip_usage(FILE *f);
int cli_bench(int argc, char **argv);
void cli_bench_usage(FILE *f);

/* Prints "octav: <what>: <library message>" to stderr. */
void cli_error(const char *what);
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Strict number parsing: the whole string must be a number in [lo, hi]. */
int cli_parse_int(const char *s, long lo, long hi, long *out);

/* A tensor to process, with the name shown to the user. */
typedef struct {
    char *label;          /* "file.npy" or "file.safetensors:name" */
    octav_tensor t;
} cli_tensor;

/* Loads FILE (.npy or .safetensors, told apart by their magic) or
 * FILE:NAME (one safetensors tensor). Appends to *list. */
int cli_load_tensors(const char *arg, cli_tensor **list, int *n);
void cli_free_tensors(cli_tensor *list, int n);

#endif
