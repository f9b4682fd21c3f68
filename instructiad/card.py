"""The dataset card (README.md) of a built folder: Hub YAML plus a readable summary."""

from __future__ import annotations

from collections import Counter

from datasets.info import DatasetInfo, DatasetInfosDict
from datasets.splits import SplitDict, SplitInfo
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCardData

from instructiad import HUB_REPO
from instructiad.card_metadata import Licence, size_category
from instructiad.features import FEATURES, FIELD_DOCS
from instructiad.summary import ConfigSummary

ALL_CONFIG = "all"
TRIAD_PAPER = "https://arxiv.org/abs/2503.13184"
TRIAD_CITATION = """\
@inproceedings{li2025triad,
  title     = {Triad: Empowering {LMM}-based Anomaly Detection with Vision Expert-guided Visual Tokenizer and
               Manufacturing Process},
  author    = {Li, Yuanze and Yuan, Shihao and Wang, Haolin and Li, Qizhang and Liu, Ming and Xu, Chen and
               Shi, Guangming and Zuo, Wangmeng},
  booktitle = {Proceedings of the IEEE/CVF International Conference on Computer Vision (ICCV)},
  year      = {2025},
  eprint    = {2503.13184},
  archivePrefix = {arXiv}
}"""
"""The paper whose InstructIAD and CoT-M data this dataset rebuilds in the open."""
TASK_CATEGORIES = ("image-classification", "image-segmentation", "visual-question-answering", "multiple-choice")
TASK_IDS = (
    "multi-class-image-classification",
    "semantic-segmentation",
    "visual-question-answering",
    "multiple-choice-qa",
)


