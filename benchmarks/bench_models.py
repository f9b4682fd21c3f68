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
    """model.generate on the same prompts at batch 1, with nothing around it."""
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from triad_eval.data import open_dataset
    from triad_eval.requests import build_requests

    requests, _ = build_requests(open_dataset(str(data), "synthetic"), ["discrimination"], ["zero_shot"])
    processor = AutoProcessor.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    began = time.perf_counter()
    for request in requests:
        content = [{"type": "image"} if p["type"] == "image" else {"type": "text", "text": p["text"]}
                   for p in request.messages[0]["content"]]  # fmt: skip
        text = processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        images = [[Image.open(io.BytesIO(ref.data)).convert("RGB") for ref in request.images]]
        inputs = processor(images=images, text=[text], return_tensors="pt")
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=16, do_sample=False)
    return time.perf_counter() - began, len(requests)


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
        bare, n = bare_loop(model, work / "data")
        harness, _ = timed_eval(spec, work / "data", work / "b1", batch_size=1)
        batched, _ = timed_eval(spec, work / "data", work / "b8", batch_size=8)
        scored, _ = timed_eval(spec, work / "data", work / "s8", batch_size=8, scoring="options")
        print(f"(a) tiny LLaVA-OneVision on the CPU, {n} discrimination requests (model load included in triad eval)")
        print(f"    bare model.generate loop, batch 1   {n / bare:7.1f} requests/s")
        ratio = bare / harness
        print(
            f"    triad eval, batch 1                 {n / harness:7.1f} requests/s  ratio {ratio:.2f} (target >= 0.95)"
        )
        print(
            f"    triad eval, batch 8                 {n / batched:7.1f} requests/s  speed-up {harness / batched:.2f}x"
        )
        print(f"    triad eval, batch 8, score_options  {n / scored:7.1f} requests/s  {batched / scored:.2f}x generate")

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
