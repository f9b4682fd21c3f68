"""Does the harness scale to MMAD's size and beyond? Per-request cost and memory at 2k, 40k
and 200k requests, then resume, merge and leaderboard at that size.

A synthetic source is drawn at 32 px (the harness's cost does not depend on pixels) with
enough images for 200k requests (five tasks under zero_shot and no_image), built once. Each
measurement runs in its own process, so its peak memory is its own: max RSS, which counts the
pages of the memory-mapped dataset read so far (file-backed, bounded by the dataset's size,
given back under memory pressure), and the peak of anonymous memory (sampled every 10 ms),
which is what grows with the number of requests if anything does:

- `triad eval` with `chance` and with `replay:` (the chance run's predictions read back) on the
  first 2k, 40k and 200k requests (``--limit`` records): ms per request and peak memory,
  each as a ratio to the 2k figure (target: within 1.2x, memory flat);
- ``--resume`` of the finished 200k chance run (every response already cached);
- `triad merge` of the 200k run split into 8 shards;
- `triad leaderboard` over 20 runs of 40k requests.

    python benchmarks/bench_scale.py [--work DIR] [--sizes 2000,40000,200000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASKS = "discrimination,defect_type,location,appearance,root_cause"
CONDITIONS = "zero_shot,no_image"
QUESTIONS_PER_IMAGE = 2 * (9 * 4.5 + 1) / 10
"""Two conditions; per 10 test images 9 anomalous (about 4.5 questions each) and 1 good (one)."""

CHILD = """
import json, resource, sys, threading, time
from triad_eval.cli import main

def anonymous_mib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    return 0.0

peak_anonymous, running = [0.0], [True]
def sample():  # the kernel keeps no peak of anonymous memory: sample it
    while running[0]:
        peak_anonymous[0] = max(peak_anonymous[0], anonymous_mib())
        time.sleep(0.01)

sampler = threading.Thread(target=sample, daemon=True)
sampler.start()
start = time.perf_counter()
code = main(sys.argv[1:])
seconds = time.perf_counter() - start
running[0] = False
sampler.join()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"code": code, "seconds": seconds, "peak_mib": peak, "anonymous_mib": peak_anonymous[0]}))
"""


def triad(*args: str) -> dict:
    """Run one `triad` command in a fresh process; its exit code, seconds and peak memory."""
    done = subprocess.run([sys.executable, "-c", CHILD, *map(str, args)], capture_output=True, text=True)
    lines = done.stdout.strip().splitlines()
    if done.returncode or not lines:
        raise SystemExit(f"triad {' '.join(map(str, args))} failed:\n{done.stderr[-2000:]}")
    result = json.loads(lines[-1])
    if result["code"] != 0:
        raise SystemExit(f"triad {' '.join(map(str, args))} exited {result['code']}:\n{done.stderr[-2000:]}")
    return result


def requests_of(run: Path) -> int:
    return json.loads((run / "metrics.json").read_text())["counts"]["requests"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path)
    parser.add_argument("--sizes", default="2000,40000,200000", help="requests per measured run")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        from instructiad.export import build_dataset
        from instructiad.sources import synthetic

        data = work / "data"
        if not data.is_dir():
            per_defect = int(max(sizes) / QUESTIONS_PER_IMAGE / 10) + 2  # 9 defects and 3 x per_defect/3 good
            start = time.perf_counter()
            source = synthetic.generate(
                work / "source", n_train=2, n_test_good=per_defect // 3, n_per_defect=per_defect, size=32
            )
            build_dataset([("synthetic", source)], data, num_proc=2)
            print(f"dataset           built in {time.perf_counter() - start:.0f} s")
        common = ["--data", data, "--config", "synthetic", "--tasks", TASKS, "--conditions", CONDITIONS]
        # the first load converts the Parquet shards into `datasets`' Arrow cache: not measured
        shutil.rmtree(work / "warm-up", ignore_errors=True)
        triad("eval", "--model", "chance", *common, "--limit", 1, "--out", work / "warm-up")

        rows = {}
        for size in sizes:
            limit = max(1, round(size / QUESTIONS_PER_IMAGE))
            chance = work / f"chance-{size}"
            shutil.rmtree(chance, ignore_errors=True)
            measured = triad("eval", "--model", "chance", *common, "--limit", limit, "--out", chance)
            count = requests_of(chance)
            replay = work / f"replay-{size}"
            shutil.rmtree(replay, ignore_errors=True)
            replayed = triad(
                "eval", "--model", f"replay:{chance / 'predictions.jsonl'}", *common, "--limit", limit, "--out", replay
            )
            rows[size] = (count, measured, replayed)
        base_count, base_chance, base_replay = rows[sizes[0]]
        print("peak memory: RSS (with the memory-mapped dataset's pages read so far) / anonymous (sampled)")
        heading = ("requests", "chance ms/req", "ratio", "MiB", "ratio", "replay ms/req", "ratio", "MiB", "ratio")
        print(" ".join(f"{h:>{w}}" for h, w in zip(heading, (10, 14, 6, 10, 11, 14, 6, 10, 11), strict=True)))
        for size in sizes:
            count, chance, replay = rows[size]
            cells = [f"{count:>10,}"]
            for run, base in ((chance, base_chance), (replay, base_replay)):
                ms, base_ms = 1000 * run["seconds"] / count, 1000 * base["seconds"] / base_count
                cells += [f"{ms:>14.3f}", f"{ms / base_ms:>6.2f}"]
                cells.append(f"{run['peak_mib']:>4.0f} / {run['anonymous_mib']:>3.0f}")
                ratios = run["peak_mib"] / base["peak_mib"], run["anonymous_mib"] / base["anonymous_mib"]
                cells.append(f"{ratios[0]:>4.2f} / {ratios[1]:>4.2f}")
            print(" ".join(cells))
        largest = sizes[-1]
        count = rows[largest][0]
        limit = max(1, round(largest / QUESTIONS_PER_IMAGE))
        resumed = triad("eval", "--model", "chance", *common, "--limit", limit, "--out", work / f"chance-{largest}",
                        "--resume")  # fmt: skip
        print(f"resume            {count:,} requests all cached: {resumed['seconds']:.1f} s "
              f"({1000 * resumed['seconds'] / count:.3f} ms/req), {resumed['peak_mib']:.0f} MiB")  # fmt: skip

        shards = []
        for i in range(8):
            out = work / f"shard-{i}"
            shutil.rmtree(out, ignore_errors=True)
            triad("eval", "--model", "chance", *common, "--limit", limit, "--shard", f"{i}/8", "--out", out)
            shards.append(out)
        merged = work / "merged"
        shutil.rmtree(merged, ignore_errors=True)
        merge = triad("merge", *shards, "--out", merged)
        print(
            f"merge             8 shards of {count:,} requests: {merge['seconds']:.1f} s, {merge['peak_mib']:.0f} MiB"
        )

        middle = sizes[min(1, len(sizes) - 1)]
        limit = max(1, round(middle / QUESTIONS_PER_IMAGE))
        runs = []
        for seed in range(20):
            out = work / f"board-run-{seed}"
            if not (out / "metrics.json").is_file():
                shutil.rmtree(out, ignore_errors=True)
                triad("eval", "--model", "chance", *common, "--limit", limit, "--seed", seed, "--out", out)
            runs.append(out)
        board = triad("leaderboard", *runs, "--out", work / "board")
        print(f"leaderboard       20 runs of {requests_of(runs[0]):,} requests: {board['seconds']:.1f} s, "
              f"{board['peak_mib']:.0f} MiB")  # fmt: skip
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
