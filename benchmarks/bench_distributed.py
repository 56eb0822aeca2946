"""Data-parallel training on MPI: all-reduce bandwidth against memcpy, the tiny GPT's step time at
1 process x 2 threads against 2 ranks x 1 thread (plain data parallel and ZeRO-1), and the
memory each rank needs.

    python benchmarks/bench_distributed.py            # everything (a few minutes on 2 cores)
    python benchmarks/bench_distributed.py --quick    # smoke run: fewer sizes, steps and rounds
    python benchmarks/bench_distributed.py --sections training --cases compact

What is measured (the script launches ``mpirun -np 2`` itself, from the Python's own bin folder):

* All-reduce: ``tinygrad_lite.distributed.all_reduce`` on float32 arrays of 1 KB - 64 MB (powers
  of 4) in one 2-rank launch, against ``np.copyto`` of the same bytes timed in the same ranks
  (both ranks copy at once, as both take part in an all-reduce). Algorithm bandwidth = bytes /
  time; bus bandwidth = 2 (N-1) / N x bytes / time, as NCCL-tests report it (what each rank's
  link carries, comparable across rank counts). A sample is the slowest rank's time.
* Training (reference hyperparameters of examples/train_gpt.py, AdamW, the global batch of 2
  windows of random tokens built as benchmarks/bench_train.py builds them), full and compact
  vocabulary: ``1x2`` one process with TGL_NUM_THREADS=2; ``2x1`` two ranks with 1 thread each,
  ``DistributedDataParallel``, each rank half the batch, ``sync_gradients``; ``2x1-zero1`` the
  same with ``ZeroRedundancyOptimizer`` (reduce-scatter the gradients, update this rank's slice,
  all-gather the parameters). Each step is split into compute = forward+backward + the AdamW
  update, and communication = ``sync_gradients`` (ZeRO-1: ``reduce_gradients`` and the rest of
  ``step()`` after the update of this rank's slice: the all-gather), both those of the rank that
  finished computing last in that step (the other's extra communication time is waiting).
  Memory: each rank's peak resident memory (``ru_maxrss``) and the bytes of its optimizer state.
  ``mpirun -np 2`` binds each rank to one core (its default; ``--mpirun-args`` adds flags).

Contenders alternate within each round (who goes first rotates) and rounds repeat, so a change
in machine load hits all of them; a reported time is the median over all timed steps (or
repeats) of all rounds. Results are printed as tables with ratios and written as JSON to
``--out`` (default benchmarks/results/bench_distributed.json).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

# The sibling benchmarks (this folder is first on sys.path when the script runs): the same model,
# batches and machine facts as bench_train.py and bench_kernels.py, defined once there.
from bench_kernels import cpu_name, cpu_times, steal_fraction
from bench_train import CASES, MODEL
from bench_train import _batches as random_batches
from bench_train import _package_parent as package_parent

HERE = Path(__file__).resolve().parent
SIZES = [1024 * 4 ** i for i in range(9)]  # bytes: 1 KB, 4 KB, ..., 64 MB
QUICK_MAX_BYTES = 2 ** 20
LEARNING_RATE, WEIGHT_DECAY = 1e-3, 0.01  # examples/train_gpt.py's defaults
CONTENDERS = {  # name: (ranks, threads per rank)
    "1x2": (1, 2), "2x1": (2, 1), "2x1-zero1": (2, 1)}
TARGETS = {"time_2x1_over_1x2": 1.15, "zero1_optimizer_memory_over_ddp": 0.55}


# -- the workers: run under mpirun (or alone for 1x2); rank 0 prints one JSON line -------------

def _per_rank(values: list, dist) -> list:
    """Every rank's list of numbers ``values`` (one length on all ranks), in rank order (a
    collective)."""
    import numpy as np
    array = np.zeros((dist.get_world_size(), len(values)))
    array[dist.get_rank()] = values
    return dist.all_reduce(array).tolist()


def worker_all_reduce(spec: dict) -> None:
    import numpy as np
    from mpi4py import MPI

    from tinygrad_lite import distributed as dist

    dist.init()
    rows = []
    for nbytes in spec["sizes"]:
        message = np.zeros(nbytes // 4, dtype=np.float32)  # zeros: repeated sums never overflow
        source, target = np.ones_like(message), np.empty_like(message)
        contenders = {"all_reduce": lambda: dist.all_reduce(message),
                      "memcpy": lambda: np.copyto(target, source)}
        names = list(contenders)
        fastest = []  # size an inner loop, so that one sample of a tiny message is long enough
        for fn in contenders.values():
            fn()
            best = float("inf")
            for _ in range(3):
                dist.barrier()
                start = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - start)
            fastest.append(best)
        fastest = np.max(_per_rank(fastest, dist), axis=0)  # all ranks loop equally often
        inner = {name: max(1, min(10_000, round(spec["min_sample_s"] / max(t, 1e-9))))
                 for name, t in zip(names, fastest)}
        samples = {name: [] for name in names}
        for repeat in range(spec["repeats"]):
            order = names[repeat % 2:] + names[:repeat % 2]  # rotate who goes first
            for name in order:
                fn, count = contenders[name], inner[name]
                dist.barrier()  # start together: a collective waits for its slowest rank
                start = time.perf_counter()
                for _ in range(count):
                    fn()
                samples[name].append((time.perf_counter() - start) / count)
        slowest = {name: np.max(_per_rank(samples[name], dist), axis=0).tolist() for name in names}
        rows.append({"bytes": nbytes, "samples_s": slowest, "inner_loop": inner})
    if dist.is_main_process():
        print(json.dumps({"ranks": dist.get_world_size(), "rows": rows,
                          "mpi_library": MPI.Get_library_version().split(",")[0].strip()}))


def _optimizer_state_bytes(optimizer) -> int:
    """Bytes of the NumPy arrays in an optimizer's per-parameter state (AdamW: both moments)."""
    return sum(value.nbytes for state in optimizer.state.values() for value in state.values()
               if hasattr(value, "nbytes"))


