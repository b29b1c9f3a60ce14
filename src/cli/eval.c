/* eval.c -- `octav eval CKPT`: test accuracy of a checkpoint written by
 * `octav train`, quantized as trained and in float (the same weights
 * without fake quantization), and a per-layer table of the quantizers:
 * bits, grid, clipping scalar, clipped fraction and SQNR on a test batch. */
#define _POSIX_C_SOURCE 200809L
#include "cli/run.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_eval_usage(FILE *f) {
    fprintf(f,
            "usage: octav eval [options] CKPT\n"
            "\n"
            "Evaluates a checkpoint of `octav train` on the test set of its data:\n"
            "accuracy of the model as trained (fake-quantized for QAT runs, with its\n"
            "final clipping scalars) and of the same weights in float, then one row per\n"
            "quantizer (each conv/linear weight and input).\n"
            "\n"
            "options:\n"
            "  --data DIR        dataset (default: the one the run trained on)\n"
            "  --batch N         evaluation batch (default 256)\n"
            "  -j, --json        one JSON document instead of the table\n"
            "  -t, --threads N   threads (default: all cores)\n"
            "  --dump FILE       write a safetensors file with every conv/linear layer's\n"
            "                    weight (NAME.weight) and float input on the first test\n"
            "                    batch (NAME.input), for `octav clip FILE` (metadata\n"
            "                    octav.unsigned lists the inputs that are >= 0)\n"
            "  -h, --help        show this help\n"
            "\n"
            "Exit status: 0 success, 1 bad checkpoint or data, 2 usage error.\n");
}

/* --dump: every conv/linear weight and its float input on one batch. */
static int dump_inputs(octav_model *m, const float *x, int64_t n, const char *path) {
    if (octav_model_forward(m, x, n, NULL)) { cli_error("--dump"); return 0; }
    int nn = octav_model_num_nodes(m), cnt = 0, ok = 1;
    octav_tensor *ts = calloc((size_t)(2 * nn), sizeof *ts);
    char *unsig = calloc((size_t)nn, 80);
    if (!ts || !unsig) { free(ts); free(unsig); cli_errorf("out of memory"); return 0; }
    for (int id = 1; id < nn && ok; id++) {
        octav_op op = octav_model_node_op(m, id);
        if (op != OCTAV_OP_CONV2D && op != OCTAV_OP_LINEAR) continue;
        const char *name = octav_model_node_name(m, id);
        char tn[128];
        snprintf(tn, sizeof tn, "%s.weight", name);
        for (int i = 0; i < octav_model_num_tensors(m); i++) {
            octav_tensor_ref t = octav_model_tensor(m, i);
            if (strcmp(t.name, tn) == 0) {
                ts[cnt].name = strdup(tn);
                ts[cnt].shape = t.shape;
                ts[cnt++].data = t.data;
            }
        }
        int in = octav_model_node_input(m, id);
        const float *a;
        octav_shape s;
        if (octav_model_activation(m, in, &a, &s)) { cli_error("--dump"); ok = 0; break; }
        snprintf(tn, sizeof tn, "%s.input", name);
        ts[cnt].name = strdup(tn);
        ts[cnt].shape = s;
        ts[cnt++].data = (float *)a;
        if (octav_model_node_nonneg(m, in)) {
            if (unsig[0]) strcat(unsig, ",");
            strcat(unsig, tn);
        }
    }
    octav_kv kv[1] = {{"octav.unsigned", unsig}};
    if (ok && octav_safetensors_write(path, ts, cnt, kv, 1)) { cli_error("--dump"); ok = 0; }
    for (int i = 0; i < cnt; i++) free(ts[i].name);   /* the data belongs to the model */
    free(ts);
    free(unsig);
    return ok;
}

