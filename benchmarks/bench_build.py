"""Build throughput against the I/O floor, and peak memory as the image count grows.

Generates a synthetic source (512 px images by default), replicates its categories until
the tree holds ``--images`` images, then measures in one run:

* the I/O floor: reading and sha256-hashing every image file once (warm page cache);
* ``triad build`` with one process on the same tree (same warm cache);
* peak resident memory of a build of a quarter of the images and of all of them, each in
  a fresh process, to show that memory stays flat (shards are written as they fill).

Prints images/s and the ratio build / floor (target: at most 2.0).

    python benchmarks/bench_build.py [--images 6000] [--size 512] [--work DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from instructiad.export import build_dataset
from instructiad.sources import synthetic

IMAGE_SUFFIXES = (".png", ".jpg")


def make_tree(root: Path, images: int, size: int) -> Path:
    """A synthetic tree of about ``images`` images: a base tree, categories copied as needed."""
    base = synthetic.generate(root, n_train=20, n_test_good=5, n_per_defect=5, size=size)
    per_copy = sum(1 for _ in base.rglob("*.png") if "ground_truth" not in _.parts)
    originals = [p for p in sorted(base.iterdir()) if p.is_dir()]
    copies = max(0, -(-images // per_copy) - 1)
    for index in range(copies):
        for category in originals:
            shutil.copytree(category, base / f"{category.name}_copy{index:03d}")
    return base


def image_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in IMAGE_SUFFIXES)


def io_floor(files: list[Path]) -> float:
    """Seconds to read and sha256 every file once."""
    start = time.perf_counter()
    for path in files:
        hashlib.sha256(path.read_bytes()).hexdigest()
    return time.perf_counter() - start


def record_count(folder: Path) -> int:
    manifest = json.loads((folder / "manifest.json").read_text())
    return sum(s["num_examples"] for c in manifest["configs"].values() for s in c["splits"].values())


def timed_build(source: Path, out: Path) -> float:
    start = time.perf_counter()
    build_dataset([("synthetic", source)], out)
    return time.perf_counter() - start


_PEAK_SNIPPET = """
import resource, sys
from instructiad.export import build_dataset
build_dataset([("synthetic", sys.argv[1])], sys.argv[2])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mib(source: Path, out: Path) -> float:
    """Peak resident memory (MiB) of a build in a fresh process."""
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_SNIPPET, str(source), str(out)], capture_output=True, text=True, check=True
    )
    return int(result.stdout.strip().splitlines()[-1]) / 1024


def subset(source: Path, fraction: float, target: Path) -> Path:
    """A tree with the first ``fraction`` of the category folders (links, no copies)."""
    target.mkdir()
    shutil.copy(source / synthetic.MARKER, target / synthetic.MARKER)
    categories = [p for p in sorted(source.iterdir()) if p.is_dir()]
    for category in categories[: max(1, int(len(categories) * fraction))]:
        (target / category.name).symlink_to(category, target_is_directory=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=6000, help="images in the tree (default: 6000)")
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (default: 512)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary folder)")
    args = parser.parse_args()

    work = Path(args.work or tempfile.mkdtemp(prefix="bench-build-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        source = make_tree(work / "source", args.images, args.size)
        files = image_files(source)
        total_mb = sum(p.stat().st_size for p in files) / 1e6
        io_floor(files)  # warm the page cache so both timings read from memory
        floor = io_floor(files)
        build = timed_build(source, work / "built")
        count = record_count(work / "built")

        small_peak = peak_rss_mib(subset(source, 0.25, work / "quarter"), work / "built_quarter")
        quarter_count = record_count(work / "built_quarter")
        large_peak = peak_rss_mib(source, work / "built_all")

        print(f"images            {count} ({total_mb:.0f} MB of image and mask files, {args.size} px)")
        print(f"I/O floor         {floor:.2f} s  (read + sha256 of every file once)")
        print(f"build, 1 process  {build:.2f} s  = {count / build:.0f} images/s")
        print(f"ratio             {build / floor:.2f} x the I/O floor (target <= 2.0)")
        print(f"peak memory       {small_peak:.0f} MiB for {quarter_count} images, {large_peak:.0f} MiB for {count}")
        print(
            f"memory ratio      {large_peak / small_peak:.2f} (flat is 1.0) for {count / quarter_count:.1f}x the images"
        )
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
