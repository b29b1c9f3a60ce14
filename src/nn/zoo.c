/* zoo.c -- the built-in models, sized for 28x28 (Fashion-MNIST) and 32x32
 * (CIFAR-10) inputs:
 *   mlp          flatten, 2 hidden linear+BN+ReLU layers, dropout, linear
 *   cnn          small VGG: 2x(conv3x3 32) pool, 2x(conv3x3 64) pool,
 *                linear 256, dropout, linear (BN after every conv/hidden linear)
 *   resnet20     He et al.'s CIFAR ResNet: conv 16, 3 stages of 3 basic
 *                blocks (16, 32, 64 channels; stride 2 entering stages 2
 *                and 3 with a 1x1 conv + BN projection), GAP, linear
 *   mobilenetv2  Sandler et al.'s inverted residuals (expand 1x1, depthwise
 *                3x3, project 1x1, ReLU6, residual when shapes agree) with
 *                the CIFAR stem (stride 1) and the width multiplier
 *   transformer  encoder-only, pre-LayerNorm (token + learned position
 *                embeddings; per block x += proj(attn(ln1 x)), x +=
 *                fc2(gelu(fc1(ln2 x))); final ln_f), [CLS] (position 0)
 *                classified by a linear head; transformer-mlm has a
 *                per-position head over the vocabulary instead (masked-
 *                token pretraining). Dropout after the embeddings and on
 *                each residual branch.
 * Names follow PyTorch-like dotted paths ("layer2.0.conv1"). */
#include <stdio.h>
#include <string.h>

#include "nn/model_internal.h"

#define TF_MIN_VOCAB 2  /* padding (id 0) and one more token */

const char *const octav_model_names[] = {"mlp", "cnn", "resnet20", "mobilenetv2", "transformer",
                                         "transformer-mlm", NULL};

octav_model_options octav_model_options_default(void) {
    octav_model_options o = {.width = 1.0f, .dropout = 0.25f, .hidden = 512,
                             .dim = 128, .heads = 4, .layers = 4, .tf_dropout = 0.1f};
    return o;
}

/* conv + BN (+ ReLU / ReLU6 when act is 1 / 6) */
static int conv_bn(octav_model *m, const char *name, int in, int c_out, int k, int stride, int groups, int act) {
    char cn[NODE_NAME_MAX], bn[NODE_NAME_MAX];
    snprintf(cn, sizeof cn, "%s.conv", name);
    snprintf(bn, sizeof bn, "%s.bn", name);
    int x = octav_add_conv2d(m, cn, in, c_out, k, stride, k / 2, groups, 0);
    x = octav_add_batchnorm(m, bn, x);
    if (act == 1) x = octav_add_relu(m, x);
    if (act == 6) x = octav_add_relu6(m, x);
    return x;
}

static void build_mlp(octav_model *m, int nclasses, const octav_model_options *o) {
    int x = octav_add_flatten(m, 0);
    x = octav_add_linear(m, "fc1", x, o->hidden, 0);
    x = octav_add_relu(m, octav_add_batchnorm(m, "bn1", x));
    x = octav_add_linear(m, "fc2", x, o->hidden, 0);
    x = octav_add_relu(m, octav_add_batchnorm(m, "bn2", x));
    if (o->dropout > 0) x = octav_add_dropout(m, x, o->dropout);
    octav_add_linear(m, "fc3", x, nclasses, 1);
}

static void build_cnn(octav_model *m, int nclasses, const octav_model_options *o) {
    int x = conv_bn(m, "features.0", 0, 32, 3, 1, 1, 1);
    x = conv_bn(m, "features.1", x, 32, 3, 1, 1, 1);
    x = octav_add_maxpool(m, x, 2, 2, 0);
    x = conv_bn(m, "features.2", x, 64, 3, 1, 1, 1);
    x = conv_bn(m, "features.3", x, 64, 3, 1, 1, 1);
    x = octav_add_maxpool(m, x, 2, 2, 0);
    x = octav_add_flatten(m, x);
    x = octav_add_linear(m, "classifier.0", x, 256, 0);
    x = octav_add_relu(m, octav_add_batchnorm(m, "classifier.1", x));
    if (o->dropout > 0) x = octav_add_dropout(m, x, o->dropout);
    octav_add_linear(m, "classifier.2", x, nclasses, 1);
}