def render_card(
    summaries: dict[str, ConfigSummary], *, version: str, fingerprint: str, report: dict, hub_repo: str = HUB_REPO
) -> str:
    """README.md text for a built folder: YAML header, then sources, counts and fields; the load
    examples name ``hub_repo``."""
    licences = source_licences(summaries, report)
    # Readers state Hub ids; only a folder source's --source-args can name a licence without one
    # (license_name, license_link), and a build has at most one folder source.
    custom = next((licence for licence in licences.values() if licence.id == "other"), None)
    records = sum(s.num_examples for c in summaries.values() for s in c.splits.values())
    card_data = DatasetCardData(
        pretty_name="InstructIAD",
        license=sorted({licence.id for licence in licences.values()}),
        license_name=custom.name if custom else None,
        license_link=custom.link if custom else None,
        language=["en"],
        annotations_creators=["expert-generated", "machine-generated"],
        language_creators=["machine-generated"],
        multilinguality=["monolingual"],
        size_categories=[size_category(records)],
        source_datasets=list(dict.fromkeys(_source_dataset(s) for s in summaries.values())),
        task_categories=list(TASK_CATEGORIES),
        task_ids=list(TASK_IDS),
        tags=["industrial-anomaly-detection", "anomaly-detection", "manufacturing", "instructiad"],
    )
    _configs_yaml(summaries).to_dataset_card_data(card_data)
    _infos_yaml(summaries).to_dataset_card_data(card_data)
    body = [
        "# InstructIAD",
        "",
        "Industrial anomaly detection images from public datasets, in one schema with labels, masks, "
        "defect types, mask boxes and coarse locations, built on the user's machine by "
        "the `instructiad` package (`triad build`) from copies the user obtained. "
        "Each source keeps its own licence (below). The multiple-choice questions and process-grounded "
        f"chain-of-thought follow the Triad paper ([arXiv 2503.13184]({TRIAD_PAPER}), ICCV 2025), whose "
        "InstructIAD data was never published; this build makes it in the open.",
        "",
        f"- Version: `{version}` (Hub tag `v{version}`)",
        f"- Fingerprint: `{fingerprint}` (sha256 over ordered record ids and image hashes)",
        "- Checksums: `manifest.json`; `triad verify <folder>` checks every file against it.",
        f"- CoT-M questions and conversations: template set `{report['options']['template_set']}` "
        f"version `{report['options']['template_version']}`",
        "",
        "## Load",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'ds = load_dataset("{hub_repo}", revision="v{version}")  # config "{ALL_CONFIG}": every source',
        f'ds = load_dataset("{hub_repo}", "{next(iter(summaries))}", revision="v{version}")',
        'ds = load_dataset("path/to/this/folder", "' + next(iter(summaries)) + '")  # a local copy, same result',
        "```",
        "",
        "## Sources and licences",
        "",
        "| config | source | licence | records | skipped files |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for name, summary in summaries.items():
        records = sum(s.num_examples for s in summary.splits.values())
        where = f" ({summary.reader.homepage})" if summary.reader.homepage else ""
        body.append(
            f"| {name} | {summary.reader.description}{where} | {licences[name]} | {records} | {len(summary.skipped)} |"
        )
    body += [
        "",
        "## Counts",
        "",
        "| config | category | split | normal | anomaly |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    for name, summary in summaries.items():
        for split, split_summary in summary.splits.items():
            for category, (normal, anomaly) in _by_category(split_summary.counts).items():
                body.append(f"| {name} | {category} | {split} | {normal} | {anomaly} |")
    body += ["", "## Defect types", "", "| config | category | defect type | images |", "| --- | --- | --- | ---: |"]
    for name, summary in summaries.items():
        defects: Counter = Counter()
        for split_summary in summary.splits.values():
            for (category, label, defect), count in split_summary.counts.items():
                if label == "anomaly":
                    defects[(category, defect)] += count
        body += [f"| {name} | {c} | {d} | {n} |" for (c, d), n in sorted(defects.items())]
    body += [
        "",
        "## Process annotations",
        "",
        "Each annotated category's manufacturing process (steps, normal appearance, acceptable variation, and "
        "which step causes which defect) ships in `processes/<source>/<category>.yaml`; records name it in "
        "`process_id`.",
        "",
        "| config | categories annotated | images linked | anomalous images with every defect annotated |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, coverage in report["processes"].items():
        body.append(
            f"| {name} | {coverage['annotated_categories']} of {coverage['categories']} | "
            f"{coverage['linked_images']} of {coverage['images']} | "
            f"{coverage['anomalous_images_resolved']} of {coverage['anomalous_images']} |"
        )
    body += ["", "## Skipped files", ""]
    if report["skipped"]:
        body += ["| source | file | problem |", "| --- | --- | --- |"]
        body += [f"| {e['source']} | `{e['path']}` | {e['problem']} |" for e in report["skipped"]]
    else:
        body.append("None: every file of every source was built.")
    body += ["", "## Fields", "", "| field | meaning |", "| --- | --- |"]
    body += [f"| `{name}` | {doc} |" for name, doc in FIELD_DOCS.items()]
    citations = list(dict.fromkeys(s.reader.citation for s in summaries.values() if s.reader.citation))
    body += [
        "",
        "## Citation",
        "",
        f"The Triad paper ({TRIAD_PAPER}), and the paper of every source dataset in this build:",
        "",
        "```bibtex",
        "\n".join([TRIAD_CITATION, *citations]),
        "```",
    ]
    return f"---\n{card_data.to_yaml()}\n---\n\n" + "\n".join(body) + "\n"


def source_licences(summaries: dict[str, ConfigSummary], report: dict) -> dict[str, Licence]:
    """Each config's licence: its reader's, unless the build's ``--source-args`` name another."""
    source_args = report["options"].get("source_args", {})
    return {name: Licence.of(c.reader.license, source_args.get(name)) for name, c in summaries.items()}


def _source_dataset(summary: ConfigSummary) -> str:
    """``extended|<source>`` for a published dataset this build extends, ``original`` for images
    first published here (the synthetic source, a user's own folders)."""
    return f"extended|{summary.reader.name}" if summary.reader.citation else "original"


def _by_category(counts: Counter) -> dict[str, tuple[int, int]]:
    table: dict[str, list[int]] = {}
    for (category, label, _), count in sorted(counts.items()):
        table.setdefault(category, [0, 0])[0 if label == "normal" else 1] += count
    return {category: (normal, anomaly) for category, (normal, anomaly) in table.items()}


def _split_names(summaries: dict[str, ConfigSummary]) -> list[str]:
    order = ("train", "validation", "test")
    return [s for s in order if any(s in c.splits for c in summaries.values())]


def _configs_yaml(summaries: dict[str, ConfigSummary]) -> MetadataConfigs:
    configs: dict[str, dict] = {
        ALL_CONFIG: {
            "default": True,
            "data_files": [
                {
                    "split": split,
                    "path": [f"data/{name}/{split}-*.parquet" for name, c in summaries.items() if split in c.splits],
                }
                for split in _split_names(summaries)
            ],
        }
    }
    for name, summary in summaries.items():
        configs[name] = {
            "data_files": [{"split": split, "path": f"data/{name}/{split}-*.parquet"} for split in summary.splits]
        }
    return MetadataConfigs(configs)


def _infos_yaml(summaries: dict[str, ConfigSummary]) -> DatasetInfosDict:
    infos = {}
    for name, summary in summaries.items():
        infos[name] = _info(name, {s: (v.num_examples, v.num_bytes) for s, v in summary.splits.items()})
    totals: dict[str, tuple[int, int]] = {}
    for split in _split_names(summaries):
        parts = [c.splits[split] for c in summaries.values() if split in c.splits]
        totals[split] = (sum(p.num_examples for p in parts), sum(p.num_bytes for p in parts))
    infos[ALL_CONFIG] = _info(ALL_CONFIG, totals)
    return DatasetInfosDict(infos)


def _info(name: str, splits: dict[str, tuple[int, int]]) -> DatasetInfo:
    split_dict = SplitDict()
    for split, (examples, num_bytes) in splits.items():
        split_dict.add(SplitInfo(name=split, num_examples=examples, num_bytes=num_bytes))
    return DatasetInfo(
        features=FEATURES,
        splits=split_dict,
        dataset_size=sum(b for _, b in splits.values()),
        config_name=name,
    )
