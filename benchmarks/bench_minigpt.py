"""MiniGPT on the CPU, side by side with the same model in PyTorch: training steps and sampling.

Model: nanoGPT's CPU "baby GPT" (4 layers, 4 heads, 128 channels, context 64, vocab 100 as for
the python-stdlib corpus), batch 12, AdamW with weight-decay groups and gradient clipping. Each
row runs in its own process, so first-step times and peak memory are not shared between rows;
every minigpt process gets an empty private tinygrad cache (CACHEDB in a temporary folder), so
its first step pays the whole compile, as on a fresh machine. PyTorch is optional: without it
the PyTorch rows print a skip line.

GFLOPS divide the step's floating-point work (tinygrad's count for MiniGPT's kernels; PyTorch runs
the same model, so the same count) by the median wall time. "CPU ms" is the process's CPU time per
step: on a shared machine it shows the work done even when other processes steal the cores. The
top-kernel table times every kernel of one replayed step in CPU time of the calling thread.

Time to first step: each row is a new process that builds a model and calls `train` for one
step (with its evaluation at steps 0 and 1, one batch each), timed from the start of the
process: "cold" with an empty compiled-step cache, "warm" after another process stored the
steps (`minigpt.step_cache`). The models: lesson 04's first (the "previous token" task, batch 32)
and its text model (batch 16), and the baby GPT above. Sampling's time to first token (lesson 04's
text model) is timed the same way (a process's first `generate` call of one token, cold and warm). Every row gets a
private step cache folder (MINIGPT_CACHE), so the user's own cache is neither read nor filled.

The thread-pool table replays one compiled step with `minigpt.cpu_threads.use_cpu_threads(2)` on
and off in turn: the THREAD pieces of a kernel run at the same time on two cores, or one after
another (tests check that both give the same numbers to the last bit).

The HCQ2=1 rows run tinygrad 0.14's experimental command-queue runtime (the environment variable
HCQ2=1, read when tinygrad is imported): a replayed step is handed to a worker thread as one
buffer of commands, instead of Python launching each kernel (about 23 us per kernel here). Its
calling thread waits by polling, so its CPU time counts two busy threads. Kernels are not counted
or timed one by one under it.

    python benchmarks/bench_minigpt.py              # ~3-4 minutes on 2 cores
    python benchmarks/bench_minigpt.py --steps 30   # more replayed steps per row
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

LESSON04_TEXT = dict(block_size=64, n_layer=2, n_head=4, n_embd=64)  # lesson 04's text model
SHAPES = {"vocab_size": 100, "block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 128}
BATCH, WARMUP_CALLS = 12, 2  # a TinyJit compiles on call 1 and captures on call 2
TOP_KERNELS = 8  # rows of the slowest-kernels table


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _batches(n: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, SHAPES["vocab_size"], (n, BATCH, SHAPES["block_size"] + 1))
    return [(b[:, :-1].astype(np.int64), b[:, 1:].astype(np.int64)) for b in x]


def _kernel_profile(fn) -> tuple[float, list[tuple[str, int, float, float]]]:
    """Run `fn` once with every CPU kernel timed: (step GFLOP, [(name, calls, seconds, GFLOP)])."""
    from collections import defaultdict

    from tinygrad.engine import realize
    from tinygrad.runtime import ops_cpu
    from tinygrad.uop.ops import Ops

    seconds, calls, flops = defaultdict(float), defaultdict(int), defaultdict(float)
    run, track = ops_cpu.CPUProgram.__call__, realize.track_stats

    def timed(program, *args, **kwargs):
        start = time.thread_time()
        result = run(program, *args, **kwargs)
        seconds[program.name] += time.thread_time() - start
        calls[program.name] += 1
        return result

    def count(ctx, call, start, times):
        if call.src[0].op is Ops.PROGRAM:
            flops[call.src[0].arg.function_name] += float(realize.estimate_uop(call).ops)
        return track(ctx, call, start, times)

    ops_cpu.CPUProgram.__call__, realize.track_stats = timed, count
    try:
        fn()
    finally:
        ops_cpu.CPUProgram.__call__, realize.track_stats = run, track
    rows = [(name, calls[name], seconds[name], flops[name] / 1e9) for name in seconds]
    return sum(flops.values()) / 1e9, sorted(rows, key=lambda r: -r[2])


def _baby_train_step(tuned: bool):
    """The baby GPT's compiled training step (minigpt.tuning_in_step.training_step, the step
    `train` compiles) and its fixed input buffers."""
    from minigpt import tuning
    from minigpt.compiled import StepInputs
    from minigpt.model import GPTConfig
    from minigpt.tuning_in_step import training_step

    if not tuned:
        tuning.use_stored_choices(False)
    return training_step(GPTConfig(**SHAPES)), StepInputs()


def minigpt_pool(steps: int, tuned: bool) -> dict:
    """One compiled step replayed with the THREAD pieces one after another and on two threads,
    alternating call by call (so both see the same machine load). Each call is a training step,
    so the losses differ from call to call; tests/test_cpu_threads.py checks the bit-equality."""
    from minigpt import cpu_threads

    step, inputs = _baby_train_step(tuned)
    lr = np.array([1e-3], dtype=np.float32)
    times = {1: [], 2: []}
    batches = _batches(WARMUP_CALLS + steps)
    for x, y in batches[:WARMUP_CALLS]:
        step(*inputs.load(x.astype(np.int32), y.astype(np.int32), lr)).item()
    x, y = batches[-1]
    for i in range(2 * steps):
        threads = 1 + i % 2
        cpu_threads.use_cpu_threads(threads)
        start = time.perf_counter()
        step(*inputs.load(x.astype(np.int32), y.astype(np.int32), lr)).item()
        times[threads].append(time.perf_counter() - start)
    cpu_threads.use_cpu_threads(1)
    return {
        "one": statistics.median(times[1]),
        "two": statistics.median(times[2]),
        "pooled_calls": cpu_threads.status().pooled_calls,
    }


def minigpt_train(steps: int, tuned: bool) -> dict:
    from tinygrad import Device

    from minigpt import tuning
    from minigpt.fusion import kernel_report

    step, inputs = _baby_train_step(tuned)
    times, cpu_times, losses = [], [], []
    lr = np.array([1e-3], dtype=np.float32)
    for x, y in _batches(steps + WARMUP_CALLS):
        start, cpu_start = time.perf_counter(), time.process_time()
        losses.append(step(*inputs.load(x.astype(np.int32), y.astype(np.int32), lr)).item())
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    x, y = _batches(1, seed=1)[0]
    args = inputs.load(x.astype(np.int32), y.astype(np.int32), lr)
    result = {
        "first": times[0],
        "capture": times[1],
        "median": statistics.median(times[WARMUP_CALLS:]),
        "cpu": statistics.median(cpu_times[WARMUP_CALLS:]),
        "loss": losses[-1],
        "peak_mib": _peak_mib(),
        "tuning": str(tuning.status()),
    }
    if not os.environ.get("HCQ2"):  # the command queue runs kernels out of Python's sight
        report = kernel_report(lambda: step(*args).item())
        result.update(gflop=report.flops / 1e9, kernels=report.kernels)
        if Device.DEFAULT == "CPU":  # per-kernel times patch the CPU runtime
            gflop, top = _kernel_profile(lambda: step(*args).item())
            kernel_s = sum(r[2] for r in top)
            result.update(gflop=gflop, top=top[:TOP_KERNELS], kernel_s=kernel_s)
    return result


def first_step(model_name: str) -> dict:
    """Seconds from this process's start to the end of its first `train` step for one model."""
    started = time.perf_counter()
    from tinygrad import Tensor

    from minigpt.data import CharTokenizer, load_corpus, split, synthetic_task
    from minigpt.model import GPTConfig, MiniGPT
    from minigpt.train import TrainConfig, train

    imported = time.perf_counter() - started
    if model_name == "lesson04-task":  # lesson 04's tiny_gpt on the previous-token task
        rng = np.random.default_rng(0)
        data = (
            synthetic_task("previous", 2000, 12, 8, rng),
            synthetic_task("previous", 200, 12, 8, rng),
        )
        sizes, batch = dict(block_size=16, n_layer=2, n_head=2, n_embd=32), 32
        vocab = data[0].tokenizer.vocab_size
    else:  # lesson 04's text model, or the baby GPT, on the python-stdlib corpus
        text = load_corpus()
        tokenizer = CharTokenizer.from_text(text)
        data = split(tokenizer.encode(text))
        sizes, batch = (LESSON04_TEXT, 16) if model_name == "lesson04-text" else (SHAPES, BATCH)
        vocab = tokenizer.vocab_size
    config = GPTConfig(**{**sizes, "vocab_size": vocab})
    steps = int(os.environ.get("BENCH_STEPS", "1"))
    start = time.perf_counter()
    Tensor.manual_seed(0)
    model = MiniGPT(config)
    settings = dict(batch_size=batch, warmup=0, eval_interval=1, eval_batches=1)
    result = train(model, *data, TrainConfig(steps=steps, **settings), progress=False)
    return {
        "imported": imported,
        "train": time.perf_counter() - start,
        "total": time.perf_counter() - started,
        "cached": result.cached_steps,
        "loss": result.step_losses[0],
    }


