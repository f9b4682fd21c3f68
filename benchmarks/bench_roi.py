"""Regions of interest: time per anomaly map at 256, 1024 and 2048 px (target: at most 5 ms at 1024).

Maps are smooth noise with a few bumps, as an inspection model's anomaly maps look; each is
given at its image's resolution, and at 256x256 (the common output size of PatchCore and
PaDiM) resized to a 1024 px image.

    python benchmarks/bench_roi.py [--maps 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy import ndimage

from instructiad.roi import regions_of_interest


def anomaly_maps(count: int, size: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    maps = []
    for _ in range(count):
        scores = ndimage.gaussian_filter(rng.random((size, size)).astype(np.float32), sigma=size / 64)
        for _ in range(rng.integers(1, 6)):
            cx, cy = rng.integers(0, size, 2)
            y, x = np.ogrid[0:size, 0:size]
            scores += rng.uniform(0.2, 1.0) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * (size / 40) ** 2))
        maps.append(scores.astype(np.float32))
    return maps


def median_ms(maps: list[np.ndarray], image: int = 1024) -> float:
    times = []
    for scores in maps:
        began = time.perf_counter()
        regions_of_interest(scores, (image, image))
        times.append(time.perf_counter() - began)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=200)
    args = parser.parse_args()
    small = anomaly_maps(args.maps, 256, seed=1)
    median_ms(small[:5])  # warm up
    for size in (256, 1024, 2048):
        maps = small if size == 256 else anomaly_maps(args.maps if size < 2048 else args.maps // 4, size)
        target = " (target <= 5 ms)" if size == 1024 else ""
        print(f"{size}x{size} map, {size} px image: median {median_ms(maps, size):.2f} ms per map{target}")
    print(f"256x256 map resized to a 1024 px image: median {median_ms(small):.2f} ms per map")


if __name__ == "__main__":
    main()
