"""The small ResNet of docs/ACCURACY.md ("From scratch") in plain PyTorch, with the same
recipe as the tabby run beside it (one-cycle AdamW, label smoothing, flips, rotations up to
36 degrees and zooms of 20 %, batch 16), to tell whether slow learning is tabby's or the
network's. Prints one line per epoch.

    /usr/bin/python3 experiments/scratch_torch.py --epochs 20
"""
import time, os, glob, argparse
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
from PIL import Image
import torchvision.transforms as T

ap = argparse.ArgumentParser()
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.environ.get("TABBY_SHARED") or os.path.join(os.path.dirname(REPO), "shared")
ap.add_argument("--data", default=os.path.join(SHARED, "datasets", "cats_and_dogs_filtered"))
ap.add_argument("--epochs", type=int, default=20)
ap.add_argument("--lr", type=float, default=2e-3)
ap.add_argument("--wd", type=float, default=0.05)
ap.add_argument("--bs", type=int, default=16)
ap.add_argument("--smooth", type=float, default=0.1)
ap.add_argument("--threads", type=int, default=1)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)

def load(split):
    xs, ys = [], []
    for label, cls in enumerate(["cats", "dogs"]):
        for p in sorted(glob.glob(f"{a.data}/{split}/{cls}/*")):
            im = Image.open(p).convert("RGB").resize((150, 150), Image.BILINEAR)
            xs.append(np.asarray(im)); ys.append(label)
    return torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).contiguous(), torch.tensor(ys)

xtr, ytr = load("train"); xva, yva = load("validation")

def cbr(i, o, s=1):
    return [nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True)]

class Block(nn.Module):
    def __init__(s, i, o, st=1):
        super().__init__()
        s.c1 = nn.Conv2d(i, o, 3, st, 1, bias=False); s.b1 = nn.BatchNorm2d(o)
        s.c2 = nn.Conv2d(o, o, 3, 1, 1, bias=False); s.b2 = nn.BatchNorm2d(o)
        nn.init.zeros_(s.b2.weight)
        s.down = None if (i == o and st == 1) else nn.Sequential(nn.Conv2d(i, o, 1, st, bias=False), nn.BatchNorm2d(o))
    def forward(s, x):
        y = s.b2(s.c2(F.relu(s.b1(s.c1(x)))))
        return F.relu(y + (x if s.down is None else s.down(x)))

net = nn.Sequential(*cbr(3, 32, 2), *cbr(32, 64), nn.MaxPool2d(2), Block(64, 64), Block(64, 128, 2), Block(128, 128),
                    Block(128, 256, 2), Block(256, 256), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(256, 2))
for m in net.modules():
    if isinstance(m, nn.Conv2d): nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
net = net.to(memory_format=torch.channels_last)
opt = torch.optim.AdamW(net.parameters(), lr=a.lr, weight_decay=a.wd)
steps = a.epochs * (len(xtr) // a.bs)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=a.lr, total_steps=steps)
aff = T.RandomAffine(degrees=36, scale=(0.8, 1.2))
crit = nn.CrossEntropyLoss(label_smoothing=a.smooth)

def prep(x): return (x.float() / 127.5 - 1).contiguous(memory_format=torch.channels_last)
for ep in range(a.epochs):
    t0 = time.time(); net.train(); perm = torch.randperm(len(xtr)); correct = 0; tot = 0; ls = 0
    for i in range(0, len(xtr) - a.bs + 1, a.bs):
        idx = perm[i:i + a.bs]; x = xtr[idx]; y = ytr[idx]
        x = torch.stack([aff(T.functional.hflip(im) if torch.rand(1) < 0.5 else im) for im in x])
        out = net(prep(x)); loss = crit(out, y)
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        correct += (out.argmax(1) == y).sum().item(); tot += len(y); ls += loss.item() * len(y)
    net.eval(); vc = 0
    with torch.no_grad():
        for i in range(0, len(xva), 100):
            vc += (net(prep(xva[i:i + 100])).argmax(1) == yva[i:i + 100]).sum().item()
    print(f"epoch {ep+1} train_acc {correct/tot:.4f} loss {ls/tot:.4f} val_acc {vc/len(xva):.4f} {time.time()-t0:.0f}s", flush=True)
