#!/usr/bin/env python3
"""Checks a model written by `tabby export` against `tabby predict`.

  check_onnx.py MODEL.onnx PREDICTIONS.csv [--runtimes checker,opencv,onnxruntime] [--tolerance 1e-4]

PREDICTIONS.csv is `tabby predict --csv` on images already at the model's
input size (so no resizing stands between the two). For each runtime asked
for, every image's probabilities must equal the CSV's within the tolerance,
and the file's metadata must name the CSV's classes. The checker is ONNX's own
(onnx.checker with full shape inference); opencv is cv2.dnn; onnxruntime is
the CPU provider. Prints one line per runtime; exit 1 on any mismatch, 2 when
a runtime asked for cannot be imported.
"""
import argparse
import csv
import json
import sys

import numpy as np


def fail(message, code=1):
    print(f"check_onnx: {message}", file=sys.stderr)
    sys.exit(code)


def load_predictions(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        fail(f"{path} has no predictions")
    classes = [k[len("prob_"):] for k in rows[0] if k.startswith("prob_")]
    expected = np.array([[float(r["prob_" + c]) for c in classes] for r in rows], dtype=np.float32)
    return [r["path"] for r in rows], classes, expected


def load_images(paths, height, width):
    import cv2
    batch = []
    for p in paths:
        bgr = cv2.imread(p, cv2.IMREAD_COLOR)
        if bgr is None:
            fail(f"cannot read {p}")
        if bgr.shape[:2] != (height, width):
            fail(f"{p} is {bgr.shape[1]}x{bgr.shape[0]}, the model takes {width}x{height}: the check needs no resizing")
        batch.append(bgr[:, :, ::-1].transpose(2, 0, 1))
    return np.ascontiguousarray(np.stack(batch).astype(np.float32))


def run_checker(model_path, _images):
    import onnx
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    return None


def run_opencv(model_path, images):
    import cv2
    net = cv2.dnn.readNetFromONNX(model_path)
    # OpenCV's importer fixes the batch at the first blob it sees; one image at a time.
    out = []
    for image in images:
        net.setInput(image[None])
        out.append(net.forward().reshape(-1))
    return np.stack(out)


def run_onnxruntime(model_path, images):
    import onnxruntime
    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    (output,) = session.run(["probabilities"], {"images": images})
    return output


RUNTIMES = {"checker": run_checker, "opencv": run_opencv, "onnxruntime": run_onnxruntime}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model")
    p.add_argument("predictions")
    p.add_argument("--runtimes", default="checker,opencv,onnxruntime")
    p.add_argument("--tolerance", type=float, default=1e-4)
    args = p.parse_args()

    import onnx
    model = onnx.load(args.model)
    meta = {m.key: m.value for m in model.metadata_props}
    paths, classes, expected = load_predictions(args.predictions)
    if json.loads(meta.get("classes", "null")) != classes:
        fail(f"metadata classes {meta.get('classes')} are not the CSV's {classes}")
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if dims[0].dim_param != "batch":
        fail("the input's batch dimension is not dynamic")
    images = load_images(paths, dims[2].dim_value, dims[3].dim_value)

    worst = {}
    for name in args.runtimes.split(","):
        if name not in RUNTIMES:
            fail(f"unknown runtime {name}; known: {', '.join(RUNTIMES)}", 2)
        try:
            got = RUNTIMES[name](args.model, images)
        except ImportError as e:
            fail(f"{name} cannot be imported ({e}); scripts/install-test-tools.sh installs the test tools", 2)
        except Exception as e:  # what the runtime says about the file is the finding
            fail(f"{name} cannot run the model: {str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__}")
        if got is None:
            print(f"{name}: valid")
            continue
        if got.shape != expected.shape:
            fail(f"{name} gives shape {got.shape}, tabby predict {expected.shape}")
        diff = float(np.abs(got - expected).max())
        worst[name] = diff
        print(f"{name}: {len(paths)} images, largest difference from tabby predict {diff:.2e}")
    bad = {k: v for k, v in worst.items() if not v <= args.tolerance}
    if bad:
        fail("differences above the tolerance " + str(args.tolerance) + ": " + ", ".join(f"{k} {v:.2e}" for k, v in bad.items()))


if __name__ == "__main__":
    main()