static void build_resnet20(octav_model *m, int nclasses) {
    int x = conv_bn(m, "stem", 0, 16, 3, 1, 1, 1);
    int cin = 16;
    for (int stage = 0; stage < 3; stage++) {
        int c = 16 << stage;
        for (int b = 0; b < 3; b++) {
            int stride = (stage > 0 && b == 0) ? 2 : 1;
            char name[NODE_NAME_MAX];
            snprintf(name, sizeof name, "layer%d.%d.1", stage + 1, b);
            int y = conv_bn(m, name, x, c, 3, stride, 1, 1);
            snprintf(name, sizeof name, "layer%d.%d.2", stage + 1, b);
            y = conv_bn(m, name, y, c, 3, 1, 1, 0);
            int sc = x;
            if (stride != 1 || cin != c) {
                snprintf(name, sizeof name, "layer%d.%d.shortcut", stage + 1, b);
                sc = conv_bn(m, name, x, c, 1, stride, 1, 0);
            }
            x = octav_add_relu(m, octav_add_add(m, y, sc));
            cin = c;
        }
    }
    x = octav_add_gap(m, x);
    octav_add_linear(m, "fc", x, nclasses, 1);
}

static int make_divisible(double v) {
    int d = 8, r = (int)(v + d / 2.0) / d * d;
    if (r < d) r = d;
    if (r < 0.9 * v) r += d;
    return r;
}

