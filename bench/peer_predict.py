"""Python peer for prediction throughput: the torchvision script a user writes
to classify a folder of images with a trained frozen-MobileNetV2 model, as
`tabby predict RUN DIR` does: every image file below DIR (sorted), squashed
to SxS, ImageNet-normalised, in batches through the model under no_grad,
softmax, the top class per file written out.

--run loads a tabby run's weights.safetensors (torchvision names for the
backbone, the head as dense.weight/dense.bias), so the peer's labels can be
compared with tabby's; without it the backbone gets --weights and the head
stays random (speed is the same). Prints one JSON line on stdout (timings,
and the predictions file written with --out).
"""
import argparse
import os
import time

from peer_common import T_PROCESS_START, configure_threads, emit, facts, log

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

import peer_models  # noqa: E402


class ImageFiles(Dataset):
    def __init__(self, files, transform):
        self.files, self.transform = files, transform

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with Image.open(self.files[i]) as im:
            return self.transform(im.convert("RGB"))


def image_files(folder):
    files = []
    for root, _, names in os.walk(folder):
        files += [os.path.join(root, n) for n in names if n.lower().endswith((".jpg", ".jpeg", ".png"))]
    return sorted(files)


def load_run_weights(model, run_dir):
    """Backbone (features.*) and head (the (C,1280) matrix and its bias) from a tabby run."""
    state = peer_models.load_safetensors(os.path.join(run_dir, "weights.safetensors"))
    model.features.load_state_dict({k[9:]: v for k, v in state.items() if k.startswith("features.")}, strict=True)
    head = {k: v for k, v in state.items() if not k.startswith("features.")}
    weight = next(v for k, v in head.items() if k.endswith("weight") and v.dim() == 2)
    bias = next(v for k, v in head.items() if k.endswith("bias") and v.shape == weight.shape[:1])
    model.dense = torch.nn.Linear(weight.shape[1], weight.shape[0])
    model.dense.load_state_dict({"weight": weight, "bias": bias})


def read_classes(run_dir, n):
    path = os.path.join(run_dir, "classes.txt") if run_dir else ""
    if path and os.path.exists(path):
        with open(path) as f:
            return [line.strip() for line in f if line.strip()]
    return [str(i) for i in range(n)]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir")
    p.add_argument("--run", help="a tabby run folder whose weights to use")
    p.add_argument("--weights", help="backbone weights when no --run is given")
    p.add_argument("--model", default="mobilenet_v2", choices=sorted(peer_models.MODELS))
    p.add_argument("--size", type=int, default=160)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--out", help="write 'file<TAB>label<TAB>probability' lines here")
    a = p.parse_args()
    threads = configure_threads(a.threads)
    files = image_files(a.dir)
    model = peer_models.build_model(a.model, 2, a.size)
    if a.run:
        load_run_weights(model, a.run)
    elif a.weights:
        peer_models.load_backbone_weights(model, a.weights)
    model.eval()
    classes = read_classes(a.run, model.dense.out_features)
    loader = DataLoader(ImageFiles(files, peer_models.eval_transform(a.model, a.size)), batch_size=a.batch,
                        num_workers=a.workers)
    t0 = time.monotonic()
    lines = []
    start = 0
    with torch.no_grad():
        for x in loader:  # x is (B,3,S,S), normalised
            probs = torch.softmax(model(x), 1)
            best_p, best_c = probs.max(1)
            for j in range(len(x)):
                lines.append(f"{files[start + j]}\t{classes[best_c[j]]}\t{best_p[j].item():.4f}")
            start += len(x)
    seconds = time.monotonic() - t0
    if a.out:
        with open(a.out, "w") as f:
            f.write("\n".join(lines) + "\n")
    log(f"peer predict, {a.workers} workers: {len(files)} images in {seconds:.2f} s ({len(files) / seconds:.1f} images/s)")
    emit({"peer": "torchvision", "mode": "predict", "images": len(files), "size": a.size, "batch": a.batch,
          "workers": a.workers, "loop_seconds": seconds, "loop_images_per_s": len(files) / seconds,
          "setup_seconds": t0 - T_PROCESS_START, "in_process_seconds": time.monotonic() - T_PROCESS_START,
          **facts(threads)})


if __name__ == "__main__":
    main()
