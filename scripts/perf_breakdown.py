#!/usr/bin/python3
"""Where a training step's time goes, from a `perf record --call-graph dwarf` profile of
`normlab_bench train` (scripts/profile_train.sh makes one), as fractions of all samples of
the timed steps, per category:

  conv fwd            3x3 direct or Winograd kernel called from the forward (conv2d_3x3), its output copy
  conv bwd data       the same kernel called from conv2d's backward (input gradient)
  conv bwd weights    the 3x3 weight-gradient kernel and its channels-last copy of dy, or the
                      Winograd weight gradient (its transforms and sgemms)
  conv pad/bias       zero-bordered copies of x and dy (pad_planes), bias sums, weight packing
  im2col conv         the im2col + sgemm path (ResNet-20's stride-2 convs): im2col/col2im and
                      its sgemm calls (fwd and bwd together)
  linear (sgemm)      matmul / linear layers
  norm                the norm layers' kernels (forward and backward)
  relu / pool / add   activation, max/avg pooling, residual adds and the shortcut's concat
  optimizer           SGD/Adam step and zero_grad
  allocation          malloc/free, zero-filling fresh tensors, page faults on fresh memory
  OpenMP              libgomp: fork/join, barriers, an idle thread's waiting
  other               autograd bookkeeping, loss, everything else
  callers lost        main-thread samples in the timed steps whose stack perf's dwarf unwinder
                      could not follow past the leaf (mostly inside OpenBLAS's assembly kernels:
                      the weight gradient's and im2col's sgemms); their leaves are listed

  /usr/bin/python3 scripts/perf_breakdown.py perf.data [more.data ...]
  /usr/bin/python3 scripts/perf_breakdown.py --top 5 perf.data   # and each category's top leaf symbols
  /usr/bin/python3 scripts/perf_breakdown.py --idle 20 perf.data # 2 threads: what the main thread
      # did while the worker waited (each idle worker sample matched with the main thread's
      # sample nearest in time), the 20 most frequent, as % of the worker's samples

Samples are counted from the first to the last main-thread sample with a frame of the timed step
loop (nl::bench::median_step_seconds), the loop running without a break in between, so a
sample whose callers were lost still counts (as "callers lost"; it used to be dropped as
set-up, which hid most of OpenBLAS's time); all of an OpenMP worker's samples. With 2
threads the fractions are of both threads' time, and OpenMP includes the worker's idle time
while the main thread runs serial code (with the default wait policy it spins there). An OpenMP
worker's stack does not show whether the 3x3 kernel it runs belongs to the forward or the
input gradient: its share is split between the two in the main thread's proportion.
"""
import bisect
import collections
import subprocess
import sys

CATS = ["conv fwd", "conv bwd data", "conv bwd weights", "conv pad/bias", "im2col conv", "linear (sgemm)", "norm",
        "relu / pool / add", "optimizer", "allocation", "OpenMP", "other", "callers lost"]

NORM_WORDS = ("batch_norm", "BatchNorm", "group_norm", "GroupNorm", "layer_norm", "LayerNorm", "instance_norm",
              "InstanceNorm", "grad_sums", "grad_input", "scale_shift", "moments", "norm_act", "NormAct",
              "bn_detail", "gn_", "ln_")
ALLOC_WORDS = ("malloc", "free", "_int_", "unlink_chunk", "Tensor::empty", "Tensor::zeros", "Storage", "mmap",
               "munmap", "brk", "page_fault", "clear_page", "alloc_pages", "memcg", "do_anonymous_page",
               "folio", "get_page_from_freelist")
CONV_BWD = "conv2d_3x3(nl::Tensor const&, nl::Tensor const&, nl::Tensor const&, nl::(anonymous namespace)::ConvGeometry const&)::{lambda"


def classify(frames):
    """frames: [(symbol, dso)], leaf first."""
    leaf, dso = frames[0]
    syms = [s for s, _ in frames]
    joined = "\n".join(syms)
    if "libgomp" in dso:
        return "OpenMP"
    if "weight_grad_channel" in joined or "to_channels_last" in joined or "winograd_weight_grad" in joined:
        return "conv bwd weights"
    if any(w in leaf for w in ALLOC_WORDS) or (dso.endswith("[kernel.kallsyms]") and "page_fault" in joined):
        return "allocation"
    if "memset" in leaf and ("Tensor::zeros" in joined or "Tensor::empty" in joined or "vector" in joined):
        return "allocation"
    if "im2col" in joined or "col2im" in joined or ("sgemm" in joined and "conv2d" in joined):
        return "im2col conv"
    if any(w in joined for w in ("forward_block", "direct_3x3", "winograd", "tile_products", "_tile_row")):
        return "conv bwd data" if CONV_BWD in joined else "conv fwd"
    if "pad_planes" in joined or "pack_" in joined or "conv2d" in joined:
        return "conv pad/bias"
    if "sgemm" in joined or "matmul" in joined or "Linear" in joined:
        return "linear (sgemm)"
    if any(w in joined for w in NORM_WORDS):
        return "norm"
    if any(w in joined for w in ("relu", "max_pool", "avg_pool", "MaxPool", "concat", "add", "slice")):
        return "relu / pool / add"
    if "SGD" in joined or "Adam" in joined or "zero_grad" in joined:
        return "optimizer"
    if dso.endswith("[kernel.kallsyms]") and any(w in joined for w in ALLOC_WORDS):
        return "allocation"
    return "other"


