"""The evaluation harness's own cost per request, with the chance adapter (no model time).

Builds a synthetic dataset large enough for ``--requests`` requests, then runs `triad eval`
(all five tasks, zero_shot and process) several times into fresh run folders and once more
with ``--resume`` (every response from the cache). Prints the median cost per request and
requests/s, and where the time goes (data loading, prompt building, caching, parsing,
metrics and writing). Target: median at most 2 ms per request.

    python benchmarks/bench_harness.py [--requests 5000] [--repeats 5] [--work DIR]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from instructiad.export import build_dataset
from instructiad.sources import synthetic
from triad_eval.runner import EvalSettings, run_eval

STAGES = {
    "load dataset": "open_dataset",
    "build prompts": "build_requests",
    "cache keys": "cache_key",
    "cache reads and writes": ("get_many", "put_many"),
    "parse answers": "parse_answer",
    "metrics": "compute_metrics",
    "write files": "finish",
}


def settings(data: Path, out: Path, resume: bool = False) -> EvalSettings:
    return EvalSettings(
        model="chance", data=str(data), config="synthetic", out=out, resume=resume, batch_size=64,
        tasks=["discrimination", "defect_type", "location", "appearance", "root_cause"],
        conditions=["zero_shot", "process"],
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000, help="at least this many requests (default: 5000)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-harness-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        per_defect = max(2, args.requests // (3 * 3 * 2 * 4))  # ~4 questions per anomalous image, 2 conditions
        source = synthetic.generate(
            work / "source", n_train=4, n_test_good=per_defect, n_per_defect=per_defect, size=48
        )
        build_dataset([("synthetic", source)], work / "data")

        timings, count = [], 0
        for repeat in range(args.repeats):
            start = time.perf_counter()
            result = run_eval(settings(work / "data", work / f"run{repeat}"))
            timings.append(time.perf_counter() - start)
            count = result.metrics["counts"]["requests"]
        start = time.perf_counter()
        run_eval(settings(work / "data", work / "run0", resume=True))
        resumed = time.perf_counter() - start

        profile = cProfile.Profile()
        profile.runcall(run_eval, settings(work / "data", work / "profiled"))
        stats = pstats.Stats(profile).stats
        median = statistics.median(timings)
        print(f"requests          {count} per run (chance adapter; 5 tasks x zero_shot, process)")
        print(f"per request       median {1000 * median / count:.3f} ms over {args.repeats} runs (target <= 2 ms)")
        print(f"throughput        {count / median:,.0f} requests/s")
        print(f"resumed run       {1000 * resumed / count:.3f} ms per request, every response from the cache")
        print("where the time goes (one profiled run, cumulative):")
        total = sum(v[3] for k, v in stats.items() if k[2] == "run_eval")
        for stage, names in STAGES.items():
            names = (names,) if isinstance(names, str) else names
            seconds = sum(v[3] for k, v in stats.items() if k[2] in names)
            print(f"  {stage:<24}{1000 * seconds / count:7.3f} ms/request  {100 * seconds / total:5.1f}%")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
