#!/usr/bin/python3
"""tabby's MobileNetV2 training recipes in plain PyTorch, for comparison on the same weights and data.

  --recipe finetune   tabby's `--recipe finetune`: the whole MobileNetV2 trained with every
                      batch norm in eval mode (frozen statistics, affine trainable), AdamW
                      (weight decay 0.01, eps 1e-7), head lr 1e-3 and backbone lr 1e-4, one epoch
                      of linear warmup from 1% then cosine to 0 (both stepped per batch),
                      label smoothing 0.1, RandomResizedCrop(scale 0.5-1) + flip + ColorJitter(0.1),
                      8 epochs, an EMA of all float state (decay min(0.998, (1+n)/(10+n))) that
                      is what gets evaluated.
  --recipe tutorial   tabby's `--model tutorial-mobilenet_v2` (the Keras transfer-learning
                      tutorial): frozen backbone with batch norm in eval mode, flip + rotation
                      (0.1 turn, reflect fill as Keras), Dropout(0.2) + Dense head, Adam 1e-3
                      (eps 1e-7), 10 epochs; with --fine-tune-epochs N, then the last
                      --fine-tune-last blocks (default 7) unfrozen for N epochs at --fine-tune-lr (3e-5).

The images are squashed to --image-size x --image-size (bilinear, aspect not kept) as tabby
does, scaled to [0,1] and normalised with the ImageNet mean and std. The weights are read
from shared/weights/mobilenet_v2_imagenet.safetensors (torchvision names) with a small
safetensors reader. After training it reports the validation accuracy, the held-out
accuracy (experiments/out/heldout_petimages.csv from heldout_petimages.py) with and without
flip test-time augmentation, wall time and peak RSS, and writes them to --out as JSON.

    /usr/bin/python3 experiments/torch_recipe.py --recipe finetune --out experiments/out/torch_finetune.json
    /usr/bin/python3 experiments/torch_recipe.py --recipe tutorial --fine-tune-epochs 10 --out experiments/out/torch_tutorial.json
    # smoke test
    /usr/bin/python3 experiments/torch_recipe.py --recipe finetune --limit-train 64 --limit-val 64 --epochs 1 --image-size 96

Needs only Debian's python3-torch, python3-torchvision, python3-numpy and python3-pil.
"""

import argparse
import copy
import csv
import json
import math
import os
import random
import resource
import struct
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset
from torchvision import transforms as T

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

RECIPES = {
    # epochs, optimizer settings, ... ; every key may be overridden by a flag where one exists
    "finetune": {"epochs": 8, "head_lr": 1e-3, "backbone_lr": 1e-4, "weight_decay": 0.01, "warmup_epochs": 1,
                 "label_smoothing": 0.1, "ema": 0.998},
    "tutorial": {"epochs": 10, "lr": 1e-3, "fine_tune_last": 7, "fine_tune_lr": 3e-5},
}


# --------------------------------------------------------------------------- weights

_SAFETENSORS_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64,
                       "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}


def read_safetensors(path):
    """{name: torch.Tensor} from a .safetensors file (8-byte LE header length, JSON header, raw data)."""
    with open(path, "rb") as f:
        data = f.read()
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + header_len].decode("utf-8"))
    base = 8 + header_len
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = info["dtype"]
        if dtype not in _SAFETENSORS_DTYPES:
            raise ValueError(f"{path}: tensor {name} has dtype {dtype}, which this reader does not handle")
        start, end = info["data_offsets"]
        array = np.frombuffer(data, dtype=np.dtype(_SAFETENSORS_DTYPES[dtype]).newbyteorder("<"),
                              count=(end - start) // np.dtype(_SAFETENSORS_DTYPES[dtype]).itemsize, offset=base + start)
        tensors[name] = torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True)).reshape(info["shape"])
    return tensors


