#!/usr/bin/python3
"""Reads an octav checkpoint (safetensors) with nothing but the format's
specification and NumPy, optionally into PyTorch tensors, and prints its
metadata and tensors:
    /usr/bin/python3 scripts/read_checkpoint.py CKPT [--torch]
safetensors: 8-byte little-endian header length N, N bytes of JSON
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
then the data buffer the offsets point into."""
import json
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16}


def read(path):
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
        data = fh.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        tensors[name] = np.frombuffer(data[b:e], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
    return meta, tensors


def main():
    meta, tensors = read(sys.argv[1])
    for k, v in sorted(meta.items()):
        print(f"meta {k} = {v[:100]}")
    if "--torch" in sys.argv[2:]:
        import torch
        tensors = {k: torch.from_numpy(v.copy()) for k, v in tensors.items()}
    for k, v in tensors.items():
        print(f"{k:40s} {str(tuple(v.shape)):20s} {type(v).__module__}  mean|x| {float(abs(v).mean()):.6g}")


if __name__ == "__main__":
    main()