def worker_train(spec: dict) -> None:
    import resource

    import numpy as np

    import tinygrad_lite as tg
    from tinygrad_lite import distributed as dist
    from tinygrad_lite.models.gpt import GPT, GPTConfig
    from tinygrad_lite.nn.parallel import DistributedDataParallel
    from tinygrad_lite.optim import AdamW
    from tinygrad_lite.text import rank_batch_size

    dist.init()
    rank, world_size = dist.get_rank(), dist.get_world_size()
    vocab_size, batch_size = CASES[spec["case"]]
    tg.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab_size, **spec["model"]))
    optimizer_settings = dict(lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    if spec["contender"] == "1x2":
        net = model
        optimizer = local_optimizer = AdamW(model.parameters(), **optimizer_settings)
        sync_gradients = None
    elif spec["contender"] == "2x1":
        net = DistributedDataParallel(model)
        optimizer = local_optimizer = AdamW(net.parameters(), **optimizer_settings)
        sync_gradients = net.sync_gradients
    else:
        from tinygrad_lite.optim.zero import ZeroRedundancyOptimizer
        net = DistributedDataParallel(model)
        optimizer = ZeroRedundancyOptimizer(net.parameters(), optimizer_class=AdamW,
                                            **optimizer_settings)
        local_optimizer = optimizer.optim  # the AdamW over this rank's slice
        sync_gradients = optimizer.reduce_gradients

    # The wrapped optimizer's own update, timed apart from the rest of optimizer.step() (for
    # ZeRO-1 the rest is the parameter all-gather: communication).
    update_seconds = []
    local_step = local_optimizer.step

    def timed_local_step():
        start = time.perf_counter()
        local_step()
        update_seconds.append(time.perf_counter() - start)

    local_optimizer.step = timed_local_step
    # This rank's rows of every global batch (np.array_split's shares, as rank_batch_size).
    shares = [rank_batch_size(batch_size, r, world_size) for r in range(world_size)]
    first, share = sum(shares[:rank]), shares[rank]
    parts = {"step": [], "forward_backward": [], "communication": [], "update": []}
    batches = random_batches(vocab_size, batch_size, spec["warmup"] + spec["steps"])
    for i, (x, y) in enumerate(batches):
        x, y = x[first:first + share], y[first:first + share]  # (share, T) each
        start = time.perf_counter()
        loss = net(x, y)[1]
        optimizer.zero_grad()
        loss.backward()
        backward_done = time.perf_counter()
        if sync_gradients is not None:
            sync_gradients(num_samples=share)
        optimizer.step()
        stepped = time.perf_counter()
        loss.item()
        end = time.perf_counter()
        if i >= spec["warmup"]:
            update = update_seconds[-1]
            parts["step"].append(end - start)
            parts["forward_backward"].append(backward_done - start)
            parts["communication"].append(stepped - backward_done - update)  # all but AdamW
            parts["update"].append(update)
    # Each step's parts are those of the rank that finished computing last: the others' extra
    # communication time was spent waiting for it. Its compute + communication is the step.
    by_rank = {name: np.array(_per_rank(values, dist)) for name, values in parts.items()}
    last = np.argmax(by_rank["forward_backward"] + by_rank["update"], axis=0)  # (steps,)
    steps = np.arange(len(last))
    times = {name: by_rank[name][last, steps].tolist() for name in parts}
    times["step"] = by_rank["step"].max(axis=0).tolist()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    result = {"times_s": times, "parameters": model.num_parameters(),
              "cpus_per_rank": [int(n) for (n,) in _per_rank([cpus], dist)],  # mpirun binds
              "peak_mb_per_rank": [kb / 1024 for (kb,) in _per_rank([peak_kb], dist)],
              "optimizer_state_bytes_per_rank": [
                  int(b) for (b,) in _per_rank([_optimizer_state_bytes(local_optimizer)], dist)]}
    if dist.is_main_process():
        print(json.dumps(result))


# -- the driver --------------------------------------------------------------------------------

def worker_command(spec: dict, mpirun_args: list) -> tuple[list, dict]:
    """The command line and environment of one measurement: ``spec["ranks"]`` processes under
    mpirun (or one plain process), each with its thread count set before anything imports."""
    threads = str(spec["threads"])
    env = {**os.environ, "TGL_NUM_THREADS": threads, "OMP_NUM_THREADS": threads,
           "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           "PYTHONPATH": os.pathsep.join(filter(None, [package_parent(),
                                                       os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)]
    if spec["ranks"] > 1:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        mpirun = Path(sys.executable).parent / "mpirun"
        command = [str(mpirun), "-np", str(spec["ranks"]), *mpirun_args, *command]
    return command, env