def build_model(weights_path, num_classes):
    model = torchvision.models.mobilenet_v2(weights=None)
    state = read_safetensors(weights_path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    # num_batches_tracked is not stored; anything else missing is an error.
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise RuntimeError(f"{weights_path}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    head = nn.Linear(model.last_channel, num_classes)
    nn.init.xavier_uniform_(head.weight)  # tabby's Dense: Keras' glorot_uniform, zero bias
    nn.init.zeros_(head.bias)
    model.classifier = nn.Sequential(nn.Dropout(0.2), head)
    return model


def set_bn_eval(model):
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


# --------------------------------------------------------------------------- data

class RandomRotationReflect:
    """Keras RandomRotation(factor): an angle uniform in +-factor turns, bilinear, reflect fill.

    Works on a CHW float tensor (torchvision 0.14's RandomRotation only fills with a constant)."""

    def __init__(self, factor):
        self.max_radians = factor * 2 * math.pi

    def __call__(self, x):
        angle = (torch.rand(()) * 2 - 1).item() * self.max_radians
        c, s = math.cos(angle), math.sin(angle)
        h, w = x.shape[-2:]
        # affine_grid works in [-1,1] coordinates; correct for a non-square image.
        theta = torch.tensor([[c, -s * h / w, 0.0], [s * w / h, c, 0.0]], dtype=x.dtype).unsqueeze(0)
        grid = F.affine_grid(theta, (1, x.shape[0], h, w), align_corners=False)
        return F.grid_sample(x.unsqueeze(0), grid, mode="bilinear", padding_mode="reflection",
                             align_corners=False).squeeze(0)


def make_transforms(recipe, size):
    squash = T.Resize((size, size), interpolation=T.InterpolationMode.BILINEAR)
    normalize = T.Normalize(MEAN, STD)
    eval_tf = T.Compose([squash, T.ToTensor(), normalize])
    if recipe == "finetune":
        train_tf = T.Compose([squash, T.RandomResizedCrop(size, scale=(0.5, 1.0)), T.RandomHorizontalFlip(),
                              T.ColorJitter(0.1, 0.1, 0.1), T.ToTensor(), normalize])
    else:
        train_tf = T.Compose([squash, T.RandomHorizontalFlip(), T.ToTensor(), RandomRotationReflect(0.1), normalize])
    return train_tf, eval_tf


def load_rgb(path):
    with Image.open(path) as im:
        return im.convert("RGB")


class CsvDataset(Dataset):
    """A tabby-style CSV (header with path,label; relative paths from the CSV's folder)."""

    def __init__(self, csv_path, class_to_idx, transform):
        base = os.path.dirname(os.path.abspath(csv_path))
        with open(csv_path, newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows or "path" not in rows[0] or "label" not in rows[0]:
            sys.exit(f"error: {csv_path} needs a header with path,label and at least one row")
        self.samples = []
        for r in rows:
            if r["label"] not in class_to_idx:
                sys.exit(f"error: {csv_path}: label '{r['label']}' is not one of the training classes {list(class_to_idx)}")
            self.samples.append((os.path.join(base, r["path"]), class_to_idx[r["label"]]))
        self.transform = transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        path, label = self.samples[i]
        return self.transform(load_rgb(path)), label


def seed_worker(worker_id):
    s = torch.initial_seed() % 2**32
    np.random.seed(s)
    random.seed(s)


def loader(dataset, args, shuffle, seed_offset=0):
    g = torch.Generator()
    g.manual_seed(args.seed + seed_offset)
    return DataLoader(dataset, batch_size=args.batch_size, shuffle=shuffle, num_workers=args.num_workers,
                      worker_init_fn=seed_worker, generator=g, drop_last=False,
                      persistent_workers=False)  # workers exit after each pass, so RUSAGE_CHILDREN sees them


def subset(dataset, n, seed):
    if n is None or n >= len(dataset):
        return dataset
    idx = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n]
    return Subset(dataset, sorted(idx.tolist()))


# --------------------------------------------------------------------------- training

class Ema:
    """Exponential moving average of every float entry of the state dict (parameters and BN buffers)."""

    def __init__(self, model, decay):
        self.decay = decay
        self.updates = 0
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model):
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                self.state[k].lerp_(v.detach(), 1 - d)
            else:
                self.state[k].copy_(v)
        self.updates += 1

    def model(self, model):
        averaged = copy.deepcopy(model)
        averaged.load_state_dict(self.state)
        return averaged


def run_epoch(model, data, optimizer, criterion, scheduler=None, ema=None, frozen_backbone=False, log_every=0):
    model.train()
    set_bn_eval(model)  # every recipe here keeps batch norm statistics frozen
    if frozen_backbone:
        model.features.eval()
    total, correct, loss_sum, t0 = 0, 0, 0.0, time.time()
    for step, (x, y) in enumerate(data):
        optimizer.zero_grad(set_to_none=True)
        logits = model(x)
        loss = criterion(logits, y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update(model)
        n = y.numel()
        total += n
        correct += (logits.argmax(1) == y).sum().item()
        loss_sum += loss.item() * n
        if log_every and (step + 1) % log_every == 0:
            print(f"    batch {step + 1}/{len(data)}: loss {loss_sum / total:.4f}, "
                  f"lr {[round(g['lr'], 8) for g in optimizer.param_groups]}", flush=True)
    return {"loss": loss_sum / max(total, 1), "accuracy": correct / max(total, 1), "seconds": time.time() - t0}


@torch.no_grad()
def evaluate(model, data, tta=False):
    model.eval()
    total, correct = 0, 0
    for x, y in data:
        logits = model(x)
        if tta:
            logits = (logits + model(x.flip(3))) / 2
        total += y.numel()
        correct += (logits.argmax(1) == y).sum().item()
    return {"accuracy": correct / max(total, 1), "errors": total - correct, "count": total}


def adam(params, lr, weight_decay=None):
    if weight_decay is None:
        return torch.optim.Adam(params, lr=lr, eps=1e-7)
    return torch.optim.AdamW(params, lr=lr, eps=1e-7, weight_decay=weight_decay)


def train_finetune(model, train_data, args, history):
    r = RECIPES["finetune"]
    epochs = args.epochs if args.epochs is not None else r["epochs"]
    head = list(model.classifier.parameters())
    backbone = list(model.features.parameters())
    optimizer = torch.optim.AdamW([{"params": backbone, "lr": r["backbone_lr"]}, {"params": head, "lr": r["head_lr"]}],
                                  eps=1e-7, weight_decay=r["weight_decay"])
    steps = epochs * len(train_data)
    warmup = min(r["warmup_epochs"], epochs) * len(train_data)
    linear = torch.optim.lr_scheduler.LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warmup)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps - warmup, 1), eta_min=0.0)
    scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [linear, cosine], milestones=[warmup])
    criterion = nn.CrossEntropyLoss(label_smoothing=r["label_smoothing"])
    ema = Ema(model, r["ema"])
    for epoch in range(epochs):
        h = run_epoch(model, train_data, optimizer, criterion, scheduler, ema, log_every=args.log_every)
        h.update(epoch=epoch + 1, phase="finetune")
        if args.val_each_epoch:
            h["val_accuracy_ema"] = evaluate(ema.model(model), args.val_loader)["accuracy"]
        history.append(h)
        print(f"  epoch {epoch + 1}/{epochs}: {fmt_epoch(h)}", flush=True)
    return ema.model(model)


