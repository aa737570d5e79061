#!/usr/bin/python3
"""Learning-rate curves from PyTorch's own schedulers, for tabby's schedule tests.

  reference_schedules.py TOTAL_STEPS WARMUP_STEPS
      Prints one JSON object: for each of "constant", "cosine" and "one_cycle",
      the factor of the base learning rate at every step 0..TOTAL_STEPS-1, as
      torch.optim.lr_scheduler computes it for the schedule that tabby's
      train/schedule.h documents (warmup: LinearLR(start_factor=0.01); cosine:
      SequentialLR of the warmup and CosineAnnealingLR(T_max=N-W); one_cycle:
      OneCycleLR with pct_start = W/N, or 0.3 when W is 0).

Exit status 3 when torch cannot be imported (the caller skips).
"""
import json
import sys

try:
    import torch
except Exception as error:  # pragma: no cover - depends on the machine
    print(f"cannot import torch: {error}", file=sys.stderr)
    sys.exit(3)


def curve(make_scheduler, total):
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = make_scheduler(optimizer)
    factors = []
    for _ in range(total):
        factors.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return factors


def main():
    total, warmup = int(sys.argv[1]), int(sys.argv[2])
    sched = torch.optim.lr_scheduler

    def warmup_then(after):
        def make(optimizer):
            if warmup == 0:
                return after(optimizer)
            first = sched.LinearLR(optimizer, start_factor=0.01, end_factor=1.0, total_iters=warmup)
            return sched.SequentialLR(optimizer, [first, after(optimizer)], milestones=[warmup])
        return make

    constant = warmup_then(lambda o: sched.LambdaLR(o, lambda step: 1.0))
    cosine = warmup_then(lambda o: sched.CosineAnnealingLR(o, T_max=total - warmup, eta_min=0.0))
    pct = warmup / total if warmup else 0.3
    one_cycle = lambda o: sched.OneCycleLR(o, max_lr=1.0, total_steps=total, pct_start=pct,
                                           anneal_strategy="cos", div_factor=25.0, final_div_factor=1e4,
                                           cycle_momentum=False)
    print(json.dumps({"constant": curve(constant, total), "cosine": curve(cosine, total),
                      "one_cycle": curve(one_cycle, total)}))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        print(__doc__)
        sys.exit(2)
    main()
