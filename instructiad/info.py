"""`triad info`: what a built dataset folder holds."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from instructiad.export import BUILD_REPORT
from instructiad.manifest import read_manifest
from instructiad.sample import LABELS


def summarize(folder: str | Path) -> dict:
    """Configs, splits, counts per category and defect, version and fingerprint of a built folder.

    Returns:
        ``{"folder", "version", "fingerprint", "configs": {config: {"fingerprint",
        "splits": {split: {"num_examples", "normal", "anomaly"}},
        "categories": {category: {split: {"normal", "anomaly"}}},
        "defects": {category: {defect_type: images}}, "processes": {coverage counts}}},
        "skipped": n}``
    """
    folder = Path(folder).expanduser().absolute()
    manifest = read_manifest(folder)
    configs = {}
    for name, entry in manifest["configs"].items():
        splits, categories, defects = {}, {}, {}
        for split, split_entry in entry["splits"].items():
            labels: Counter = Counter()
            for shard in split_entry["files"]:
                columns = pq.read_table(folder / shard, columns=["category", "label", "defect_type"]).to_pydict()
                for category, label, defect in zip(*columns.values(), strict=True):
                    label_name = LABELS[label]
                    labels[label_name] += 1
                    cell = categories.setdefault(category, {}).setdefault(split, {"normal": 0, "anomaly": 0})
                    cell[label_name] += 1
                    if label_name == "anomaly":
                        per_category = defects.setdefault(category, {})
                        per_category[defect] = per_category.get(defect, 0) + 1
            splits[split] = {"num_examples": split_entry["num_examples"], **{k: labels[k] for k in LABELS}}
        configs[name] = {
            "fingerprint": entry["fingerprint"],
            "splits": splits,
            "categories": dict(sorted(categories.items())),
            "defects": {c: dict(sorted(d.items())) for c, d in sorted(defects.items())},
        }
    report_path = folder / BUILD_REPORT
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    for name, coverage in report.get("processes", {}).items():
        if name in configs:
            configs[name]["processes"] = coverage
    skipped = len(report.get("skipped", []))
    return {
        "folder": str(folder),
        "version": manifest["version"],
        "fingerprint": manifest["fingerprint"],
        "configs": configs,
        "skipped": skipped,
    }


def format_summary(summary: dict) -> str:
    """The summary as aligned plain text."""
    lines = [
        f"InstructIAD {summary['version']}  {summary['folder']}",
        f"fingerprint  {summary['fingerprint']}",
        f"configs      all (default), {', '.join(summary['configs'])}",
        f"skipped      {summary['skipped']} file(s) (see build_report.json)",
    ]
    for name, config in summary["configs"].items():
        total = sum(s["num_examples"] for s in config["splits"].values())
        lines += ["", f"[{name}]  {total} images  fingerprint {config['fingerprint'][:16]}"]
        if "processes" in config:
            coverage = config["processes"]
            lines.append(
                f"  process annotations: {coverage['annotated_categories']} of {coverage['categories']} categories, "
                f"{coverage['linked_images']} of {coverage['images']} images"
            )
        width = max(len("category"), *(len(c) for c in config["categories"]))
        lines.append(f"  {'category':<{width}}  {'split':<10} {'normal':>7} {'anomaly':>7}  defect types")
        for category, by_split in config["categories"].items():
            defects = ", ".join(f"{d} {n}" for d, n in config["defects"].get(category, {}).items())
            for i, (split, counts) in enumerate(by_split.items()):
                label = category if i == 0 else ""
                tail = defects if i == len(by_split) - 1 else ""
                lines.append(f"  {label:<{width}}  {split:<10} {counts['normal']:>7} {counts['anomaly']:>7}  {tail}")
        for split, counts in config["splits"].items():
            lines.append(f"  {'total':<{width}}  {split:<10} {counts['normal']:>7} {counts['anomaly']:>7}")
    return "\n".join(line.rstrip() for line in lines)