def first_token() -> dict:
    """Seconds from this process's start to its first sampled token (lesson 04's text model,
    vocab 100, batch 1), then a longer call so that the decoding steps are captured (and stored,
    when cold)."""
    started = time.perf_counter()
    from tinygrad import Tensor

    from minigpt.compiled import generate
    from minigpt.model import GPTConfig, MiniGPT

    Tensor.manual_seed(0)
    model = MiniGPT(GPTConfig(**{**SHAPES, **LESSON04_TEXT}))
    token = generate(model, [[0]], 1, seed=0)
    first = time.perf_counter() - started
    more = generate(model, [[0]], 8, seed=0)
    return {"first": first, "tokens": [int(token[0, -1]), *map(int, more[0])]}


def minigpt_sample(tokens: int, use_cache: bool, tuned: bool) -> dict:
    from tinygrad import Tensor

    from minigpt import tuning
    from minigpt.compiled import generate
    from minigpt.fusion import kernel_report
    from minigpt.model import GPTConfig, MiniGPT

    if not tuned:
        tuning.use_stored_choices(False)
    Tensor.manual_seed(0)
    model = MiniGPT(GPTConfig(**SHAPES))
    times, cpu_times = [], []
    for _ in range(3):  # call 1 compiles; later calls replay the compiled decoders
        start, cpu_start = time.perf_counter(), time.process_time()
        generate(model, [[0]], tokens, seed=0, use_cache=use_cache)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    result = {
        "first": times[0],
        "median": statistics.median(times[1:]),
        "cpu": statistics.median(cpu_times[1:]),
        "peak_mib": _peak_mib(),
    }
    if not os.environ.get("HCQ2"):
        # kernels of one decoded token: 2 tokens run the prompt pass and one decode step
        one, two = (
            kernel_report(lambda n=n: generate(model, [[0]], n, seed=0, use_cache=use_cache))
            for n in (1, 2)
        )
        result["kernels"] = two.kernels - one.kernels
    return result


