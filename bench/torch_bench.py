"""Native PyTorch's side of the benchmark: one workload per process, like the JS children.

    /usr/bin/python3 bench/torch_bench.py torch <workload> <config.json> <result.json>

Mirrors workloads/driver.mjs and lib/timing.mjs rule for rule (warm-up, time-budgeted
samples, medians, the same MNIST bytes and the same epoch order), so only the library differs.
Runs single-threaded: nabla and tfjs-wasm in Node use one core, and the comparison is per core.
"""

import base64
import json
import math
import os
import re
import resource
import statistics
import sys
import time

# One thread, or n for the library `torch-<n>t` (bench/run.mjs --threads n), argv[1].
_named = re.fullmatch(r"torch-(\d+)t", sys.argv[1]) if len(sys.argv) > 1 else None
THREADS = int(_named.group(1)) if _named else 1

# torch.set_num_threads does not reach the BLAS Debian's torch links (OpenBLAS spawns a thread
# per core on its own), so pin every threading runtime before torch loads it.
for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = str(THREADS)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(THREADS)
torch.set_num_interop_threads(1)


def now_ms():
    return time.perf_counter() * 1000


def spread(values):
    m = statistics.median(values)
    return (max(values) - min(values)) / m if m > 0 else float("nan")


def clamp(x, lo, hi):
    return min(hi, max(lo, x))


CLEAN = 0.9


def waited_ms():
    """lib/cpu.mjs: ms this thread sat runnable waiting for a CPU (Linux schedstat), or None."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1]) / 1e6
    except OSError:
        return None


class Meter:
    """Wall time and the share of it this thread ran (1 - waited / wall, or thread CPU time)."""

    def __init__(self):
        self.t0, self.w0, self.c0 = now_ms(), waited_ms(), time.thread_time() * 1000

    def read(self):
        wall = now_ms() - self.t0
        if self.w0 is not None:
            return wall, 1 - (waited_ms() - self.w0) / wall
        return wall, (time.thread_time() * 1000 - self.c0) / wall


def sample(fn):
    """Runs fn once: wall time (ms) and busy share."""
    m = Meter()
    fn()
    return m.read()


def collect(fn, want, least, cap_ms):
    """lib/timing.mjs's rule: discard samples taken while waiting for a CPU, within 2x the cap."""
    clean, every = [], []
    t0 = now_ms()
    while len(clean) < want and (now_ms() - t0 < cap_ms or len(clean) < least):
        ms, busy = fn()
        every.append(ms)
        if busy >= CLEAN:
            clean.append(ms)
        if now_ms() - t0 >= 2 * cap_ms and len(every) >= least:
            break
    contended = len(clean) < least
    used = every if contended else clean
    return {
        "ms": statistics.median(used),
        "samples": len(used),
        "discarded": len(every) - len(clean),
        "contended": contended,
        "spread": spread(used),
    }


def time_calls(fn, warmupMs, sampleMs, samples, minSamples, budgetMs):
    calls, t0 = 0, now_ms()
    while True:
        fn()
        calls += 1
        el = now_ms() - t0
        if (calls >= 2 and el >= warmupMs) or el >= 300:
            break
    per_call = (now_ms() - t0) / calls
    reps = max(1, round(sampleMs / per_call))
    count = clamp(math.floor(budgetMs / (reps * per_call)), minSamples, samples)

    def run():
        wall, busy = sample(lambda: [fn() for _ in range(reps)])
        return wall / reps, busy

    return {**collect(run, count, minSamples, budgetMs), "reps": reps}


def time_steps(step, warmupSteps, windowMs, windows, on_window, min_window_steps=2):
    i = 0
    half = max(1, warmupSteps >> 1)
    while i < warmupSteps - half:
        step(i)
        i += 1
    t0 = now_ms()
    while i < warmupSteps:
        step(i)
        i += 1
    per_step = (now_ms() - t0) / half
    n = clamp(round(windowMs / per_step), min_window_steps, 200)
    counter = [i]

    def window():
        for _ in range(n):
            step(counter[0])
            counter[0] += 1

    def run():
        wall, busy = sample(window)
        on_window()
        return wall / n, busy

    r = collect(run, windows, max(2, windows >> 1), windows * n * per_step)
    return {**r, "windows": r["samples"], "stepsPerWindow": n}