def show_command(command: list, threads: int) -> str:
    """A command line as a user types it (environment first)."""
    prefix = f"TGL_NUM_THREADS={threads} "
    if "mpirun" in Path(command[0]).name:
        prefix += "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
    return prefix + " ".join(shlex.quote(part) for part in command)


def measure(spec: dict, mpirun_args: list, commands: dict) -> dict:
    command, env = worker_command(spec, mpirun_args)
    commands.setdefault(spec.get("contender", spec["task"]), show_command(command,
                                                                          spec["threads"]))
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{show_command(command, spec['threads'])} failed "
                           f"(exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return json.loads(lines[-1])


def bench_all_reduce(args, commands: dict) -> dict:
    sizes = [s for s in SIZES if s <= args.max_bytes]
    spec = dict(task="all_reduce", ranks=2, threads=1, sizes=sizes, repeats=args.repeats,
                min_sample_s=0.005 if args.quick else 0.02)
    print(f"all-reduce: {len(sizes)} sizes, {args.repeats} repeats ...", file=sys.stderr)
    before = cpu_times()
    run = measure(spec, args.mpirun_args, commands)
    rows = []
    for row in run["rows"]:
        nbytes, samples = row["bytes"], row["samples_s"]
        reduce_s = statistics.median(samples["all_reduce"])
        copy_s = statistics.median(samples["memcpy"])
        world = run["ranks"]
        rows.append({"bytes": nbytes, "all_reduce_ms": 1e3 * reduce_s,
                     "algbw_gbps": nbytes / reduce_s / 1e9,
                     "busbw_gbps": 2 * (world - 1) / world * nbytes / reduce_s / 1e9,
                     "memcpy_ms": 1e3 * copy_s, "memcpy_gbps": nbytes / copy_s / 1e9,
                     # paired: each repeat's all-reduce against the memcpy timed beside it
                     "all_reduce_over_memcpy": statistics.median(
                         a / c for a, c in zip(samples["all_reduce"], samples["memcpy"])),
                     "inner_loop": row["inner_loop"], "samples_s": samples})
    return {"ranks": run["ranks"], "mpi_library": run["mpi_library"], "repeats": args.repeats,
            "steal_fraction": steal_fraction(before, cpu_times()), "rows": rows}


