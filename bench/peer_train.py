"""Python peer for training speed: the tutorial models trained the way a
PyTorch + torchvision user writes it (ImageFolder + DataLoader, Adam, batch 32,
validation after every epoch when --val is given), so its times sit beside
`tabby train`'s.

Modes:
  e2e           train EPOCHS epochs on TRAIN (validating on VAL after each when
                given): per-epoch train/validation seconds, set-up time
  features      the stronger peer for a frozen backbone: compute the backbone's
                features of TRAIN and VAL once (no augmentation), then train the
                head on them for EPOCHS epochs, validating after each
  pick-workers  a few training steps with each DataLoader worker count; the
                driver then runs e2e with the fastest
  ceiling       the model alone on a synthetic batch already in memory: train
                steps (forward, loss, backward, Adam) or inference (forward,
                softmax under no_grad)

GPU options (the defaults are the CPU peer, unchanged): --device cuda moves the
model there and each batch with non_blocking copies from a pin_memory
DataLoader (persistent workers), with cuDNN's autotuner on (tabby turns it on
too); the ceiling's synthetic batch is made on the device and the device is
synchronized before every clock reading. --precision bf16 runs the forward pass
and the loss under torch.autocast(device_type=..., dtype=torch.bfloat16), as
the PyTorch AMP recipe writes it (bf16 needs no GradScaler). --channels-last on
converts the model and every batch to torch.channels_last. Only APIs that
torch 1.13 and 2.x share are used.
Prints one JSON line on stdout.
"""
import argparse
import contextlib
import time

from peer_common import T_PROCESS_START, configure_threads, emit, facts, log

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402
from torchvision import datasets  # noqa: E402

import peer_models  # noqa: E402


class Placement:
    """Where and how the peer computes: device, autocast dtype, memory format.
    The CPU default (fp32, contiguous) leaves every tensor as it was."""

    def __init__(self, device="cpu", precision="fp32", channels_last=False):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.precision = precision
        self.channels_last = channels_last
        if self.cuda:
            torch.backends.cudnn.benchmark = True  # fixed shapes; tabby turns it on too

    def is_default(self):
        return not self.cuda and self.precision == "fp32" and not self.channels_last

    def model(self, model):
        if self.cuda:
            model = model.to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def batch(self, x, y):
        if self.cuda:
            x = x.to(self.device, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def autocast(self):
        if self.precision == "bf16":
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize(self.device)


PLACE = Placement()  # set from the flags in main()


def make_loader(model_name, folder, size, batch, workers, train, augment=True):
    if train and augment:
        tf = peer_models.train_transform(model_name, size)
    else:
        tf = peer_models.eval_transform(model_name, size)
    ds = datasets.ImageFolder(folder, transform=tf)
    if PLACE.cuda:
        # What a GPU user writes: pinned host batches, workers kept across epochs.
        return ds, DataLoader(ds, batch_size=batch, shuffle=train, num_workers=workers, pin_memory=True,
                              persistent_workers=workers > 0)
    return ds, DataLoader(ds, batch_size=batch, shuffle=train, num_workers=workers)


def make_model(a, num_classes):
    torch.manual_seed(1337)
    model = peer_models.build_model(a.model, num_classes, a.size)
    if a.weights:
        peer_models.load_backbone_weights(model, a.weights)
    return PLACE.model(model)


def make_optimizer(model):
    # Keras' Adam epsilon (tabby uses it too); only trainable parameters.
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3, eps=1e-7)


def train_step(model, opt, x, y):
    x, y = PLACE.batch(x, y)
    with PLACE.autocast():
        logits = model(x)
        loss = F.cross_entropy(logits, y)
    loss_value = loss.item()
    opt.zero_grad()
    loss.backward()
    opt.step()
    return loss_value, (logits.detach().argmax(1) == y).sum().item()


def validate(model, batches):
    model.eval()
    loss = correct = seen = 0
    with torch.no_grad():
        for x, y in batches:
            x, y = PLACE.batch(x, y)
            with PLACE.autocast():
                logits = model(x)
                loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    return {"val_images": seen, "val_loss": loss / seen, "val_accuracy": correct / seen}