def time_checked_steps(batches, step, params, timing, on_window, after_first=None):
    """time_steps over a training step whose timed closure is itself checked (as
    lib/timing.mjs's timeCheckedSteps): the first call records the parameters before and after
    its update (plus `after_first(batch)`), and every call's loss is kept."""
    losses, check = [], {}

    def run(i):
        batch = batches[i % len(batches)]
        if i == 0:
            check["p0"] = params()
            losses.append(step(batch))
            check["p1"] = params()
            if after_first:
                check.update(after_first(batch))
        else:
            losses.append(step(batch))

    t = time_steps(
        run,
        timing["warmupSteps"],
        timing["windowMs"],
        timing["windows"],
        on_window,
        timing.get("minWindowSteps", 2),
    )
    fields = {
        "msPerStep": t["ms"],
        "windows": t["windows"],
        "discarded": t["discarded"],
        "contended": t["contended"],
        "stepsPerWindow": t["stepsPerWindow"],
        "spread": t["spread"],
        "stepsRun": len(losses),
        "finalLoss": losses[-1],
        "stepCheck": {**check, "losses": losses, "cycle": len(batches)},
    }
    return t["ms"], fields


class Memory:
    """Peak RSS: sampled at checkpoints, plus the kernel's high-water marks."""

    def __init__(self):
        self.peak = 0
        self.baseline = self.sample()

    def sample(self):
        with open("/proc/self/statm") as f:
            rss = int(f.read().split()[1]) * resource.getpagesize()
        self.peak = max(self.peak, rss)
        return rss

    def report(self):
        self.sample()
        hwm = None
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm = int(line.split()[1]) * 1024
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return {
            "baselineRss": self.baseline,
            "sampledPeakRss": self.peak,
            "vmHwm": hwm,
            "ruMaxrss": maxrss,
            "peakRss": max(self.peak, hwm or 0, maxrss),
        }