int cli_eval(int argc, char **argv) {
    static const struct option lo[] = {{"data", required_argument, 0, 'd'}, {"batch", required_argument, 0, 'b'},
                                       {"json", no_argument, 0, 'j'},      {"threads", required_argument, 0, 't'},
                                       {"help", no_argument, 0, 'h'},      {"dump", required_argument, 0, 'D'},
                                       {0, 0, 0, 0}};
    const char *data = NULL, *dump = NULL;
    long batch = 256, threads = 0;
    int json = 0, opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "d:b:jt:h", lo, NULL)) != -1) {
        switch (opt) {
        case 'd': data = optarg; break;
        case 'D': dump = optarg; break;
        case 'b':
            if (!cli_parse_int(optarg, 1, 65536, &batch)) { cli_errorf("--batch '%s': expected 1..65536", optarg); return EXIT_USAGE; }
            break;
        case 't':
            if (!cli_parse_int(optarg, 1, 1024, &threads)) { cli_errorf("--threads '%s': expected 1..1024", optarg); return EXIT_USAGE; }
            break;
        case 'j': json = 1; break;
        case 'h': cli_eval_usage(stdout); return EXIT_OK;
        default: cli_eval_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) { cli_errorf("expected one checkpoint (try 'octav eval --help')"); return EXIT_USAGE; }
    const char *path = argv[optind];
    if (threads) octav_set_threads((int)threads);

    octav_safetensors st;
    if (octav_safetensors_read(path, &st)) { cli_error("eval"); return EXIT_FAIL; }
    run_config c;
    const char *cfg = run_meta_get(&st, "octav.config"), *nm = run_meta_get(&st, "octav.normalize");
    int ok = cfg && nm && run_config_from_json(cfg, &c);
    char norm[256] = "";
    if (ok && strlen(nm) < sizeof norm) snprintf(norm, sizeof norm, "%s", nm);
    else ok = 0;
    octav_safetensors_free(&st);
    if (!ok) { cli_errorf("%s: not an octav checkpoint (octav.config / octav.normalize metadata missing)", path); return EXIT_FAIL; }
    if (data) {
        if (strlen(data) >= sizeof c.data) { cli_errorf("--data: path too long"); return EXIT_USAGE; }
        snprintf(c.data, sizeof c.data, "%s", data);
    }
    octav_dataset train, val, test;
    if (!run_load_data(&c, &train, &val, &test)) return EXIT_FAIL;
    octav_dataset_free(&train);
    octav_dataset_free(&val);
    int32_t *pos_labels = NULL;   /* mlm: the masked test set's per-position labels */
    float mean[4], sd[4];
    int status = EXIT_FAIL;
    octav_model *mq = NULL, *mf = NULL;
    cJSON *doc = NULL;
    if (test.c > 4 || !run_norm_parse(norm, mean, sd, (int)test.c)) {
        cli_errorf("%s: normalisation metadata '%s' does not fit %lld-channel data", path, norm, (long long)test.c);
        goto done;
    }
    if (!run_is_langid(&c)) octav_dataset_normalize(&test, mean, sd);
    if (strcmp(c.task, "mlm") == 0 && !(pos_labels = run_mlm_mask_set(&c, &test, RUN_MLM_TEST_SEED))) {
        cli_errorf("out of memory");
        goto done;
    }
    const int32_t *labels = pos_labels ? pos_labels : test.labels;
    run_config cf = c;
    cf.bits = 32;
    if (!run_build_model(&c, (int)test.c, (int)test.h, (int)test.w, test.nclasses, &mq) ||
        !run_build_model(&cf, (int)test.c, (int)test.h, (int)test.w, test.nclasses, &mf))
        goto done;
    if (octav_model_load(mq, path, octav_model_quantized(mq), NULL) || octav_model_load(mf, path, 0, NULL)) {
        cli_error("eval");
        goto done;
    }
    double qacc = 0, qloss = 0, facc = 0, floss = 0;
    if (octav_model_evaluate(mf, test.images, labels, test.n, batch, &facc, &floss) ||
        octav_model_evaluate(mq, test.images, labels, test.n, batch, &qacc, &qloss)) {
        cli_error("eval");
        goto done;
    }
    /* the per-layer table is measured on the first test batch */
    int64_t n1 = test.n < batch ? test.n : batch;
    if (dump && !dump_inputs(mf, test.images, n1, dump)) goto done;
    if (octav_model_forward(mq, test.images, n1, NULL)) { cli_error("eval"); goto done; }
    int nq = octav_model_num_quantizers(mq);
    const char *qname = octav_model_quantized(mq) ? octav_qat_clip_name(octav_model_get_qat(mq)) : "float";
    if (json) {
        doc = cJSON_CreateObject();
        cJSON_AddStringToObject(doc, "checkpoint", path);
        cJSON_AddStringToObject(doc, "model", run_zoo_name(&c));
        cJSON_AddNumberToObject(doc, "bits", c.bits);
        cJSON_AddStringToObject(doc, "clip", qname);
        cJSON_AddNumberToObject(doc, "test_images", (double)test.n);
        cJSON_AddNumberToObject(doc, "test_accuracy", qacc);
        cJSON_AddNumberToObject(doc, "test_loss", qloss);
        cJSON_AddNumberToObject(doc, "float_test_accuracy", facc);
        cJSON_AddNumberToObject(doc, "float_test_loss", floss);
        cJSON *arr = run_quant_json(mq);
        if (!arr) { cli_error("eval"); goto done; }
        cJSON_AddItemToObject(doc, "quantizers", arr);
        char *s = cJSON_Print(doc);
        if (!s) { cli_errorf("out of memory"); goto done; }
        printf("%s\n", s);
        free(s);
    } else {
        printf("%s  %s  %s\n", path, run_zoo_name(&c), octav_model_quantized(mq) ? "" : "(float)");
        if (octav_model_quantized(mq))
            printf("test accuracy  %.2f%% quantized (%d-bit, first/last %d, %s)   %.2f%% float weights\n", 100 * qacc,
                   c.bits, c.first_last_bits, qname, 100 * facc);
        else
            printf("test accuracy  %.2f%% (loss %.4f) on %lld images\n", 100 * facc, floss, (long long)test.n);
        if (nq) {
            printf("\n%-26s %-6s %4s %-8s %6s %11s %9s %9s\n", "layer", "tensor", "bits", "grid", "groups", "scale",
                   "clipped%", "SQNR dB");
            for (int i = 0; i < nq; i++) {
                octav_quant_report r;
                if (octav_model_quantizer(mq, i, 1, &r)) { cli_error("eval"); goto done; }
                printf("%-26s %-6s %4d %-8s %6lld %11.5g %9.4f %9.2f\n", r.node, r.operand,
                       r.bits, octav_grid_name(r.grid), (long long)r.ngroups, r.scale, 100 * r.clipped_fraction,
                       r.sqnr_db);
            }
            printf("(clipped%% and SQNR of the weights and of the first test batch's inputs)\n");
        }
    }
    status = EXIT_OK;
done:
    cJSON_Delete(doc);
    octav_model_destroy(mq);
    octav_model_destroy(mf);
    octav_dataset_free(&test);
    free(pos_labels);
    return status;
}