def train_epoch(model, opt, batches):
    model.train()
    loss_sum = correct = seen = 0
    for x, y in batches:
        lv, c = train_step(model, opt, x, y)
        loss_sum += lv * len(y)
        correct += c
        seen += len(y)
    return {"images": seen, "loss": loss_sum / seen, "accuracy": correct / seen}


def run_e2e(a):
    train_ds, train_loader = make_loader(a.model, a.train, a.size, a.batch, a.workers, True)
    val_ds, val_loader = make_loader(a.model, a.val, a.size, a.batch, a.workers, False) if a.val else (None, None)
    model = make_model(a, len(train_ds.classes))
    opt = make_optimizer(model)
    t_ready = time.monotonic()
    epochs = []
    for epoch in range(1, a.epochs + 1):
        t0 = time.monotonic()
        rec = {"epoch": epoch, **train_epoch(model, opt, train_loader)}
        rec["train_seconds"] = time.monotonic() - t0
        if val_loader is not None:
            t1 = time.monotonic()
            rec.update(validate(model, val_loader))
            rec["val_seconds"] = time.monotonic() - t1
        rec["seconds"] = time.monotonic() - t0
        log(f"peer {a.model} epoch {epoch}/{a.epochs}: {rec['seconds']:.1f} s "
            f"({rec['images'] / rec['train_seconds']:.1f} train images/s), accuracy {rec['accuracy']:.3f}"
            + (f", val_accuracy {rec['val_accuracy']:.3f}" if val_loader is not None else ""))
        epochs.append(rec)
    return {"train_images": len(train_ds), "val_images": len(val_ds) if val_ds else 0,
            "setup_seconds": t_ready - T_PROCESS_START, "epochs": epochs,
            "in_process_seconds": time.monotonic() - T_PROCESS_START}


def run_features(a):
    """Backbone features once (eval transform, no augmentation), then the head
    alone: what a PyTorch user who knows the trick writes by hand."""
    train_ds, train_loader = make_loader(a.model, a.train, a.size, a.batch, a.workers, False)
    val_ds, val_loader = make_loader(a.model, a.val, a.size, a.batch, a.workers, False)
    model = make_model(a, len(train_ds.classes))
    t_ready = time.monotonic()

    def features(loader):
        model.eval()
        xs, ys = [], []
        with torch.no_grad():
            for x, y in loader:
                x, y = PLACE.batch(x, y)
                with PLACE.autocast():
                    xs.append(model.pool(model.features(x)).flatten(1).float())  # (B,1280)
                ys.append(y)
        return torch.cat(xs), torch.cat(ys)

    train_x, train_y = features(train_loader)
    val_x, val_y = features(val_loader)
    t_features = time.monotonic() - t_ready
    log(f"peer features: {len(train_y) + len(val_y)} images in {t_features:.1f} s")
    head = torch.nn.Sequential(model.dropout, model.dense)
    opt = make_optimizer(head)
    val_batches = list(zip(val_x.split(a.batch), val_y.split(a.batch)))
    epochs = []
    for epoch in range(1, a.epochs + 1):
        t0 = time.monotonic()
        order = torch.randperm(len(train_y))
        batches = ((train_x[i], train_y[i]) for i in order.split(a.batch))
        rec = {"epoch": epoch, **train_epoch(head, opt, batches)}
        rec["train_seconds"] = time.monotonic() - t0
        t1 = time.monotonic()
        rec.update(validate(head, val_batches))
        rec["val_seconds"] = time.monotonic() - t1
        rec["seconds"] = time.monotonic() - t0
        epochs.append(rec)
    log(f"peer head: {a.epochs} epochs in {sum(e['seconds'] for e in epochs):.2f} s, "
        f"val_accuracy {epochs[-1]['val_accuracy']:.3f}")
    return {"train_images": len(train_ds), "val_images": len(val_ds),
            "setup_seconds": t_ready - T_PROCESS_START, "feature_seconds": t_features, "epochs": epochs,
            "in_process_seconds": time.monotonic() - T_PROCESS_START}


def endless(loader):
    """Batches of loader, epoch after epoch (small data sets end before the steps do)."""
    while True:
        yield from loader


