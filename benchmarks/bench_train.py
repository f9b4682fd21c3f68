"""`triad train` on the CPU: tokens per second and peak memory for the tiny LLaVA-OneVision.

Each configuration trains in its own process (so each peak RSS is its own) on the synthetic
dataset (the demo's size: six test images per defect, 256 px), held-out category glazed_tile:
LoRA and full fine-tuning, on the answer letters and on the CoT-M conversations. Throughput
counts every sequence token the model reads (prompt and answer, padding left out) over the
training loop alone (model load and example building before it are reported apart).

    python benchmarks/bench_train.py [--steps 30] [--batch-size 4] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' tiny-model builder

CONFIGS = {
    "LoRA, answer": {"target": "answer", "lora": "r=16,alpha=32"},
    "LoRA, cot": {"target": "cot", "lora": "r=16,alpha=32"},
    "full, answer": {"target": "answer", "full": True},
    "full, cot": {"target": "cot", "full": True},
}
"""Name -> the TrainSettings that differ."""


def one(work: Path, name: str, steps: int, batch: int, threads: int) -> dict:
    """Train one configuration in this process; what it measured."""
    import torch
    from transformers import TrainerCallback

    import triad_train.trainer as trainer_module
    from triad_train.options import TrainSettings

    torch.set_num_threads(threads)
    clock: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            clock["begin"] = time.perf_counter()
            clock["rss_before"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        def on_train_end(self, args, state, control, **kwargs):
            clock["end"] = time.perf_counter()
            clock["tokens"] = int(max((e.get("num_tokens", 0) for e in state.log_history), default=0))

    original = trainer_module._trainer

    def with_clock(*args):
        trainer = original(*args)
        trainer.add_callback(Clock())
        return trainer

    trainer_module._trainer = with_clock
    settings = TrainSettings(
        model=f"hf:{work / 'llava'}", data=str(work / "dataset"), config="synthetic",
        out=work / f"out-{name.replace(', ', '-')}", train_from="test", holdout=["glazed_tile"], max_steps=steps,
        batch_size=batch, log_steps=steps, save_steps=10 * steps, device="cpu", precision="fp32", **CONFIGS[name],
    )  # fmt: skip
    began = time.perf_counter()
    result = trainer_module.train(settings)
    total = time.perf_counter() - began
    loop = clock["end"] - clock["begin"]
    return {
        "examples": sum(result.args["examples"].values()),
        "steps": result.args["optimization"]["steps"],
        "tokens": clock["tokens"],
        "loop_s": loop,
        "setup_s": total - loop,
        "tokens_per_s": clock["tokens"] / loop,
        "rss_before_loop_mib": clock["rss_before"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loss": [result.args["log"][0]["loss"], result.args["log"][-1]["loss"]],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.work, args.one, args.steps, args.batch_size, args.threads)))
        return 0

    from instructiad.export import build_dataset
    from instructiad.sources import synthetic
    from tests import tiny_models

    with tempfile.TemporaryDirectory(prefix="bench-train-") as folder:
        work = Path(folder)
        source = synthetic.generate(work / "source", size=256, n_test_good=6, n_per_defect=6)
        build_dataset([("synthetic", source)], work / "dataset")
        tiny_models.llava_onevision(work / "llava")
        print(f"tiny LLaVA-OneVision, {args.steps} steps of batch {args.batch_size}, {args.threads} torch thread(s)")
        print(f"{'configuration':<14} {'examples':>8} {'tokens':>8} {'loop s':>7} {'tokens/s':>9} "
              f"{'setup s':>8} {'RSS MiB before loop / peak':>27}  loss first -> last")  # fmt: skip
        for name in CONFIGS:
            command = [sys.executable, __file__, "--one", name, "--work", str(work), "--steps", str(args.steps),
                       "--batch-size", str(args.batch_size), "--threads", str(args.threads)]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode:
                print(f"{name}: failed\n{done.stderr[-2000:]}")
                return 1
            row = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{name:<14} {row['examples']:>8} {row['tokens']:>8} {row['loop_s']:>7.1f} "
                  f"{row['tokens_per_s']:>9.0f} {row['setup_s']:>8.1f} "
                  f"{row['rss_before_loop_mib']:>20.0f} / {row['peak_rss_mib']:>4.0f}  "
                  f"{row['loss'][0]:.3f} -> {row['loss'][1]:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