def _ms(values) -> float:
    return 1e3 * statistics.median(values)


def summarise_contender(results: list) -> dict:
    """Medians over all timed steps of all rounds of one contender in one case."""
    steps = {name: [t for r in results for t in r["times_s"][name]]
             for name in results[0]["times_s"]}
    compute = [fb + up for fb, up in zip(steps["forward_backward"], steps["update"])]
    return {"ms_per_step": _ms(steps["step"]),
            "ms_per_step_per_round": [_ms(r["times_s"]["step"]) for r in results],
            "compute_ms": _ms(compute),
            "communication_ms": _ms(steps["communication"]),
            "forward_backward_ms": _ms(steps["forward_backward"]),
            "update_ms": _ms(steps["update"]), "timed_steps": len(steps["step"]),
            "peak_mb_per_rank": [max(r["peak_mb_per_rank"][i] for r in results)
                                 for i in range(len(results[0]["peak_mb_per_rank"]))],
            "optimizer_state_mb_per_rank": [b / 2 ** 20 for b in
                                            results[0]["optimizer_state_bytes_per_rank"]],
            "parameters": results[0]["parameters"], "cpus_per_rank": results[0]["cpus_per_rank"]}


def bench_training(args, contenders: list, commands: dict) -> dict:
    model = {**MODEL, "num_blocks": args.num_blocks}
    runs = {}  # (case, contender) -> one result per round
    before = cpu_times()
    for round_ in range(args.rounds):
        for case in args.cases:
            shift = round_ % len(contenders)  # rotate who goes first
            for contender in contenders[shift:] + contenders[:shift]:
                ranks, threads = CONTENDERS[contender]
                spec = dict(task="train", contender=contender, case=case, ranks=ranks,
                            threads=threads, model=model, steps=args.steps, warmup=args.warmup)
                result = measure(spec, args.mpirun_args, commands)
                runs.setdefault((case, contender), []).append(result)
                print(f"round {round_ + 1}/{args.rounds}  {case:12s} {contender:10s} "
                      f"{_ms(result['times_s']['step']):8.1f} ms/step", file=sys.stderr)
    rows = []
    for case in args.cases:
        vocab_size, batch_size = CASES[case]
        row = {"case": case, "vocab_size": vocab_size, "global_batch_size": batch_size,
               "contenders": {c: summarise_contender(runs[(case, c)]) for c in contenders}}
        by = row["contenders"]
        base = by["1x2"]["ms_per_step"]
        for name in contenders[1:]:
            by[name]["time_over_1x2"] = by[name]["ms_per_step"] / base
            by[name]["time_over_1x2_per_round"] = [  # paired: measured in the same round
                a / b for a, b in zip(by[name]["ms_per_step_per_round"],
                                      by["1x2"]["ms_per_step_per_round"])]
            by[name]["communication_share"] = (by[name]["communication_ms"] /
                                               by[name]["ms_per_step"])
        if "2x1-zero1" in by:
            zero, ddp = by["2x1-zero1"], by["2x1"]
            row["zero1_over_ddp"] = {
                "optimizer_memory": (max(zero["optimizer_state_mb_per_rank"]) /
                                     max(ddp["optimizer_state_mb_per_rank"])),
                "peak_memory": max(zero["peak_mb_per_rank"]) / max(ddp["peak_mb_per_rank"]),
                "time": zero["ms_per_step"] / ddp["ms_per_step"]}
        rows.append(row)
    return {"model": model, "rounds": args.rounds, "steps_per_process": args.steps,
            "warmup": args.warmup, "steal_fraction": steal_fraction(before, cpu_times()),
            "rows": rows}


