"""GPU check of the real Triad checkpoint, for sessions and users with a GPU and the files.

It runs only when a checkpoint folder is on local disk (nothing is downloaded): the original
release (``CSshihao/Triad_ov`` or ``CSshihao/Triad_ov_1shot``, LLaVA-NeXT layout) is
converted first, a folder made by ``triad convert-checkpoint`` is used as is. It then checks
and prints:

1. conversion: tensors carried, tokens added, ``from_pretrained`` with nothing missing or
   unexpected, bf16 on the GPU, peak memory;
2. region tokens on a 1024 x 768 test image: the prompt's image-token count for 0 to 5 crops
   equals the features the model produces (729 per crop for one crop, 169 each for 2 to 4,
   81 each for 5);
3. a short evaluation on a built dataset (``--data``, default: the synthetic demo built here)
   under zero_shot and expert (PaDiM maps, random features unless ``--pre-trained``), with
   requests/s and the answers' parse rate.

    python benchmarks/check_triad_gpu.py --checkpoint /models/Triad_ov [--work /tmp/triad-gpu] [--limit 24]

Exit code 0 when every check passes, 1 when one fails, 0 with "skipped" when there is no
checkpoint or no GPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/triad-gpu-check"))
    parser.add_argument("--data", type=Path, help="a built dataset folder (default: build the synthetic demo)")
    parser.add_argument("--config", default="synthetic")
    parser.add_argument("--limit", type=int, default=24)
    parser.add_argument("--pre-trained", action="store_true", help="PaDiM with pre-trained weights (network)")
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu for a smoke run on a tiny checkpoint")
    args = parser.parse_args()

    import torch

    if not (args.checkpoint / "config.json").is_file():
        print(f"skipped: no checkpoint at {args.checkpoint}")
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        print("skipped: no CUDA device")
        return 0
    dtype = torch.bfloat16 if args.device == "cuda" else torch.float32
    from PIL import Image

    from triad_eval.triad import TriadForConditionalGeneration, TriadProcessor, region_tokens
    from triad_eval.triad.convert import convert_checkpoint

    args.work.mkdir(parents=True, exist_ok=True)
    failures = []
    folder = args.checkpoint
    if json.loads((folder / "config.json").read_text()).get("model_type") != "triad":
        folder = args.work / "converted"
        if not (folder / "config.json").is_file():
            began = time.perf_counter()
            done = convert_checkpoint(args.checkpoint, folder)
            print(f"converted: {done.variant}, {done.tensors} tensors, added {done.added_tokens} "
                  f"in {time.perf_counter() - began:.0f} s")  # fmt: skip

    began = time.perf_counter()
    model, info = TriadForConditionalGeneration.from_pretrained(
        folder, dtype=dtype, device_map=args.device, output_loading_info=True
    )
    processor = TriadProcessor.from_pretrained(folder)
    missing, unexpected = len(info["missing_keys"]), len(info["unexpected_keys"])
    print(f"loaded in {time.perf_counter() - began:.0f} s; missing {missing}, unexpected {unexpected}")
    if args.device == "cuda":
        print(f"  peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    if missing or unexpected:
        failures.append("loading info")

    side = model.config.vision_config.image_size // model.config.vision_config.patch_size
    image = Image.new("RGB", (1024, 768), (128, 128, 128))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Any defect?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    base = None
    for crops in range(6):
        regions = [image.crop((100 * i, 100, 100 * i + 384, 484)) for i in range(crops)]
        inputs = processor(images=[image], text=[text], roi_images=[regions], return_tensors="pt").to(args.device)
        tokens = int((inputs["input_ids"] == model.config.image_token_id).sum())
        base = tokens if crops == 0 else base
        with torch.inference_mode():
            keys = ("pixel_values", "image_sizes", "roi_pixel_values", "roi_counts", "batch_num_images")
            features = model.model.get_image_features(**{k: inputs[k] for k in keys if k in inputs}).pooler_output[0]
        expected = (base if model.config.roi_variant == "zero_shot" else side * side + 1) + region_tokens(crops, side)
        ok = tokens == features.shape[0] == expected
        print(f"  {crops} crop(s): {tokens} image tokens, features {features.shape[0]}, expected {expected}"
              f" {'ok' if ok else 'MISMATCH'}")  # fmt: skip
        failures += [] if ok else [f"{crops} crops"]

    from instructiad.export import build_dataset
    from instructiad.sources import synthetic
    from triad_eval.runner import EvalSettings, run_eval

    data = args.data
    if data is None:
        data = args.work / "dataset"
        if not (data / "manifest.json").is_file():
            build_dataset([("synthetic", synthetic.generate(args.work / "source"))], data)
    del model
    if args.device == "cuda":
        torch.cuda.empty_cache()
    model_args = {"dtype": str(dtype).removeprefix("torch."), "device": args.device}
    settings = EvalSettings(
        model=f"triad:{folder}", model_args=model_args, data=str(data), config=args.config,
        out=args.work / "run", tasks=["discrimination"], conditions=["zero_shot", "expert"],
        limit=args.limit, expert="padim", allow_failures=True,
        expert_args={"pre_trained": str(args.pre_trained).lower(), "crop": "384"},
    )  # fmt: skip
    began = time.perf_counter()
    result = run_eval(settings)
    elapsed = time.perf_counter() - began
    counts = result.metrics["counts"]
    print(f"eval: {counts['requests']} requests in {elapsed:.0f} s ({counts['requests'] / elapsed:.2f}/s), "
          f"unparsed {counts['unparsed']}, failed {counts['failed']}; run in {result.folder}")  # fmt: skip
    if counts["failed"]:
        failures.append("failed requests")
    print("all checks passed" if not failures else f"FAILED: {', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
