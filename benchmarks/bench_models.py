"""Model adapters: harness overhead on a local model, batching, option scoring, API concurrency.

(a) A tiny random LLaVA-OneVision on the CPU, on discrimination requests of the synthetic
    dataset: requests/s of `triad eval` against a bare loop that calls ``model.generate`` on
    the same inputs at batch 1 (target ratio >= 0.95), the speed-up of batch 8, and
    ``score_options`` against ``generate``.
(b) The OpenAI-compatible stub server with 200 ms latency: achieved requests/s against
    concurrency (target at concurrency 16: >= 0.8 x 16 / 0.2 s = 64 requests/s).

    python benchmarks/bench_models.py [--records 40]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' tiny-model builders and stub

from instructiad.export import build_dataset
from instructiad.sources import synthetic
from tests import tiny_models
from triad_eval.runner import EvalSettings, run_eval


def timed_eval(model: str, data: Path, out: Path, conditions=("zero_shot",), **extra) -> tuple[float, int]:
    settings = EvalSettings(model=model, data=str(data), config="synthetic", out=out, tasks=["discrimination"],
                            conditions=list(conditions), allow_failures=True, **extra)  # fmt: skip
    began = time.perf_counter()
    result = run_eval(settings)
    return time.perf_counter() - began, result.metrics["counts"]["requests"]


def bare_loop(model_dir: Path, data: Path) -> tuple[float, int]:
    """model.generate on the same prompts at batch 1, with nothing around it but the model load
    (which `triad eval` also pays)."""
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from triad_eval.data import open_dataset
    from triad_eval.requests import build_requests

    requests, _ = build_requests(open_dataset(str(data), "synthetic"), ["discrimination"], ["zero_shot"])
    began = time.perf_counter()
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    for request in requests:
        content = [{"type": "image"} if p["type"] == "image" else {"type": "text", "text": p["text"]}
                   for p in request.messages[0]["content"]]  # fmt: skip
        text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        images = [[Image.open(io.BytesIO(ref.data)).convert("RGB") for ref in request.images]]
        inputs = processor(images=images, text=[text], return_tensors="pt")
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=16, do_sample=False)
    return time.perf_counter() - began, len(requests)


def adapter_modes(model_dir: Path, data: Path, repeats: int = 3) -> tuple[float, float, float, int]:
    """Seconds for ``generate`` and ``score_options`` of the hf: adapter over every request in
    batches of 8 (the model loaded, the prompts built: the two modes alone), and for preparing
    the inputs they share; medians of ``repeats`` passes."""
    from triad_eval.adapters import load_adapter
    from triad_eval.data import open_dataset
    from triad_eval.requests import build_requests

    requests, _ = build_requests(open_dataset(str(data), "synthetic"), ["discrimination"], ["zero_shot"])
    adapter = load_adapter(f"hf:{model_dir}")
    batches = [requests[i : i + 8] for i in range(0, len(requests), 8)]
    timings = {"generate": [], "score_options": [], "_inputs": []}
    for _ in range(repeats):
        for mode, values in timings.items():
            began = time.perf_counter()
            for batch in batches:
                getattr(adapter, mode)(batch)
            values.append(time.perf_counter() - began)
    medians = [statistics.median(timings[m]) for m in ("generate", "score_options", "_inputs")]
    return *medians, len(requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=240, help="test images (default: 240)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-models-"))
    try:
        per_defect = max(1, args.records // 12)
        source = synthetic.generate(work / "src", n_train=2, n_test_good=per_defect, n_per_defect=per_defect, size=64)
        build_dataset([("synthetic", source)], work / "data")
        model = tiny_models.llava_onevision(work / "model")
        spec = f"hf:{model}"

        timed_eval(spec, work / "data", work / "warmup")  # load caches once
        # runs on this machine vary by 20%: interleave three rounds and keep each median
        rounds = {"bare": [], "b1": [], "b8": [], "s8": []}
        for round_ in range(3):
            rounds["bare"].append(bare_loop(model, work / "data")[0])
            rounds["b1"].append(timed_eval(spec, work / "data", work / f"b1-{round_}", batch_size=1)[0])
            rounds["b8"].append(timed_eval(spec, work / "data", work / f"b8-{round_}", batch_size=8)[0])
            rounds["s8"].append(
                timed_eval(spec, work / "data", work / f"s8-{round_}", batch_size=8, scoring="options")[0]
            )
        bare, harness, batched, scored = (statistics.median(rounds[k]) for k in ("bare", "b1", "b8", "s8"))
        n = timed_eval(spec, work / "data", work / "count")[1]
        print(f"(a) tiny LLaVA-OneVision on the CPU, {n} discrimination requests, medians of 3 rounds "
              "(model load included on both sides)")  # fmt: skip
        print(f"    bare model.generate loop, batch 1   {n / bare:7.1f} requests/s")
        ratio = bare / harness
        print(
            f"    triad eval, batch 1                 {n / harness:7.1f} requests/s  ratio {ratio:.2f} (target >= 0.95)"
        )
        print(
            f"    triad eval, batch 8                 {n / batched:7.1f} requests/s  speed-up {harness / batched:.2f}x"
        )
        print(f"    triad eval, batch 8, score_options  {n / scored:7.1f} requests/s  {batched / scored:.2f}x generate")
        generate, options, inputs, n = adapter_modes(model, work / "data")
        print(f"    the adapter's modes alone, batch 8, 16 new tokens (median of 3): generate {n / generate:.0f}/s, "
              f"score_options {n / options:.0f}/s = {generate / options:.2f}x (target >= 3x); "
              f"shared input preparation {inputs / options:.0%} of score_options")  # fmt: skip

        os.environ.setdefault("OPENAI_API_KEY", "benchmark")
        import openai  # noqa: F401  (imported before timing: its import takes seconds)

        # The server runs in its own process, as a real one would: in this process it would
        # compete with the client for the GIL.
        server = subprocess.Popen([sys.executable, "-m", "tests.openai_stub", "0.2"], stdout=subprocess.PIPE, text=True,
                                  cwd=Path(__file__).resolve().parents[1])  # fmt: skip
        try:
            url = server.stdout.readline().strip()
            print("(b) OpenAI-compatible stub (its own process) with 200 ms latency")
            for concurrency in (1, 4, 16):
                elapsed, count = timed_eval(
                    "openai:stub", work / "data", work / f"api{concurrency}", concurrency=concurrency,
                    model_args={"base_url": url}, conditions=("zero_shot", "process", "one_shot"),
                )  # fmt: skip
                ideal = concurrency / 0.2
                rate = count / elapsed
                print(f"    concurrency {concurrency:>2}: {rate:6.1f} requests/s = {rate / ideal:.2f} x ideal")
        finally:
            server.kill()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
