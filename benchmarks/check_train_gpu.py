"""GPU check of `triad train` on LLaVA-OneVision-0.5B, for sessions and users with a GPU and the weights.

It runs only where CUDA is available and the model is on local disk (a folder, or the Hub id
in the Hugging Face cache; nothing is downloaded). On the synthetic demo dataset (or
``--data``) it:

1. fine-tunes the model with LoRA (merged) for ``--steps`` steps on the test split of every
   category but ``--holdout`` (the CoT-M conversations and the questions' letters, under
   zero_shot and process), bf16, and reports tokens/s, peak GPU memory and the loss;
2. evaluates the base and the trained model zero-shot and process-conditioned on every
   question type, and prints the accuracy on the held-out category (never trained on) and on
   the trained ones (trained on: recall, not inspection);
3. writes the leaderboard, where the trained model is marked (it is scored on records it saw).

    python benchmarks/check_train_gpu.py [--model llava-hf/llava-onevision-qwen2-0.5b-ov-hf] [--steps 300]

Exit code 0 when every check passes, 1 when one fails, 0 with "skipped" without a GPU or the weights.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

MODEL = "llava-hf/llava-onevision-qwen2-0.5b-ov-hf"
TASKS = ["discrimination", "defect_type", "location", "appearance", "root_cause"]


def local_weights(model: str) -> Path | None:
    """The model's folder: as given, or its snapshot in the Hugging Face cache; ``None`` if absent."""
    folder = Path(model).expanduser()
    if (folder / "config.json").is_file():
        return folder
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except Exception:  # not cached (or not a Hub id): nothing to run on
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL, help=f"a folder or a cached Hub id (default: {MODEL})")
    parser.add_argument("--work", type=Path, default=Path("/tmp/triad-train-gpu"))
    parser.add_argument("--data", type=Path, help="a built dataset folder (default: build the synthetic demo)")
    parser.add_argument("--config", default="synthetic")
    parser.add_argument("--holdout", default="glazed_tile", help="category kept out of training (scored)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--eval-batch-size", type=int, default=16)
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu for a smoke run on a tiny model")
    args = parser.parse_args()

    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("skipped: no CUDA device")
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download
    folder = local_weights(args.model)
    if folder is None:
        print(f"skipped: {args.model} is neither a model folder nor in the Hugging Face cache (nothing is downloaded)")
        return 0

    from transformers import TrainerCallback

    import triad_train.trainer as trainer_module
    from instructiad.export import build_dataset
    from instructiad.sources import synthetic
    from triad_eval.leaderboard import write_leaderboard
    from triad_eval.runner import EvalSettings, run_eval
    from triad_train.options import TrainSettings

    args.work.mkdir(parents=True, exist_ok=True)
    data = args.data
    if data is None:
        data = args.work / "dataset"
        if not (data / "manifest.json").is_file():
            source = synthetic.generate(args.work / "source", size=256, n_test_good=6, n_per_defect=6)
            build_dataset([("synthetic", source)], data)
    failures = []

    clock: dict[str, float] = {}
    cuda = args.device == "cuda"

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            clock["begin"] = time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            clock["loop"] = time.perf_counter() - clock["begin"]
            clock["tokens"] = max((e.get("num_tokens", 0) for e in state.log_history), default=0)
            clock["peak"] = torch.cuda.max_memory_allocated() / 2**30 if cuda else 0.0

    original = trainer_module._trainer

    def with_clock(*arguments):
        trainer = original(*arguments)
        trainer.add_callback(Clock())
        return trainer

    trainer_module._trainer = with_clock
    trained = args.work / f"trained-{args.steps}"
    if not trained.is_dir():
        settings = TrainSettings(
            model=f"hf:{folder}", data=str(data), config=args.config, out=trained, target="both",
            conditions=["zero_shot", "process"], train_from="test", holdout=[args.holdout], merge=True,
            max_steps=args.steps, batch_size=args.batch_size, device=args.device, precision="auto", save_steps=100,
            log_steps=10,
        )  # fmt: skip
        began = time.perf_counter()
        result = trainer_module.train(settings)
        log = result.args["log"]
        print(f"trained {result.args['optimization']['steps']} steps ({result.args['examples']} examples, "
              f"{result.args['optimization']['precision']}) in {time.perf_counter() - began:.0f} s: loop "
              f"{clock['loop']:.0f} s, {clock['tokens'] / clock['loop']:,.0f} tokens/s, peak GPU memory "
              f"{clock['peak']:.1f} GiB; loss {log[0]['loss']:.3f} -> {log[-1]['loss']:.3f}")  # fmt: skip
        if not log[-1]["loss"] < log[0]["loss"]:
            failures.append("the loss did not fall")
    else:
        print(f"using the trained folder {trained}")

    runs, table = [], []
    for name, model in (("base", folder), ("trained", trained)):
        out = args.work / f"run-{name}"
        began = time.perf_counter()
        result = run_eval(EvalSettings(
            model=f"hf:{model}", model_args={"dtype": "bfloat16" if cuda else "float32", "device": args.device},
            data=str(data), config=args.config, out=out, tasks=TASKS,
            conditions=["zero_shot", "process"], batch_size=args.eval_batch_size, allow_failures=True, resume=True,
        ))  # fmt: skip
        counts = result.metrics["counts"]
        print(f"eval {name}: {counts['requests']} requests in {time.perf_counter() - began:.0f} s, "
              f"unparsed {counts['unparsed']}, failed {counts['failed']}")  # fmt: skip
        if counts["failed"]:
            failures.append(f"{name}: failed requests")
        rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
        for condition in ("zero_shot", "process"):
            for part, keep in (("held out", True), ("trained on", False)):
                chosen = [r for r in rows if r["condition"] == condition and (r["category"] == args.holdout) == keep]
                right = sum(r["parsed"] == r["answer"] for r in chosen)
                table.append((name, condition, part, right / max(1, len(chosen)), len(chosen)))
        runs.append(out)
    print(f"{'model':<8} {'condition':<10} {'categories':<11} {'accuracy':>8} {'n':>5}")
    for name, condition, part, accuracy, n in table:
        print(f"{name:<8} {condition:<10} {part:<11} {100 * accuracy:>7.1f}% {n:>5}")
    board = write_leaderboard(runs, args.work / "leaderboard")
    marked = [e for e in board["entries"] if e.get("training", {}).get("scored_records_trained_on")]
    print(f"leaderboard: {args.work / 'leaderboard'}; marked as trained on scored records: "
          f"{', '.join(e['model'] for e in marked) or 'none'}")  # fmt: skip
    if len(marked) != 1:
        failures.append("the leaderboard does not mark the trained model")
    print("all checks passed" if not failures else f"FAILED: {', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