def _torch_model(torch):
    """The same GPT in plain PyTorch: pre-norm blocks, fused qkv, tanh GELU, tied head."""
    nn, F = torch.nn, torch.nn.functional
    C, nh, S, V = (SHAPES[k] for k in ("n_embd", "n_head", "block_size", "vocab_size"))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(C), nn.LayerNorm(C)
            self.c_attn, self.c_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
            self.fc, self.proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

        def forward(self, x, cache=None):
            B, T, _ = x.shape
            q, k, v = self.c_attn(self.ln1(x)).split(C, dim=2)
            q, k, v = (t.view(B, T, nh, C // nh).transpose(1, 2) for t in (q, k, v))
            causal = True
            if cache is not None:  # [k, v] of earlier positions, extended in place
                if cache[0] is not None:
                    k, v, causal = torch.cat([cache[0], k], 2), torch.cat([cache[1], v], 2), False
                cache[0], cache[1] = k, v
            y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            x = x + self.c_proj(y.transpose(1, 2).reshape(B, T, C))
            return x + self.proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos = nn.Embedding(V, C), nn.Embedding(S, C)
            self.blocks = nn.ModuleList(Block() for _ in range(SHAPES["n_layer"]))
            self.ln_f = nn.LayerNorm(C)

        def forward(self, idx, caches=None, start=0):
            x = self.tok(idx) + self.pos(torch.arange(start, start + idx.shape[1]))
            for i, block in enumerate(self.blocks):
                x = block(x, caches[i] if caches else None)
            return self.ln_f(x) @ self.tok.weight.T

    model = GPT()
    for name, p in model.named_parameters():  # GPT-2 init, as MiniGPT (scaled c_proj aside)
        if p.dim() >= 2:
            torch.nn.init.normal_(p, 0.0, 0.02)
        elif name.endswith("bias"):
            torch.nn.init.zeros_(p)
    return model


def torch_train(steps: int, threads: int, cuda: bool = False) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = "cuda" if cuda else "cpu"
    model = _torch_model(torch).to(device)
    params = list(model.parameters())
    optimizer = torch.optim.AdamW(
        [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
         {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}],
        lr=1e-3, betas=(0.9, 0.99), eps=1e-8,
    )  # fmt: skip
    times, cpu_times, losses = [], [], []
    for x, y in _batches(steps + WARMUP_CALLS):
        start, cpu_start = time.perf_counter(), time.process_time()
        logits = model(torch.from_numpy(x).to(device))
        loss = torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), torch.from_numpy(y).to(device).flatten()
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        losses.append(loss.item())
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    return {
        "first": times[0],
        "median": statistics.median(times[WARMUP_CALLS:]),
        "cpu": statistics.median(cpu_times[WARMUP_CALLS:]),
        "loss": losses[-1],
        "peak_mib": _peak_mib(),
    }


def torch_sample(tokens: int, use_cache: bool, threads: int, cuda: bool = False) -> dict:
    """Same algorithm as MiniGPT.generate: the cache is used until the context is full."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    device = "cuda" if cuda else "cpu"
    model, S = _torch_model(torch).to(device).eval(), SHAPES["block_size"]
    rng = np.random.default_rng(0)

    def generate() -> None:
        ids = torch.zeros(1, 1, dtype=torch.long, device=device)
        caches = [[None, None] for _ in model.blocks] if use_cache else None
        logits = model(ids, caches)[:, -1]
        for _ in range(tokens):
            probs = torch.softmax(logits.double(), -1).cpu().numpy()[0]
            next_id = torch.tensor([[min(int((probs.cumsum() < rng.random()).sum()), 99)]])
            next_id = next_id.to(device)
            ids = torch.cat([ids, next_id], 1)
            if use_cache and ids.shape[1] <= S:
                logits = model(next_id, caches, start=ids.shape[1] - 1)[:, -1]
            else:
                logits = model(ids[:, -S:])[:, -1]

    times, cpu_times = [], []
    with torch.no_grad():
        for _ in range(3):
            start, cpu_start = time.perf_counter(), time.process_time()
            generate()
            times.append(time.perf_counter() - start)
            cpu_times.append(time.process_time() - cpu_start)
    return {
        "first": times[0],
        "median": statistics.median(times[1:]),
        "cpu": statistics.median(cpu_times[1:]),
        "peak_mib": _peak_mib(),
    }


WORKERS = {
    "minigpt-train": lambda a: minigpt_train(a.steps, a.tuned),
    "minigpt-pool": lambda a: minigpt_pool(a.steps, a.tuned),
    "first-step": lambda a: first_step(a.model),
    "first-token": lambda a: first_token(),
    "minigpt-sample": lambda a: minigpt_sample(a.tokens, a.cache, a.tuned),
    "torch-train": lambda a: torch_train(a.steps, a.threads, a.cuda),
    "torch-sample": lambda a: torch_sample(a.tokens, a.cache, a.threads, a.cuda),
}


def run_worker(
    kind: str,
    cache_dir: str,
    db: str | None = None,
    hcq2: bool = False,
    steps_dir: str | None = None,
    env_extra: dict | None = None,
    timeout: float | None = None,
    **flags: object,
) -> dict | None:
    """Run one measurement in a fresh process with a private tinygrad cache: a new empty one,
    or the file `db` in `cache_dir` (warm when an earlier row filled it); `hcq2` sets HCQ2=1.
    Its compiled-step cache is the folder `steps_dir` in `cache_dir` (a new empty one if None).
    A row that fails or outlasts `timeout` seconds prints why and gives None."""
    argv = [sys.executable, __file__, "--worker", kind]
    for name, value in flags.items():
        argv += [f"--{name}", str(value if isinstance(value, str) else int(value))]
    db = db or f"{kind}-{len(os.listdir(cache_dir))}.db"
    steps_dir = steps_dir or f"steps-{len(os.listdir(cache_dir))}"
    env = dict(os.environ, CACHEDB=os.path.join(cache_dir, db), **(env_extra or {}))
    env["MINIGPT_CACHE"] = os.path.join(cache_dir, steps_dir)
    env.pop("HCQ2", None)
    if hcq2:
        env["HCQ2"] = "1"
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  {kind} {flags} stopped after {timeout:.0f} s")
        return None
    if done.returncode != 0:
        print(f"  {kind} {flags} failed:\n{done.stderr[-2000:]}")
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def first_steps(cache_dir: str, models: list[str]) -> None:
    """Time to first step and to first token, cold and warm compiled-step cache (new processes)."""
    print("\nTime to first step: a new process, start to the end of train's first step (s)")
    print("| model | cache | import s | model + first step s | total s | loss |")
    print("|---|---|---|---|---|---|")
    for model in models:
        folder = f"steps-{model}"
        db = f"first-{model}.db"  # the tinygrad cache too stays, as on a learner's machine
        cold = run_worker("first-step", cache_dir, db, steps_dir=folder, model=model)
        # another process trains 2 steps, which captures the steps and stores them
        run_worker(
            "first-step", cache_dir, steps_dir=folder, env_extra={"BENCH_STEPS": "2"}, model=model
        )
        warm = run_worker("first-step", cache_dir, steps_dir=folder, model=model)
        for name, r in (("cold", cold), ("warm", warm)):
            if r is not None:
                print(
                    f"| {model} | {name}{' (loaded)' if r['cached'] else ''} | {r['imported']:.1f} | "
                    f"{r['train']:.1f} | {r['total']:.1f} | {r['loss']:.6f} |"
                )
    cold = run_worker("first-token", cache_dir, "first-token.db", steps_dir="steps-sample")
    warm = run_worker("first-token", cache_dir, "first-token.db", steps_dir="steps-sample")
    if cold and warm:
        same = "same tokens" if cold["tokens"] == warm["tokens"] else "DIFFERENT tokens"
        print(
            f"\nSampling, lesson 04's text model: first token {cold['first']:.1f} s cold, "
            f"{warm['first']:.1f} s warm (a second process; {same})"
        )


def pool_rows(cache_dir: str, steps: int, tuned_rows: list[int]) -> None:
    """The training step with a kernel's THREAD pieces one after another, and on two threads."""
    print(f"\nThread pool: one compiled step, {steps} replays each way, alternating (ms, median)")
    print("| kernels | pieces in turn | pieces on 2 threads | speed-up | kernel calls pooled |")
    print("|---|---|---|---|---|")
    for tuned in tuned_rows:
        r = run_worker("minigpt-pool", cache_dir, steps=steps, tuned=tuned)
        if r is not None:
            print(
                f"| {'tuned' if tuned else 'default heuristics'} | {r['one'] * 1e3:.0f} | "
                f"{r['two'] * 1e3:.0f} | {r['one'] / r['two']:.2f}x | {r['pooled_calls']} |"
            )


def _have_torch() -> bool:
    return (
        subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="replayed train steps per row")
    parser.add_argument("--tokens", type=int, default=200, help="tokens sampled per generate call")
    parser.add_argument("--skip-default", action="store_true", help="skip the untuned minigpt rows")
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--tuned", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--model", default="baby", help=argparse.SUPPRESS)
    parser.add_argument("--only-first-step", action="store_true", help="only the first-step rows")
    parser.add_argument("--only-pool", action="store_true", help="only the thread-pool rows")
    parser.add_argument(
        "--first-step-models",
        default="lesson04-task,lesson04-text,baby",
        help="models of the first-step table (comma-separated)",
    )
    parser.add_argument("--cuda", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return

    has_torch = _have_torch()
    torch_rows = [1, 2] if has_torch else []
    tuned_rows = [1] if args.skip_default else [1, 0]
    cache_dir = tempfile.mkdtemp(prefix="bench-minigpt-")
    tokens_per_step = BATCH * SHAPES["block_size"]
    from course.device import describe_cpu

    print(f"CPU: {describe_cpu()}")
    print(f"MiniGPT baby config {SHAPES}, batch {BATCH}")
    print(f"tinygrad caches (CACHEDB): new empty files in {cache_dir}, except the warm row")
    if not has_torch:
        print("PyTorch rows skipped: torch is not installed (pip install torch to compare).")

    if not args.only_pool:
        first_steps(cache_dir, args.first_step_models.split(","))
    if not args.only_first_step:
        pool_rows(cache_dir, args.steps, tuned_rows)
    if args.only_first_step or args.only_pool:
        return
    train = {}
    for tuned in tuned_rows:
        train[f"minigpt ({'tuned kernels' if tuned else 'default heuristics'})"] = run_worker(
            "minigpt-train", cache_dir, f"train-{tuned}.db", steps=args.steps, tuned=tuned
        )
    train["minigpt (tuned kernels), warm compile cache"] = run_worker(
        "minigpt-train", cache_dir, "train-1.db", steps=args.steps, tuned=1
    )
    train["minigpt (tuned kernels), HCQ2=1"] = run_worker(
        "minigpt-train", cache_dir, hcq2=True, steps=args.steps, tuned=1
    )
    for threads in torch_rows:
        train[f"PyTorch eager, {threads} thread(s)"] = run_worker(
            "torch-train", cache_dir, steps=args.steps, threads=threads
        )
    torch_ms = {k: r["median"] for k, r in train.items() if r and k.startswith("PyTorch")}
    gflop = next((r["gflop"] for r in train.values() if r and "gflop" in r), None)
    print(f"\nTraining step ({args.steps} replayed steps, median; first step = compile + run)")
    head = (
        "| row | ms/step | CPU ms | GFLOPS | tokens/s | first s | capture s | kernels | peak MiB |"
    )
    print(head + " loss |" + "".join(f" / {k.split(', ')[1]} |" for k in torch_ms))
    print("|---" * (10 + len(torch_ms)) + "|")
    for name, r in train.items():
        if r is None:
            continue
        ratios = "".join(f" {r['median'] / ms:.1f}x |" for ms in torch_ms.values())
        gflops = f"{gflop / r['median']:.0f}" if gflop else "-"
        print(
            f"| {name} | {r['median'] * 1e3:.0f} | {r['cpu'] * 1e3:.0f} | {gflops} | "
            f"{tokens_per_step / r['median']:,.0f} | {r['first']:.1f} | "
            f"{r.get('capture', 0):.1f} | {r.get('kernels', '-')} | "
            f"{r['peak_mib']:.0f} | {r['loss']:.4f} |{ratios}"
        )
    for name, r in train.items():
        if r is None or "top" not in r:
            continue
        print(f"\nSlowest kernels of one step, {name}: {r['gflop']:.2f} GFLOP, kernels ", end="")
        print(f"{r['kernel_s'] * 1e3:.0f} ms CPU in all")
        print("| kernel | calls | ms | share of step | GFLOPS |")
        print("|---|---|---|---|---|")
        for kernel, calls, seconds, kernel_gflop in r["top"]:
            print(
                f"| {kernel} | {calls} | {seconds * 1e3:.1f} | {seconds / r['kernel_s']:.0%} | "
                f"{kernel_gflop / max(seconds, 1e-9):.0f} |"
            )
        break  # the first (tuned) row; the others differ in a few kernels only

    runs = [
        ("minigpt (tuned kernels)", "minigpt-sample", {"tuned": 1}),
        ("minigpt (tuned kernels), HCQ2=1", "minigpt-sample", {"tuned": 1, "hcq2": True}),
    ]
    runs += [(f"PyTorch eager, {t} thread(s)", "torch-sample", {"threads": t}) for t in torch_rows]
    sample = {
        (name, cache): run_worker(kind, cache_dir, tokens=args.tokens, cache=cache, **flags)
        for name, kind, flags in runs
        for cache in (1, 0)
    }
    print(f"\nSampling {args.tokens} tokens, batch 1 (median of 2 warm calls; first = compile)")
    print(
        "| row | KV cache | ms/token | CPU ms/token | first call s | kernels/token | peak MiB |"
        + "".join(f" / {t} thread(s) |" for t in torch_rows)
    )
    print("|---" * (7 + len(torch_rows)) + "|")
    for (name, cache), r in sample.items():
        if r is None:
            continue
        torch_runs = [sample[(f"PyTorch eager, {t} thread(s)", cache)] for t in torch_rows]
        ratios = "".join(
            f" {r['median'] / t['median']:.1f}x |" if t else " - |" for t in torch_runs
        )
        print(
            f"| {name} | {'yes' if cache else 'no'} | {r['median'] / args.tokens * 1e3:.2f} | "
            f"{r['cpu'] / args.tokens * 1e3:.2f} | "
            f"{r['first']:.1f} | {r.get('kernels', '-')} | {r['peak_mib']:.0f} |{ratios}"
        )


if __name__ == "__main__":
    main()