def train_tutorial(model, train_data, args, history):
    r = RECIPES["tutorial"]
    epochs = args.epochs if args.epochs is not None else r["epochs"]
    for p in model.features.parameters():
        p.requires_grad_(False)
    criterion = nn.CrossEntropyLoss()
    optimizer = adam(model.classifier.parameters(), r["lr"])
    for epoch in range(epochs):
        h = run_epoch(model, train_data, optimizer, criterion, frozen_backbone=True, log_every=args.log_every)
        h.update(epoch=epoch + 1, phase="frozen")
        if args.val_each_epoch:
            h["val_accuracy"] = evaluate(model, args.val_loader)["accuracy"]
        history.append(h)
        print(f"  epoch {epoch + 1}/{epochs}: {fmt_epoch(h)}", flush=True)
    if args.fine_tune_epochs:
        last = args.fine_tune_last
        blocks = list(model.features.children())[-last:]  # torchvision features.12-18 for 7
        for block in blocks:
            for p in block.parameters():
                p.requires_grad_(True)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = adam(trainable, args.fine_tune_lr)
        for epoch in range(args.fine_tune_epochs):
            h = run_epoch(model, train_data, optimizer, criterion, log_every=args.log_every)
            h.update(epoch=epochs + epoch + 1, phase=f"fine-tune last {last}")
            if args.val_each_epoch:
                h["val_accuracy"] = evaluate(model, args.val_loader)["accuracy"]
            history.append(h)
            print(f"  epoch {epochs + epoch + 1}/{epochs + args.fine_tune_epochs}: {fmt_epoch(h)}", flush=True)
    return model