static void build_mobilenetv2(octav_model *m, int nclasses, const octav_model_options *o) {
    /* t (expansion), c (channels), n (repeats), s (first stride); CIFAR
     * variant: stem and the second stage at stride 1. */
    static const int cfg[7][4] = {{1, 16, 1, 1}, {6, 24, 2, 1}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                  {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    double w = o->width > 0 ? o->width : 1.0;
    int cin = make_divisible(32 * w);
    int x = conv_bn(m, "stem", 0, cin, 3, 1, 1, 6);
    int blk = 0;
    for (int i = 0; i < 7; i++) {
        int cout = make_divisible(cfg[i][1] * w);
        for (int r = 0; r < cfg[i][2]; r++, blk++) {
            int stride = r == 0 ? cfg[i][3] : 1, hid = cin * cfg[i][0];
            char name[NODE_NAME_MAX];
            int y = x;
            if (cfg[i][0] != 1) {
                snprintf(name, sizeof name, "blocks.%d.expand", blk);
                y = conv_bn(m, name, y, hid, 1, 1, 1, 6);
            }
            snprintf(name, sizeof name, "blocks.%d.dw", blk);
            y = conv_bn(m, name, y, hid, 3, stride, hid, 6);
            snprintf(name, sizeof name, "blocks.%d.project", blk);
            y = conv_bn(m, name, y, cout, 1, 1, 1, 0);
            x = (stride == 1 && cin == cout) ? octav_add_add(m, x, y) : y;
            cin = cout;
        }
    }
    int clast = w > 1.0 ? make_divisible(1280 * w) : 1280;
    x = conv_bn(m, "head", x, clast, 1, 1, 1, 6);
    x = octav_add_gap(m, x);
    if (o->dropout > 0) x = octav_add_dropout(m, x, o->dropout);
    octav_add_linear(m, "classifier", x, nclasses, 1);
}

static void build_transformer(octav_model *m, int nclasses, int mlm, const octav_model_options *o) {
    char nm[NODE_NAME_MAX];
    const int d = o->dim, f = o->mlp > 0 ? o->mlp : 4 * d;
    const float p = o->tf_dropout;
    int x = octav_add_embedding(m, "embed", 0, o->vocab, d);
    if (p > 0) x = octav_add_dropout(m, x, p);
    for (int i = 0; i < o->layers; i++) {
#define NM(s) (snprintf(nm, sizeof nm, "block%d.%s", i, s), nm)
        int h = octav_add_layernorm(m, NM("ln1"), x);
        h = octav_add_dense(m, NM("qkv"), h, 3 * d, 1);
        h = octav_add_attention(m, NM("attn"), h, 0, o->heads);
        h = octav_add_dense(m, NM("proj"), h, d, 1);
        if (p > 0) h = octav_add_dropout(m, h, p);
        x = octav_add_add(m, x, h);
        h = octav_add_layernorm(m, NM("ln2"), x);
        h = octav_add_dense(m, NM("fc1"), h, f, 1);
        h = octav_add_gelu(m, h);
        h = octav_add_dense(m, NM("fc2"), h, d, 1);
        if (p > 0) h = octav_add_dropout(m, h, p);
        x = octav_add_add(m, x, h);
#undef NM
    }
    x = octav_add_layernorm(m, "ln_f", x);
    if (mlm) {
        octav_add_dense(m, "mlm", x, o->vocab, 1);
    } else {
        x = octav_add_token(m, x, 0);
        octav_add_linear(m, "head", x, nclasses, 1);
    }
}

octav_status octav_model_zoo(const char *name, int c, int h, int w, int nclasses,
                             const octav_model_options *opt, octav_model **out) {
    if (!name || !out) return octav_set_error(OCTAV_EINVAL, "model: NULL argument");
    *out = NULL;
    octav_model_options o = opt ? *opt : octav_model_options_default();
    int tf = strncmp(name, "transformer", 11) == 0;
    if (nclasses < 2 && strcmp(name, "transformer-mlm") != 0)
        return octav_set_error(OCTAV_EINVAL, "model: %d classes (need at least 2)", nclasses);
    if (tf && (c != 1 || h != 1 || w < 2 || o.vocab < TF_MIN_VOCAB || o.dim < 1 || o.heads < 1 ||
               o.dim % o.heads || o.layers < 1 || o.mlp < 0 || !(o.tf_dropout >= 0 && o.tf_dropout < 1)))
        return octav_set_error(OCTAV_EINVAL,
                               "model '%s': needs token input (1, 1, L >= 2) (got %dx%dx%d), vocab >= %d (%d), "
                               "heads dividing dim (%d, %d), layers >= 1 (%d), dropout in [0, 1) (%g)",
                               name, c, h, w, TF_MIN_VOCAB, o.vocab, o.heads, o.dim, o.layers,
                               (double)o.tf_dropout);
    if (!(o.width > 0 && o.width <= 4) || !(o.dropout >= 0 && o.dropout < 1) || o.hidden < 1)
        return octav_set_error(OCTAV_EINVAL, "model: bad options (width %g in (0, 4], dropout %g in [0, 1), hidden %d)",
                               (double)o.width, (double)o.dropout, o.hidden);
    int which = -1;
    for (int i = 0; octav_model_names[i]; i++)
        if (strcmp(name, octav_model_names[i]) == 0) which = i;
    if (which < 0)
        return octav_set_error(OCTAV_EINVAL,
                               "model '%s': expected mlp, cnn, resnet20, mobilenetv2, transformer or transformer-mlm",
                               name);
    if (which > 0 && !tf && (h < 8 || w < 8))
        return octav_set_error(OCTAV_EINVAL, "model '%s': input %dx%d smaller than 8x8", name, h, w);
    octav_model *m;
    octav_status st = octav_model_create(c, h, w, &m);
    if (st) return st;
    switch (which) {
    case 0: build_mlp(m, nclasses, &o); break;
    case 1: build_cnn(m, nclasses, &o); break;
    case 2: build_resnet20(m, nclasses); break;
    case 3: build_mobilenetv2(m, nclasses, &o); break;
    default: build_transformer(m, nclasses, which == 5, &o); break;
    }
    if ((st = octav_model_finalize(m))) { octav_model_destroy(m); return st; }
    *out = m;
    return OCTAV_OK;
}
