#!/bin/sh
# demo.sh -- the built-in example: OCTAV clipping on a small CNN trained on
# Fashion-MNIST (examples/fashion_cnn.safetensors, made by
# scripts/make_demo_data.py): 4-bit per-channel weights and per-tensor
# unsigned activations, every method compared.
set -eu
octav=${1:-build/octav}
ex=examples/fashion_cnn.safetensors
echo "== 4-bit weights, one scale per output channel (paper: conv weights) =="
"$octav" clip --bits 4 --granularity channel "$ex:conv2.weight" "$ex:conv3.weight"
echo "== 4-bit post-ReLU activations, one scale per tensor, unsigned grid =="
"$octav" clip --bits 4 --unsigned "$ex:conv2.input" "$ex:conv3.input"
echo "== 2-bit weights per tensor: where clipping matters most =="
"$octav" clip --bits 2 --method octav,max,percentile-99.9,mse-sweep "$ex:conv3.weight"
