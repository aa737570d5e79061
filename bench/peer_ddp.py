"""Python peer for data-parallel training: the same tutorial models trained
with PyTorch's DistributedDataParallel on Gloo, as a PyTorch user writes it
(torch.multiprocessing.spawn, DistributedSampler reshuffled per epoch,
ImageFolder + DataLoader in each process, Adam), one intra-op thread per
process, so its epochs sit beside `tabby train --nproc-per-node N`'s.

    peer_ddp.py --model tutorial-cnn --train DIR --size 150 --batch 32 --epochs 2 --world 2 [--weights W]

--batch is per process (the global batch is batch x world). Prints one JSON
line on stdout: rank 0's per-epoch training seconds and images.
"""
import argparse
import json
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from torchvision import datasets

import peer_models


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank, a, port, out):
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=a.world)
    ds = datasets.ImageFolder(a.train, transform=peer_models.train_transform(a.model, a.size))
    sampler = DistributedSampler(ds, num_replicas=a.world, rank=rank, shuffle=True, seed=1337)
    loader = DataLoader(ds, batch_size=a.batch, sampler=sampler, num_workers=0)
    torch.manual_seed(1337)
    model = peer_models.build_model(a.model, len(ds.classes), a.size)
    if a.weights:
        peer_models.load_backbone_weights(model, a.weights)
    model = DistributedDataParallel(model)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3, eps=1e-7)
    epochs = []
    for epoch in range(1, a.epochs + 1):
        sampler.set_epoch(epoch)
        model.train()
        dist.barrier()
        t0 = time.monotonic()
        seen = 0
        for x, y in loader:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            seen += len(y)
        dist.barrier()
        epochs.append({"epoch": epoch, "seconds": time.monotonic() - t0, "images_this_rank": seen})
        if rank == 0:
            print(f"peer ddp {a.model} x{a.world} epoch {epoch}: {epochs[-1]['seconds']:.1f} s", file=sys.stderr)
    if rank == 0:
        with open(out, "w") as f:
            json.dump({"epochs": epochs, "images": len(ds)}, f)
    dist.destroy_process_group()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(peer_models.MODELS), required=True)
    p.add_argument("--train", required=True)
    p.add_argument("--weights")
    p.add_argument("--size", type=int, default=150)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--world", type=int, default=2)
    a = p.parse_args()
    out = f"/tmp/peer_ddp_{os.getpid()}.json"
    mp.spawn(worker, args=(a, free_port(), out), nprocs=a.world, join=True)
    with open(out) as f:
        result = json.load(f)
    os.remove(out)
    result.update(world=a.world, torch=torch.__version__,
                  allocator="tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "") else "glibc")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
