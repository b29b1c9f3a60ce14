/* main.c -- the octav command: dispatches to subcommands. */
#include "cli/run.h"

#include <stdio.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: octav <command> [options]\n"
            "\n"
            "Quantization-aware training with MSE-optimal (OCTAV) clipping.\n"
            "\n"
            "commands:\n"
            "  clip     best clipping scalar per tensor (or channel/block) and how it\n"
            "           compares with max, percentile, sigma, ACIQ, MSE sweep, entropy\n"
            "  train    train a model (float or quantization-aware with OCTAV clipping)\n"
            "  pretrain masked-character pretraining of the transformer on the word\n"
            "           lists (octav train --model transformer --data langid --task mlm)\n"
            "  eval     test accuracy and per-layer quantization of a checkpoint\n"
            "  bench    solver and fake-quantization speed against the memory floor,\n"
            "           training-step speed (float and QAT) of the built-in models\n"
            "  help     show help for a command (octav help clip)\n"
            "\n"
            "options:\n"
            "  -h, --help     show this help\n"
            "  --version      print the version\n"
            "\n"
            "Exit status: 0 success, 1 runtime error (bad file, bad data), 2 usage error.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return EXIT_USAGE; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help")) { usage(stdout); return EXIT_OK; }
    if (!strcmp(cmd, "--version")) { printf("octav %s\n", OCTAV_VERSION_STRING); return EXIT_OK; }
    if (!strcmp(cmd, "clip")) return cli_clip(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench")) return cli_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "train")) return cli_train(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval")) return cli_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "pretrain")) {
        /* octav train --model transformer --data langid --task mlm ARGS
         * (later options override the first three) */
        char *args[4096];
        if (argc > 4090) { cli_errorf("too many arguments"); return EXIT_USAGE; }
        char a0[] = "pretrain", m[] = "--model=transformer", d[] = "--data=langid", t[] = "--task=mlm";
        int n = 0;
        args[n++] = a0; args[n++] = m; args[n++] = d; args[n++] = t;
        for (int i = 2; i < argc; i++) args[n++] = argv[i];
        args[n] = NULL;
        return cli_train(n, args);
    }
    if (!strcmp(cmd, "help")) {
        if (argc < 3) { usage(stdout); return EXIT_OK; }
        if (!strcmp(argv[2], "clip")) { cli_clip_usage(stdout); return EXIT_OK; }
        if (!strcmp(argv[2], "bench")) { cli_bench_usage(stdout); return EXIT_OK; }
        if (!strcmp(argv[2], "train")) { cli_train_usage(stdout); return EXIT_OK; }
        if (!strcmp(argv[2], "eval")) { cli_eval_usage(stdout); return EXIT_OK; }
        cli_errorf("no help for unknown command '%s'", argv[2]);
        return EXIT_USAGE;
    }
    cli_errorf("unknown command '%s' (try 'octav --help')", cmd);
    return EXIT_USAGE;
}