def samples(path):
    out = subprocess.run(["perf", "script", "-i", path, "-F", "comm,pid,tid,time,period,ip,sym,dso"],
                         capture_output=True, text=True, check=True).stdout
    for block in out.split("\n\n"):
        lines = [l for l in block.split("\n") if l.strip()]
        if not lines:
            continue
        head = lines[0].split()
        try:
            pid, tid = (int(x) for x in head[1].split("/")) if "/" in head[1] else (int(head[1]), int(head[1]))
            when = float(next(w for w in head[2:] if w.endswith(":"))[:-1])
        except (ValueError, StopIteration):
            continue
        frames = []
        for l in lines[1:]:
            f = l.strip().split(" ", 1)
            if len(f) < 2:
                continue
            rest = f[1]
            dso = rest[rest.rfind("(") + 1:-1] if rest.endswith(")") else ""
            sym = rest[:rest.rfind(" (")] if " (" in rest else rest
            frames.append((sym, dso))
        if frames:
            yield pid, tid, when, frames


def in_timed_steps(frames):
    """A main-thread sample inside the timed step loop (not set-up or warm-up)."""
    return any("median_step_seconds" in s for s, _ in frames)


def idle_report(path, top):
    """While the OpenMP worker waits, what is the main thread doing?"""
    main_samples, worker_samples = [], []
    for pid, tid, when, frames in samples(path):
        if pid == tid:
            if in_timed_steps(frames):
                main_samples.append((when, frames))
        else:
            worker_samples.append((when, frames))
    times = [t for t, _ in main_samples]
    if not times:
        sys.exit(f"{path}: no main-thread samples in the timed steps")
    meanwhile, counted, idle = collections.Counter(), 0, 0
    for when, frames in worker_samples:
        if not times[0] <= when <= times[-1]:
            continue
        counted += 1
        if classify(frames) != "OpenMP":
            continue
        idle += 1
        i = bisect.bisect_left(times, when)
        j = min((k for k in (i - 1, i) if 0 <= k < len(times)), key=lambda k: abs(times[k] - when))
        main_frames = main_samples[j][1]
        callers = " < ".join(s[:40] for s, _ in main_frames[:4])
        meanwhile[(classify(main_frames), callers)] += 1
    print(f"# {path}: the worker was idle in {idle} of its {counted} samples ({100.0 * idle / max(counted, 1):.1f}%); "
          "meanwhile the main thread was in:")
    for (cat, callers), n in meanwhile.most_common(top):
        print(f"{100.0 * n / max(counted, 1):5.1f}%  {cat:18s} {callers}")


def main():
    args, top = sys.argv[1:], 0
    if args[:1] == ["--idle"]:
        for path in args[2:]:
            idle_report(path, int(args[1]))
        return
    if args[:1] == ["--top"]:
        top, args = int(args[1]), args[2:]
    for path in args:
        counts, total, skipped, lost = collections.Counter(), 0, 0, 0
        leaves = collections.defaultdict(collections.Counter)
        every = list(samples(path))
        timed = [when for pid, tid, when, frames in every if pid == tid and in_timed_steps(frames)]
        first, last = (min(timed), max(timed)) if timed else (0.0, -1.0)
        for pid, tid, when, frames in every:
            main_thread = pid == tid
            if main_thread and not first <= when <= last:
                skipped += 1
                continue
            if main_thread and not in_timed_steps(frames) and "libgomp" not in frames[0][1]:
                cat = "callers lost"  # in the timed loop's time span, its stack cut off by the unwinder
                lost += 1
            else:
                cat = classify(frames)
            if not main_thread and cat in ("conv fwd", "conv bwd data"):
                cat = "conv fwd or bwd data (worker)"
            counts[cat] += 1
            leaves[cat][frames[0][0][:90]] += 1
            total += 1
        worker = counts.pop("conv fwd or bwd data (worker)", 0)
        main_fwd, main_bwd = counts["conv fwd"], counts["conv bwd data"]
        if worker and main_fwd + main_bwd:
            share = worker * main_fwd / (main_fwd + main_bwd)
            counts["conv fwd"] += share
            counts["conv bwd data"] += worker - share
        print(f"# {path}: {total} samples in the timed steps ({skipped} main-thread samples before or after them "
              f"left out; {lost} with their callers lost)")
        if not timed or lost > total / 2:
            print(f"# warning: most samples have no caller frames (perf's dwarf unwinder lost them;\n"
                  f"# it does in some runs on some VMs): this breakdown is not representative, profile again")
        for c in CATS:
            print(f"{c:20s} {100.0 * counts[c] / max(total, 1):5.1f}%")
            for sym, n in leaves[c].most_common(top):
                print(f"    {100.0 * n / total:5.1f}%  {sym}")


if __name__ == "__main__":
    main()