def mulberry32(seed):
    """lib/random.mjs's generator, so the epoch visits samples in the same order as in JS."""
    s = seed & 0xFFFFFFFF

    def imul(a, b):
        return (a * b) & 0xFFFFFFFF

    def nxt():
        nonlocal s
        s = (s + 0x6D2B79F5) & 0xFFFFFFFF
        t = s
        t = imul(t ^ (t >> 15), t | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & 0xFFFFFFFF
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296

    return nxt


def permutation(n, seed):
    r = mulberry32(seed)
    p = list(range(n))
    for i in range(n - 1, 0, -1):
        j = math.floor(r() * (i + 1))
        p[i], p[j] = p[j], p[i]
    return torch.tensor(p, dtype=torch.long)


FILES = {
    "trainImages": ("train-images-idx3-ubyte", 16),
    "trainLabels": ("train-labels-idx1-ubyte", 8),
    "testImages": ("t10k-images-idx3-ubyte", 16),
    "testLabels": ("t10k-labels-idx1-ubyte", 8),
}


def read_records(data_dir, key, count, size):
    name, header = FILES[key]
    with open(f"{data_dir}/{name}", "rb") as f:
        f.seek(header)
        raw = f.read(count * size)
    if len(raw) != count * size:
        raise ValueError(f"{name}: wanted {count * size} bytes, got {len(raw)}")
    return torch.frombuffer(bytearray(raw), dtype=torch.uint8)


def dataset(data_dir, split, count):
    x = read_records(data_dir, f"{split}Images", count, 784).view(count, 784).float().div_(255)
    y = read_records(data_dir, f"{split}Labels", count, 1).long()
    return x, y


def stored_shapes(c):
    m, k, n = c["m"], c["k"], c["n"]
    return ([k, m] if c["form"] == "AtB" else [m, k]), ([n, k] if c["form"] == "ABt" else [k, n])


def verify(c, got, want):
    """lib/verify.mjs's tolerance: a wrong product must fail the run, not post a figure."""
    err = (got.double() - want).abs().max().item()
    if not err <= 1e-4 + 5e-5 * c["k"]:
        raise ValueError(f"wrong {c['form']} product {c['m']}x{c['k']}x{c['n']}: max error {err}")


def matmul(config, mem):
    torch.manual_seed(config["seed"])
    out = []
    for c in config["matmul"]["cases"]:
        sa, sb = stored_shapes(c)
        a = torch.rand(sa) * 2 - 1
        b = torch.rand(sb) * 2 - 1
        # .T is a strided view: torch passes the transpose flag to its GEMM, no copy.
        fa = (lambda: a.T) if c["form"] == "AtB" else (lambda: a)
        fb = (lambda: b.T) if c["form"] == "ABt" else (lambda: b)
        # driver.mjs's rule: each timed call's product replaces the previous one and the last
        # timed product is the one checked against float64.
        last = [None]

        def call():
            last[0] = torch.mm(fa(), fb())

        with torch.no_grad():
            t = time_calls(call, **config["matmul"]["timing"])
            verify(c, last[0], torch.mm(fa().double(), fb().double()))
        via = {"AB": "a @ b", "AtB": "a.T @ b", "ABt": "a @ b.T"}[c["form"]]
        gflops = 2 * c["m"] * c["k"] * c["n"] / t["ms"] / 1e6
        out.append({**c, "gflops": gflops, **t, "via": via, "verified": "last timed product"})
        mem.sample()
    return {"matmul": out}


def model(config):
    torch.manual_seed(config["seed"])
    L = config["layers"]
    mods = []
    for i in range(len(L) - 1):
        mods.append(torch.nn.Linear(L[i], L[i + 1]))
        if i + 2 < len(L):
            mods.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*mods)
    return net, torch.optim.Adam(net.parameters(), lr=config["lr"])


def step(m, x, y):
    net, opt = m
    opt.zero_grad()
    loss = F.cross_entropy(net(x), y)
    loss.backward()
    opt.step()
    return loss.item()


def encode_f32(t):
    return base64.b64encode(t.detach().contiguous().float().numpy().tobytes()).decode("ascii")


def parameters(m):
    return [encode_f32(p) for p in m[0].parameters()]


def train(config, mem):
    batch = config["batch"]
    count = config["train"]["batches"] * batch
    x, y = dataset(config["dataDir"], "train", count)
    batches = [(x[s : s + batch], y[s : s + batch]) for s in range(0, count, batch)]
    m = model(config)
    # driver.mjs's rule (time_checked_steps): the parent checks the first update and the losses.
    ms, fields = time_checked_steps(
        batches, lambda b: step(m, *b), lambda: parameters(m), config["train"], mem.sample
    )
    return {"train": {"batch": batch, "samplesPerSec": batch * 1000 / ms, **fields}}


def accuracy(net, x, y):
    correct = 0
    with torch.no_grad():
        for s in range(0, len(y), 1000):
            correct += int((net(x[s : s + 1000]).argmax(1) == y[s : s + 1000]).sum())
    return correct / len(y)


