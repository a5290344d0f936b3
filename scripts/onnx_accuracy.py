#!/usr/bin/env python3
"""Test-set accuracy of an exported network, run by ONNX Runtime's Python API.

Closes the loop of `tunas-searcher export`: the searcher prints its own
test accuracy for the architecture (running BN statistics, our kernels);
this script feeds the same test images to the exported ONNX file and counts
the same argmax hits, so the two figures can be set side by side.

    python3 scripts/onnx_accuracy.py --model searched.onnx [--data /usr/share/datasets/fashion-mnist]

The model takes plain pixels in [0, 1] (its normalisation is inside), as an
app feeds it; --mean/--std are only for files exported before that. Needs
`pip install onnxruntime numpy` (a report dependency, never a test one).
"""
import argparse
import gzip
import json
import pathlib
import struct
import sys


def read_idx(path):
    path = pathlib.Path(path)
    if not path.exists() and path.with_suffix(path.suffix + ".gz").exists():
        path = path.with_suffix(path.suffix + ".gz")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return shape, data[4 + 4 * dims:]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="ONNX file from tunas-searcher export")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist",
                   help="folder with t10k-images-idx3-ubyte(.gz) and t10k-labels-idx1-ubyte(.gz)")
    p.add_argument("--mean", type=float, default=0.0, help="only for models exported with normalised inputs")
    p.add_argument("--std", type=float, default=1.0, help="only for models exported with normalised inputs")
    p.add_argument("--limit", type=int, default=0, help="only the first N test images")
    args = p.parse_args()
    try:
        import numpy as np
        import onnxruntime as ort
    except ImportError as e:
        sys.exit(f"error: {e}; install with `pip install onnxruntime numpy`")

    data = pathlib.Path(args.data)
    (n, h, w), pixels = read_idx(data / "t10k-images-idx3-ubyte")
    (m,), labels = read_idx(data / "t10k-labels-idx1-ubyte")
    if n != m:
        sys.exit(f"error: {data}: {n} test images but {m} labels")
    images = np.frombuffer(pixels, dtype=np.uint8).reshape(n, 1, h, w).astype(np.float32) / 255.0
    images = (images - args.mean) / args.std
    labels = np.frombuffer(labels, dtype=np.uint8)
    if args.limit:
        images, labels = images[: args.limit], labels[: args.limit]

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    batch = session.get_inputs()[0].shape[0]
    batch = batch if isinstance(batch, int) and batch > 0 else 500
    correct = 0
    for start in range(0, len(images) - len(images) % batch, batch):
        logits = session.run(None, {name: images[start:start + batch]})[0]
        correct += int((logits.argmax(axis=1) == labels[start:start + batch]).sum())
    counted = len(images) - len(images) % batch
    print(json.dumps({
        "model": args.model,
        "onnxruntime": ort.__version__,
        "images": counted,
        "test_accuracy": correct / counted,
    }, indent=2))


if __name__ == "__main__":
    main()
