#!/usr/bin/env python3
"""Writes Fashion-MNIST as CIFAR-10 binary batches at 32x32x3.

CIFAR-10 itself cannot be downloaded on a machine that reaches only the
package registries, so the 32 px RGB figures in docs/measurements.md (search
time, accuracy of the `rgb32` space) are taken on this stand-in: every 28x28
grey image is padded by 2 pixels to 32x32 and given a random tint (drawn per
image from a seeded generator), so colour varies but says nothing about the
class, as in photos. The layout is CIFAR-10's: per image one label byte, then
1024 red, 1024 green and 1024 blue bytes; five training batches of 12,000
images (all 60,000) and test_batch.bin with the 10,000 test images.

    python3 scripts/fashion_as_rgb32.py OUT_DIR [--source DIR] [--seed N]

Only the standard library is used.
"""

import argparse
import gzip
import os
import random
import struct
import sys
import tempfile

SOURCE = "/usr/share/datasets/fashion-mnist"


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return shape, data[4 + 4 * dims :]


def find(source, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(source, name)
        if os.path.exists(path):
            return path
    sys.exit(f"{source}: no {stem} or {stem}.gz (install dataset-fashion-mnist or pass --source)")


def records(images, labels, rng):
    (n, h, w), pixels = images
    (m,), label_bytes = labels
    if n != m or (h, w) != (28, 28):
        sys.exit(f"expected 28x28 images with one label each, got {n} images of {h}x{w} and {m} labels")
    out = bytearray()
    for i in range(n):
        img = pixels[i * 784 : (i + 1) * 784]
        tint = [rng.uniform(0.35, 1.0) for _ in range(3)]
        out.append(label_bytes[i])
        for scale in tint:
            lut = bytes(min(255, int(v * scale + 0.5)) for v in range(256))
            plane = bytearray(32 * 32)
            for y in range(28):
                row = img[y * 28 : (y + 1) * 28].translate(lut)
                start = (y + 2) * 32 + 2
                plane[start : start + 28] = row
            out += plane
    return bytes(out)


def write_atomic(path, data):
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="folder to write data_batch_1..5.bin and test_batch.bin into")
    p.add_argument("--source", default=SOURCE, help=f"Fashion-MNIST IDX folder [default: {SOURCE}]")
    p.add_argument("--seed", type=int, default=1, help="seed of the tints [default: 1]")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = random.Random(a.seed)
    train = records(
        read_idx(find(a.source, "train-images-idx3-ubyte")),
        read_idx(find(a.source, "train-labels-idx1-ubyte")),
        rng,
    )
    test = records(
        read_idx(find(a.source, "t10k-images-idx3-ubyte")),
        read_idx(find(a.source, "t10k-labels-idx1-ubyte")),
        rng,
    )
    size = 1 + 3 * 1024
    per_batch = len(train) // size // 5
    for b in range(5):
        chunk = train[b * per_batch * size : (b + 1) * per_batch * size]
        write_atomic(os.path.join(a.out, f"data_batch_{b + 1}.bin"), chunk)
    write_atomic(os.path.join(a.out, "test_batch.bin"), test)
    print(f"wrote {a.out}: {5 * per_batch} training and {len(test) // size} test images at 32x32x3")


if __name__ == "__main__":
    main()