def epoch(config, mem):
    batch, e = config["batch"], config["epoch"]
    n = e["trainSamples"]
    t0 = now_ms()
    x, y = dataset(config["dataDir"], "train", n)
    tx, ty = dataset(config["dataDir"], "test", e["testSamples"])
    load_seconds = (now_ms() - t0) / 1000
    mem.sample()
    m = model(config)
    batches = math.ceil(n / batch)
    # The shuffle is made before the clock starts, as in driver.mjs (this pure-Python shuffle
    # alone takes tens of ms); gathering each batch with index_select is part of the epoch.
    s0 = now_ms()
    order = permutation(n, config["seed"] + 1)
    shuffle_seconds = (now_ms() - s0) / 1000
    clock = Meter()
    losses = []
    for b in range(batches):
        idx = order[b * batch : (b + 1) * batch]
        losses.append(step(m, x.index_select(0, idx), y.index_select(0, idx)))
        if b % 16 == 0:
            mem.sample()
    wall, busy = clock.read()
    seconds = wall / 1000
    e0 = now_ms()
    acc = accuracy(m[0], tx, ty)
    tail = losses[-10:]
    return {
        "epoch": {
            "trainSamples": n,
            "testSamples": e["testSamples"],
            "batches": batches,
            "stepsRun": batches,
            "timedSteps": batches,
            "extrapolated": False,
            "seconds": seconds,
            "busy": busy,
            "samplesPerSec": n / seconds,
            "testAccuracy": acc,
            "evalSeconds": (now_ms() - e0) / 1000,
            "loadSeconds": load_seconds,
            "shuffleSeconds": shuffle_seconds,
            "firstLoss": losses[0],
            "finalLoss": sum(tail) / len(tail),
        }
    }


def read_tokens(r):
    """driver's readTokens: the parent's token batches (lib/tokens.mjs), int32 little-endian."""
    with open(r["tokenFile"], "rb") as f:
        raw = f.read()
    rows, width = r["batches"] * r["batch"], r["seq"] + 1
    if len(raw) != rows * width * 4:
        raise ValueError(f"{r['tokenFile']}: {len(raw) // 4} tokens, expected {rows * width}")
    return torch.frombuffer(bytearray(raw), dtype=torch.int32).long().view(r["batches"], r["batch"], width)


class CharModel(torch.nn.Module):
    """workloads/nabla.mjs's CharModel: Embedding -> one LSTM or GRU layer -> Linear."""

    def __init__(self, r, c):
        super().__init__()
        self.embedding = torch.nn.Embedding(r["vocab"], r["embed"])
        cell = torch.nn.LSTM if c["cell"] == "lstm" else torch.nn.GRU
        self.rnn = cell(r["embed"], c["hidden"], batch_first=True)
        self.head = torch.nn.Linear(c["hidden"], r["vocab"])

    def forward(self, x):
        out, _ = self.rnn(self.embedding(x))
        return self.head(out)


def rnn(config, mem, case_id):
    """workloads/rnn.mjs rule for rule: the same token batches, step check and timing."""
    r = config["rnn"]
    c = next(k for k in r["cases"] if k["id"] == case_id)
    tokens = read_tokens(r)
    seq, vocab = r["seq"], r["vocab"]
    batches = [(b[:, :seq].contiguous(), b[:, 1:].contiguous()) for b in tokens]
    torch.manual_seed(config["seed"])
    net = CharModel(r, c)
    opt = torch.optim.Adam(net.parameters(), lr=r["lr"])
    mem.sample()

    def step(batch):
        x, y = batch
        opt.zero_grad()
        loss = F.cross_entropy(net(x).reshape(-1, vocab), y.reshape(-1))
        loss.backward()
        opt.step()
        return loss.item()

    def params():
        return [encode_f32(p) for p in net.parameters()]

    tm = r["slowTiming"].get("torch", r["timing"])
    ms, fields = time_checked_steps(batches, step, params, tm, mem.sample)
    tokens_per_step = r["batch"] * seq
    return {
        "rnn": {
            **c,
            "batch": r["batch"],
            "seq": seq,
            "tokensPerStep": tokens_per_step,
            "tokensPerSec": tokens_per_step * 1000 / ms,
            **fields,
            "cannotTrain": None,
            "variant": None,
        }
    }


CNN_WORKLOADS = ("cnn-lenet", "cnn-resblock")


class BasicBlock(torch.nn.Module):
    """torchvision's BasicBlock (stride 1, no downsampling), written out so torchvision stays
    optional: conv3x3 (no bias) -> BN -> ReLU -> conv3x3 -> BN, plus the input, then ReLU."""

    def __init__(self, c):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(c)
        self.relu = torch.nn.ReLU(inplace=True)
        self.conv2 = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(c)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + x)