def print_all_reduce(section: dict) -> None:
    print(f"\nall_reduce, float32, {section['ranks']} ranks ({section['mpi_library']}), against "
          f"np.copyto of the same bytes on every rank; medians of {section['repeats']} repeats")
    print(f"{'bytes':>10s} {'allreduce ms':>13s} {'algbw GB/s':>11s} {'busbw GB/s':>11s} "
          f"{'memcpy ms':>10s} {'memcpy GB/s':>12s} {'time x':>7s}")
    for row in section["rows"]:
        print(f"{row['bytes']:>10,d} {row['all_reduce_ms']:13.4f} {row['algbw_gbps']:11.2f} "
              f"{row['busbw_gbps']:11.2f} {row['memcpy_ms']:10.4f} {row['memcpy_gbps']:12.2f} "
              f"{row['all_reduce_over_memcpy']:7.1f}")
    print("time x: all-reduce time / memcpy time (paired per repeat).")


def print_training(section: dict) -> None:
    model = ", ".join(f"{name} {value}" for name, value in section["model"].items())
    print(f"\nGPT training step ({model}; AdamW), the global batch B split over the ranks; "
          f"medians of {section['rounds']} round(s) x {section['steps_per_process']} steps")
    print(f"{'case':11s} {'V':>7s} {'B':>2s} {'contender':10s} {'ms/step':>8s} {'compute':>8s} "
          f"{'comm':>7s} {'x 1x2':>6s} {'peak MB/rank':>13s} {'optim MB/rank':>14s}")
    for row in section["rows"]:
        for name, c in row["contenders"].items():
            alone = "time_over_1x2" not in c  # the 1-process contender: no ranks to talk to
            ratio = f"{'-':>6s}" if alone else f"{c['time_over_1x2']:6.2f}"
            comm = f"{'-':>7s}" if alone else f"{c['communication_ms']:7.2f}"
            peaks = "/".join(f"{mb:.0f}" for mb in c["peak_mb_per_rank"])
            states = "/".join(f"{mb:.1f}" for mb in c["optimizer_state_mb_per_rank"])
            print(f"{row['case']:11s} {row['vocab_size']:7d} {row['global_batch_size']:2d} "
                  f"{name:10s} {c['ms_per_step']:8.1f} {c['compute_ms']:8.1f} {comm} {ratio} "
                  f"{peaks:>13s} {states:>14s}")
        if "zero1_over_ddp" in row:
            z = row["zero1_over_ddp"]
            print(f"{'':11s} ZeRO-1 / plain DP per rank: optimizer state "
                  f"{z['optimizer_memory']:.2f}, peak memory {z['peak_memory']:.2f}, step time "
                  f"{z['time']:.2f}")
    print("compute = forward+backward + AdamW update; comm = sync_gradients (ZeRO-1: "
          "reduce_gradients + all-gather) of the rank that computed longest; x 1x2 = ms/step / "
          "1x2's; MB/rank: rank 0/rank 1.")


def check_targets(training: dict) -> dict:
    summary = {}
    for row in training["rows"]:
        by = row["contenders"]
        if "2x1" in by:
            ratio = by["2x1"]["time_over_1x2"]
            summary[f"{row['case']}_time_2x1_over_1x2"] = {
                "value": ratio, "per_round": by["2x1"]["time_over_1x2_per_round"],
                "target": TARGETS["time_2x1_over_1x2"],
                "met": ratio <= TARGETS["time_2x1_over_1x2"]}
        if "zero1_over_ddp" in row:
            ratio = row["zero1_over_ddp"]["optimizer_memory"]
            summary[f"{row['case']}_zero1_optimizer_memory_over_ddp"] = {
                "value": ratio, "target": TARGETS["zero1_optimizer_memory_over_ddp"],
                "met": ratio <= TARGETS["zero1_optimizer_memory_over_ddp"]}
    print("\nTargets (issue 11):")
    for name, s in summary.items():
        rounds = (" (rounds: " + ", ".join(f"{r:.2f}" for r in s["per_round"]) + ")"
                  if "per_round" in s else "")
        print(f"  {name}: {s['value']:.2f}{rounds}, target <= {s['target']}: "
              f"{'met' if s['met'] else 'NOT met'}")
    return summary


