# The training steps of bench/conv-kernels.mjs in PyTorch on one thread: prints
# {"lenet": ms, "resnet-block": ms}, best of --reps after one warm-up. Run by that script with
# --torch (OMP/MKL/OpenBLAS threads set to 1 in its environment).
import argparse
import json
import time

import torch
from torch import nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--reps", type=int, default=5)
args = p.parse_args()
torch.set_num_threads(1)
torch.manual_seed(0)


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + x)


def step_time(model, x, loss):
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    best = float("inf")
    for r in range(args.reps + 1):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss(model(x)).backward()
        opt.step()
        ms = (time.perf_counter() - t0) * 1000
        if r > 0:
            best = min(best, ms)
    return best


x = torch.rand(64, 1, 28, 28)
y = torch.randint(0, 10, (64,))
out = {"lenet": step_time(lenet(), x, lambda o: F.cross_entropy(o, y))}
x = torch.randn(8, 64, 32, 32)
out["resnet-block"] = step_time(Block(), x, lambda o: o.square().mean())
out["threads"] = torch.get_num_threads()
print(json.dumps(out))
