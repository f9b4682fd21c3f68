"""Vision experts on the CPU: fit and predict images/s of PaDiM, PatchCore and EfficientAD on synthetic data.

Random backbone weights (``pre_trained=false``, no download); 256 px inputs; one category of
the synthetic source with ``--train`` normal images to fit on and ``--test`` images to score.
EfficientAD trains for ``--steps`` steps (its cost is seconds per step; the paper runs 70,000).

    python benchmarks/bench_experts.py [--train 32] [--test 32] [--steps 10]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from instructiad.sources import synthetic
from triad_eval.experts import expert_class


def images(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted(folder.rglob("*.png")) if "ground_truth" not in p.parts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=32)
    parser.add_argument("--test", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-experts-"))
    try:
        root = synthetic.generate(work, categories=("steel_sheet",), n_train=args.train, n_test_good=args.test // 4,
                                  n_per_defect=args.test // 4, size=256)  # fmt: skip
        train = images(root / "steel_sheet" / "train")
        test = images(root / "steel_sheet" / "test")
        for name in ("padim", "patchcore"):
            expert = expert_class(name)({"pre_trained": False})
            expert.model()  # import and build once before timing
            began = time.perf_counter()
            expert.fit_predict(train, test[:1])
            fit = time.perf_counter() - began
            began = time.perf_counter()
            expert.fit_predict(train[:2], test)
            predict = time.perf_counter() - began
            print(f"{name:<10} fit {len(train) / fit:6.1f} images/s   fit+predict of {len(test)} images "
                  f"{len(test) / predict:6.1f} images/s (256 px, CPU, resnet18 random weights)")  # fmt: skip
        expert = expert_class("efficient_ad")({"pre_trained": False, "steps": args.steps})
        model = expert.model()
        began = time.perf_counter()
        expert.fit(model, train)
        fit = time.perf_counter() - began
        began = time.perf_counter()
        expert.predict(model, test)
        predict = time.perf_counter() - began
        print(f"efficient_ad fit {fit / args.steps:6.2f} s/step ({args.steps} steps, incl. statistics)   "
              f"predict {len(test) / predict:6.1f} images/s (256 px, CPU, small, random teacher)")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