def machine_facts() -> dict:
    try:
        cpus_available = len(os.sched_getaffinity(0))
    except AttributeError:  # no affinity on this platform
        cpus_available = os.cpu_count()
    return {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "cpus_available": cpus_available,
            "python": platform.python_version(), "load_average_at_start": os.getloadavg(),
            "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sections", nargs="+", choices=["all_reduce", "training"],
                   default=["all_reduce", "training"])
    p.add_argument("--cases", nargs="+", choices=list(CASES), default=["full", "compact"],
                   help="GPT cases of bench_train.py (vocabulary, global batch)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved repetitions (training)")
    p.add_argument("--steps", type=int, default=8, help="timed steps per process")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per process")
    p.add_argument("--repeats", type=int, default=9, help="timed repeats per message size")
    p.add_argument("--max-bytes", type=int, default=SIZES[-1], help="largest all-reduce message")
    p.add_argument("--num-blocks", type=int, default=MODEL["num_blocks"],
                   help="Transformer blocks (fewer: a faster smoke run)")
    p.add_argument("--no-zero", action="store_true", help="skip the ZeRO-1 contender")
    p.add_argument("--mpirun-args", type=shlex.split, default=[],
                   help="extra mpirun flags, e.g. '--bind-to none'")
    p.add_argument("--quick", action="store_true", help="1 round of 3 steps, 3 repeats, "
                   f"messages up to {QUICK_MAX_BYTES // 2 ** 20} MB")
    p.add_argument("--out", type=Path, default=HERE / "results" / "bench_distributed.json")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.steps, args.warmup, args.repeats = 1, min(args.steps, 3), 1, 3
        args.max_bytes = min(args.max_bytes, QUICK_MAX_BYTES)
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        (worker_all_reduce if spec["task"] == "all_reduce" else worker_train)(spec)
        return
    contenders = ["1x2", "2x1"] + ([] if args.no_zero else ["2x1-zero1"])
    machine = machine_facts()
    print(f"machine: {machine['cpu']}, {machine['cpu_count']} cores ({machine['cpus_available']} "
          f"available), load average {machine['load_average_at_start'][0]:.2f}; contenders "
          + ", ".join(f"{c} = {r} process(es) x {t} thread(s)"
                      for c, (r, t) in CONTENDERS.items() if c in contenders))
    commands = {}
    report = {"benchmark": "bench_distributed", "machine": machine, "quick": args.quick,
              "targets": TARGETS, "commands": commands}
    if "all_reduce" in args.sections:
        report["all_reduce"] = bench_all_reduce(args, commands)
    if "training" in args.sections:
        report["training"] = bench_training(args, contenders, commands)
    print("\ncommands (one measurement each):")
    for name, command in commands.items():
        print(f"  {name}: {command}")
    if "all_reduce" in report:
        print_all_reduce(report["all_reduce"])
    if "training" in report:
        print_training(report["training"])
        report["summary"] = check_targets(report["training"])
    report["machine"]["load_average_at_end"] = os.getloadavg()
    busy = max(report["machine"]["load_average_at_start"][0],
               report["machine"]["load_average_at_end"][0])
    steals = [report[s]["steal_fraction"] or 0 for s in ("all_reduce", "training") if s in report]
    if busy > 0.5 or max(steals) > 0.05:
        print(f"note: 1-minute load average up to {busy:.1f}, hypervisor steal up to "
              f"{100 * max(steals):.0f}%: other processes shared the cores, so the numbers are "
              f"noisy (2-thread and 2-rank runs suffer most); rerun on an idle machine.")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, args.out)  # atomic: a reader never sees half a file
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