def run_pick_workers(a):
    results = []
    for w in a.candidates:
        ds, loader = make_loader(a.model, a.train, a.size, a.batch, w, True)
        model = make_model(a, len(ds.classes))
        model.train()
        opt = make_optimizer(model)
        batches = endless(loader)
        for _ in range(a.warmup):  # worker start-up, first batches, oneDNN set-up
            x, y = next(batches)
            train_step(model, opt, x, y)
        t0 = time.monotonic()
        n = 0
        for _ in range(a.steps):
            x, y = next(batches)
            train_step(model, opt, x, y)
            n += len(y)
        s = time.monotonic() - t0
        del batches
        results.append({"workers": w, "seconds": s, "images": n, "images_per_s": n / s})
        log(f"peer {a.model} with {w} workers: {n / s:.1f} training images/s")
    best = max(results, key=lambda r: r["images_per_s"])
    return {"candidates": results, "best_workers": best["workers"]}


def run_ceiling(a):
    model = make_model(a, 2)
    # x is (B,3,H,W) as the transform delivers it; values do not matter for speed.
    # On a GPU the batch is made there once: no host copy inside the timed steps.
    x = torch.rand(a.batch, 3, a.size, a.size, device=PLACE.device)
    y = torch.randint(0, 2, (a.batch,), device=PLACE.device)
    x, y = PLACE.batch(x, y)  # the memory format once, outside the timed steps
    if a.phase == "train":
        model.train()
        opt = make_optimizer(model)

        def step():
            train_step(model, opt, x, y)
    else:
        model.eval()

        def step():
            with torch.no_grad():
                with PLACE.autocast():
                    logits = model(x)
                torch.softmax(logits.float(), 1)[0, 0].item()
    for _ in range(2):
        step()
    PLACE.sync()
    times = []
    t_all = time.monotonic()
    for _ in range(a.steps):
        t0 = time.monotonic()
        step()
        PLACE.sync()
        times.append(time.monotonic() - t0)
    total = time.monotonic() - t_all
    median = sorted(times)[len(times) // 2]
    log(f"peer ceiling {a.model} {a.phase}: {median * 1000:.0f} ms/step, {a.batch * a.steps / total:.1f} images/s")
    return {"phase": a.phase, "steps": a.steps, "step_seconds": times, "median_step_seconds": median,
            "images_per_s": a.batch * a.steps / total, "median_images_per_s": a.batch / median}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["e2e", "features", "pick-workers", "ceiling"], required=True)
    p.add_argument("--model", choices=sorted(peer_models.MODELS), required=True)
    p.add_argument("--train")
    p.add_argument("--val")
    p.add_argument("--weights", help="ImageNet backbone weights (.safetensors, torchvision names)")
    p.add_argument("--size", type=int, default=150)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--candidates", type=lambda s: [int(v) for v in s.split(",")], default=[0, 1, 2])
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--phase", choices=["train", "infer"], default="train")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="forward pass and loss under torch.autocast bf16, or plain fp32 (default)")
    p.add_argument("--channels-last", choices=["on", "off"], default="off",
                   help="model and batches in torch.channels_last (default off)")
    a = p.parse_args()
    global PLACE
    if a.device.startswith("cuda") and not torch.cuda.is_available():
        p.error(f"--device {a.device}: torch {torch.__version__} sees no CUDA GPU")
    PLACE = Placement(a.device, a.precision, a.channels_last == "on")
    threads = configure_threads(a.threads)
    out = {"peer": "pytorch", "mode": a.mode, "model": a.model, "size": a.size, "batch": a.batch,
           "workers": a.workers if a.mode in ("e2e", "features") else None, **facts(threads)}
    if not PLACE.is_default():
        out.update(device=str(PLACE.device), precision=a.precision, channels_last=PLACE.channels_last)
        if PLACE.cuda:
            out["gpu"] = torch.cuda.get_device_name(PLACE.device)
    if a.mode == "e2e":
        out.update(run_e2e(a))
    elif a.mode == "features":
        out.update(run_features(a))
    elif a.mode == "pick-workers":
        out.update(run_pick_workers(a))
    else:
        out.update(run_ceiling(a))
    emit(out)


if __name__ == "__main__":
    main()
