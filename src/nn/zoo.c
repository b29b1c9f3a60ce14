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
 * Names follow PyTorch-like dotted paths ("layer2.0.conv1"). */
#include <stdio.h>
#include <string.h>

#include "nn/model_internal.h"

const char *const octav_model_names[] = {"mlp", "cnn", "resnet20", "mobilenetv2", NULL};

octav_model_options octav_model_options_default(void) {
    octav_model_options o = {.width = 1.0f, .dropout = 0.25f, .hidden = 512};
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

octav_status octav_model_zoo(const char *name, int c, int h, int w, int nclasses,
                             const octav_model_options *opt, octav_model **out) {
    if (!name || !out) return octav_set_error(OCTAV_EINVAL, "model: NULL argument");
    *out = NULL;
    if (nclasses < 2) return octav_set_error(OCTAV_EINVAL, "model: %d classes (need at least 2)", nclasses);
    octav_model_options o = opt ? *opt : octav_model_options_default();
    if (!(o.width > 0 && o.width <= 4) || !(o.dropout >= 0 && o.dropout < 1) || o.hidden < 1)
        return octav_set_error(OCTAV_EINVAL, "model: bad options (width %g in (0, 4], dropout %g in [0, 1), hidden %d)",
                               (double)o.width, (double)o.dropout, o.hidden);
    int which = -1;
    for (int i = 0; octav_model_names[i]; i++)
        if (strcmp(name, octav_model_names[i]) == 0) which = i;
    if (which < 0)
        return octav_set_error(OCTAV_EINVAL, "model '%s': expected mlp, cnn, resnet20 or mobilenetv2", name);
    if (which > 0 && (h < 8 || w < 8))
        return octav_set_error(OCTAV_EINVAL, "model '%s': input %dx%d smaller than 8x8", name, h, w);
    octav_model *m;
    octav_status st = octav_model_create(c, h, w, &m);
    if (st) return st;
    switch (which) {
    case 0: build_mlp(m, nclasses, &o); break;
    case 1: build_cnn(m, nclasses, &o); break;
    case 2: build_resnet20(m, nclasses); break;
    default: build_mobilenetv2(m, nclasses, &o); break;
    }
    if ((st = octav_model_finalize(m))) { octav_model_destroy(m); return st; }
    *out = m;
    return OCTAV_OK;
}