def fmt_epoch(h):
    s = f"loss {h['loss']:.4f}, train accuracy {h['accuracy']:.4f}, {h['seconds']:.1f} s"
    for k in ("val_accuracy", "val_accuracy_ema"):
        if k in h:
            s += f", {k.replace('_', ' ')} {h[k]:.4f}"
    return s


# --------------------------------------------------------------------------- main

def find_shared():
    for path in filter(None, [os.environ.get("TABBY_SHARED"), os.path.join(os.path.dirname(REPO), "shared")]):
        if os.path.isdir(os.path.join(path, "datasets")):
            return os.path.abspath(path)
    return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--recipe", choices=sorted(RECIPES), required=True)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--epochs", type=int, help="override the recipe's epochs (finetune 8, tutorial 10)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
    p.add_argument("--num-workers", type=int, default=2, help="DataLoader worker processes")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--train", help="training folder of class folders (default: shared cats_and_dogs_filtered/train)")
    p.add_argument("--val", help="validation folder (default: shared cats_and_dogs_filtered/validation)")
    p.add_argument("--heldout", help="held-out CSV path,label (default: experiments/out/heldout_petimages.csv if present; "
                                     "'none' to skip)")
    p.add_argument("--weights", help="MobileNetV2 safetensors (default: shared weights/mobilenet_v2_imagenet.safetensors)")
    p.add_argument("--limit-train", type=int, help="train on a seeded random subset of N images (smoke tests)")
    p.add_argument("--limit-val", type=int, help="validate on a seeded random subset of N images (smoke tests)")
    p.add_argument("--fine-tune-epochs", type=int, default=0, help="tutorial: epochs with the last blocks unfrozen")
    p.add_argument("--fine-tune-last", type=int, default=RECIPES["tutorial"]["fine_tune_last"])
    p.add_argument("--fine-tune-lr", type=float, default=RECIPES["tutorial"]["fine_tune_lr"])
    p.add_argument("--val-each-epoch", action="store_true", help="also evaluate on validation after every epoch")
    p.add_argument("--log-every", type=int, default=0, help="print the running loss every N batches")
    p.add_argument("--out", help="JSON file for the results")
    args = p.parse_args()

    t_start = time.time()
    warnings.filterwarnings("ignore", message=".*epoch parameter in `scheduler.step\\(\\)`.*")
    warnings.filterwarnings("ignore", message=".*antialias.*")
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    shared = find_shared()
    need = [("--train", args.train), ("--val", args.val), ("--weights", args.weights)]
    if shared is None and any(v is None for _, v in need):
        sys.exit("error: no shared data folder ($TABBY_SHARED or ../shared beside the repo); pass "
                 + ", ".join(flag for flag, v in need if v is None))
    filtered = os.path.join(shared or "", "datasets", "cats_and_dogs_filtered")
    train_dir = args.train or os.path.join(filtered, "train")
    val_dir = args.val or os.path.join(filtered, "validation")
    weights = args.weights or os.path.join(shared, "weights", "mobilenet_v2_imagenet.safetensors")
    heldout = args.heldout
    if heldout is None:
        default = os.path.join(REPO, "experiments", "out", "heldout_petimages.csv")
        heldout = default if os.path.exists(default) else None
    elif heldout == "none":
        heldout = None
    for what, path in (("training folder", train_dir), ("validation folder", val_dir), ("weights", weights)):
        if not os.path.exists(path):
            sys.exit(f"error: {what} '{path}' does not exist")

    train_tf, eval_tf = make_transforms(args.recipe, args.image_size)
    train_full = torchvision.datasets.ImageFolder(train_dir, transform=train_tf, loader=load_rgb)
    val_full = torchvision.datasets.ImageFolder(val_dir, transform=eval_tf, loader=load_rgb)
    if val_full.class_to_idx != train_full.class_to_idx:
        sys.exit(f"error: validation classes {val_full.classes} differ from training classes {train_full.classes}")
    train_set = subset(train_full, args.limit_train, args.seed)
    val_set = subset(val_full, args.limit_val, args.seed + 1)
    train_data = loader(train_set, args, shuffle=True)
    args.val_loader = loader(val_set, args, shuffle=False)
    heldout_set = CsvDataset(heldout, train_full.class_to_idx, eval_tf) if heldout else None

    print(f"recipe {args.recipe} @{args.image_size}: {len(train_set)} training images, {len(val_set)} validation, "
          f"{len(heldout_set) if heldout_set else 0} held-out; classes {train_full.classes}; "
          f"{args.threads} threads, {args.num_workers} workers", flush=True)
    model = build_model(weights, len(train_full.classes))
    t_train = time.time()
    history = []
    if args.recipe == "finetune":
        if args.fine_tune_epochs:
            sys.exit("error: --fine-tune-epochs belongs to --recipe tutorial")
        final = train_finetune(model, train_data, args, history)
    else:
        final = train_tutorial(model, train_data, args, history)
    t_trained = time.time()

    results = {"recipe": args.recipe, "image_size": args.image_size, "batch_size": args.batch_size,
               "epochs": len(history), "seed": args.seed, "threads": args.threads, "num_workers": args.num_workers,
               "train": os.path.abspath(train_dir), "val": os.path.abspath(val_dir), "heldout": heldout,
               "weights": os.path.abspath(weights), "train_images": len(train_set), "val_images": len(val_set),
               "evaluated_weights": "ema" if args.recipe == "finetune" else "last",
               "torch": torch.__version__, "torchvision": torchvision.__version__}
    if args.recipe == "tutorial":
        results.update(fine_tune_epochs=args.fine_tune_epochs, fine_tune_last=args.fine_tune_last,
                       fine_tune_lr=args.fine_tune_lr)
    val = evaluate(final, args.val_loader)
    results.update(val_accuracy=val["accuracy"], val_errors=val["errors"])
    print(f"validation accuracy: {val['accuracy']:.4f} ({val['errors']} errors of {val['count']})", flush=True)
    if heldout_set:
        held_data = loader(heldout_set, args, shuffle=False)
        h = evaluate(final, held_data)
        ht = evaluate(final, held_data, tta=True)
        results.update(heldout_images=h["count"], heldout_accuracy=h["accuracy"], heldout_errors=h["errors"],
                       heldout_accuracy_tta_flip=ht["accuracy"], heldout_errors_tta_flip=ht["errors"])
        print(f"held-out accuracy:   {h['accuracy']:.4f} ({h['errors']} errors of {h['count']})")
        print(f"held-out, flip TTA:  {ht['accuracy']:.4f} ({ht['errors']} errors of {ht['count']})")
    end = time.time()
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    results.update(train_seconds=round(t_trained - t_train, 1), wall_seconds=round(end - t_start, 1),
                   peak_rss_mb=round(self_kb / 1024, 1), peak_rss_workers_mb=round(child_kb / 1024, 1),
                   history=history)
    print(f"wall time {end - t_start:.1f} s (training {t_trained - t_train:.1f} s); peak RSS {self_kb / 1024:.0f} MB "
          f"(largest worker {child_kb / 1024:.0f} MB)")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
            f.write("\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
