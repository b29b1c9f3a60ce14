#!/usr/bin/python3
"""Makes examples/fashion_cnn.safetensors: the built-in example of `octav clip`.

Trains a small CNN (conv 1->16, conv 16->32, conv 32->64, global average
pool, linear 64->10) on Fashion-MNIST (Debian package dataset-fashion-mnist)
for one epoch with PyTorch (Debian python3-torch), then stores its weights and
the post-ReLU activations that feed conv2 and conv3 for 8 test images, so the
example holds real trained tensors: signed weights and sparse unsigned
activations. Run: /usr/bin/python3 scripts/make_demo_data.py
Deterministic given the seed and thread count (2)."""
import gzip, json, os, struct, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = os.environ.get("FASHION_MNIST", "/usr/share/datasets/fashion-mnist")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "fashion_cnn.safetensors")


def idx(path):
    with gzip.open(path, "rb") as f:
        buf = f.read()
    magic, = struct.unpack(">i", buf[:4])
    nd = magic & 0xff
    dims = struct.unpack(">" + "i" * nd, buf[4:4 + 4 * nd])
    return np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x, keep=None):
        a1 = F.max_pool2d(F.relu(self.conv1(x)), 2)
        a2 = F.max_pool2d(F.relu(self.conv2(a1)), 2)
        if keep is not None:
            keep["conv2.input"], keep["conv3.input"] = a1, a2
        a3 = F.relu(self.conv3(a2)).mean(dim=(2, 3))
        return self.fc(a3)


def save_safetensors(path, tensors, meta):
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, arr in tensors.items():
        b = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(tmp, path)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    xtr = torch.tensor(idx(f"{DATA}/train-images-idx3-ubyte.gz"), dtype=torch.float32).unsqueeze(1) / 255.0
    ytr = torch.tensor(idx(f"{DATA}/train-labels-idx1-ubyte.gz"), dtype=torch.long)
    xte = torch.tensor(idx(f"{DATA}/t10k-images-idx3-ubyte.gz"), dtype=torch.float32).unsqueeze(1) / 255.0
    yte = torch.tensor(idx(f"{DATA}/t10k-labels-idx1-ubyte.gz"), dtype=torch.long)
    net = Net()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    perm = torch.randperm(len(xtr))
    net.train()
    for i in range(0, len(xtr), 128):
        b = perm[i:i + 128]
        loss = F.cross_entropy(net(xtr[b]), ytr[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(xte).argmax(1) == yte).float().mean().item()
        keep = {}
        net(xte[:8], keep)
    tensors = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    tensors.update({k: v.numpy() for k, v in keep.items()})
    meta = {"source": "scripts/make_demo_data.py", "model": "4-layer CNN, 1 epoch SGD on Fashion-MNIST",
            "test_accuracy": f"{acc:.4f}", "torch": torch.__version__}
    save_safetensors(OUT, tensors, meta)
    print(f"wrote {OUT}: {len(tensors)} tensors, test accuracy {acc:.4f}", file=sys.stderr)


if __name__ == "__main__":
    main()