def lenet():
    """lib/cnn.mjs's LeNet-5, as workloads/nabla.mjs builds it."""
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def cnn_batches(config, workload):
    """workloads/cnn.mjs's rawBatches: MNIST's first batches, or the parent's resblock file."""
    c = config[workload]
    if workload == "cnn-resblock":
        with open(c["dataFile"], "rb") as f:
            raw = f.read()
        shape = (c["batch"], c["channels"], c["size"], c["size"])
        per = math.prod(shape)
        if len(raw) != 2 * c["batches"] * per * 4:
            raise ValueError(f"{c['dataFile']}: {len(raw) // 4} floats, expected {2 * c['batches'] * per}")
        all_ = torch.frombuffer(bytearray(raw), dtype=torch.float32)
        n = c["batches"]
        return [(all_[i * per : (i + 1) * per].view(shape), all_[(n + i) * per : (n + i + 1) * per].view(shape)) for i in range(n)]
    b = c["batch"]
    x, y = dataset(config["dataDir"], "train", c["batches"] * b)
    x = x.view(-1, 1, 28, 28)
    return [(x[s : s + b], y[s : s + b]) for s in range(0, c["batches"] * b, b)]


def cnn(config, mem, workload):
    """workloads/cnn.mjs rule for rule: the same batches, step check and timing."""
    c = config[workload]
    batches = cnn_batches(config, workload)
    torch.manual_seed(config["seed"])
    net = BasicBlock(c["channels"]) if workload == "cnn-resblock" else lenet()
    net.train()
    loss_fn = F.mse_loss if workload == "cnn-resblock" else F.cross_entropy
    opt = torch.optim.Adam(net.parameters(), lr=c["lr"])
    mem.sample()

    def step(batch):
        x, y = batch
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    def params():
        return [encode_f32(p) for p in net.parameters()]

    tm = c["slowTiming"].get("torch", c["timing"])
    ms, fields = time_checked_steps(batches, step, params, tm, mem.sample)
    return {
        "cnn": {
            "batch": c["batch"],
            "samplesPerSec": c["batch"] * 1000 / ms,
            **fields,
            "cannotTrain": None,
        }
    }


def blas():
    """Which BLAS library the process loaded: OpenBLAS, or Debian's reference BLAS (~10x slower)."""
    a = torch.rand(64, 64)
    a @ a  # make sure the BLAS is loaded
    with open("/proc/self/maps") as f:
        libs = sorted(set(re.findall(r"/\S*(?:blas|lapack)\S*\.so\S*", f.read())))
    if any("openblas" in p for p in libs):
        name = "OpenBLAS"
    elif any("/blas/" in p or "libblas" in p for p in libs):
        name = "reference BLAS"
    else:
        name = "unknown"
    return {"name": name, "libraries": libs}


def run_child(run_workload):
    """The child protocol shared by every torch script: argv is library, workload, config path,
    result path; `run_workload(workload, config, mem)` returns the workload's figures."""
    library, workload, config_path, result_path = sys.argv[1:5]
    with open(config_path) as f:
        config = json.load(f)
    mem = Memory()
    clock = Meter()
    out = run_workload(workload, config, mem)
    wall, busy = clock.read()
    result = {
        "library": library,
        "version": torch.__version__,
        "threads": torch.get_num_threads(),
        "blas": blas(),
        "workload": workload,
        **out,
        # The share of the workload's wall time this thread ran: about 1 when it had a core.
        "cpu": {"wallSeconds": wall / 1000, "busy": busy},
        "memory": mem.report(),
    }
    with open(result_path, "w") as f:
        json.dump(result, f, indent=2)


def run_workload(workload, config, mem):
    if workload.startswith("rnn-"):
        return rnn(config, mem, workload[4:])
    if workload in CNN_WORKLOADS:
        return cnn(config, mem, workload)
    return {"matmul": matmul, "train": train, "epoch": epoch}[workload](config, mem)


if __name__ == "__main__":
    run_child(run_workload)
