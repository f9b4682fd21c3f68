"""The dataset an evaluation reads: a folder built by `triad build`, or its copy on the Hub."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from instructiad.errors import InstructIADError
from instructiad.manifest import MANIFEST, read_manifest
from instructiad.processes import ProcessAnnotation, load_file

if TYPE_CHECKING:
    import datasets

_COLUMNS = ["id", "category", "label", "process_id", "questions", "image", "image_sha256", "template_set",
            "template_version"]  # fmt: skip


@dataclass(frozen=True)
class ImageRef:
    """An image as requests carry it: its sha256 (what prompts and cache keys see) and bytes."""

    sha256: str
    data: bytes = field(repr=False)


class Records(Sequence[dict]):
    """The rows of one split as plain dicts, read from its memory-mapped Arrow table when asked
    for, so that a run holds only the records it is working on, not the whole split's images.

    ``records[i]`` is one row, ``records[a:b]`` a view of rows ``a`` to ``b``, iteration reads
    the table in batches, and :meth:`column` reads one field of every row without the others.
    """

    _BATCH = 256

    def __init__(self, table: datasets.Dataset) -> None:
        self._table = table

    def __len__(self) -> int:
        return len(self._table)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Records(self._table.select(range(len(self._table))[index]))
        return self._table[index]

    def __iter__(self) -> Iterator[dict]:
        for batch in self._table.iter(batch_size=self._BATCH):
            names = list(batch)
            yield from (dict(zip(names, row, strict=True)) for row in zip(*batch.values(), strict=True))

    def column(self, name: str) -> list:
        """Field ``name`` of every row, in order (cheap: the other fields are not read)."""
        return self._table.with_format("arrow")[name].to_pylist()


@dataclass
class EvalDataset:
    """Records of one config and split, with what conditions need (annotations, references).

    Attributes:
        source: the folder or Hub id given by the user.
        config, split, revision: what was loaded.
        fingerprint: the config's fingerprint from ``manifest.json``.
        folder: local folder holding ``manifest.json`` and ``processes/``.
        splits: every split the config has.
        records: the split's records (images undecoded: ``{"bytes", "path"}``), read lazily.
    """

    source: str
    config: str
    split: str
    revision: str | None
    fingerprint: str
    folder: Path
    splits: frozenset[str]
    records: Records
    _annotations: dict[str, ProcessAnnotation] = field(default_factory=dict, repr=False)

    def annotation(self, process_id: str) -> ProcessAnnotation:
        """The process annotation shipped with the dataset (``processes/<id>.yaml``), checked
        as it was built: rules for writing annotations added since do not lock it out."""
        if process_id not in self._annotations:
            path = self.folder / "processes" / f"{process_id}.yaml"
            self._annotations[process_id] = load_file(path, authoring=False)
        return self._annotations[process_id]

    @cached_property
    def normal_references(self) -> dict[str, list[tuple[str, ImageRef]]]:
        """Normal images of the train split by category, sorted by id (for ``one_shot``)."""
        if "train" not in self.splits:
            raise InstructIADError(f"{self.source}: config {self.config} has no train split to take references from")
        train = _load(
            self.source, self.config, "train", self.revision, ["id", "category", "label", "image", "image_sha256"]
        )
        references: dict[str, list[tuple[str, ImageRef]]] = {}
        for row in train:
            if row["label"] == 0:
                references.setdefault(row["category"], []).append(
                    (row["id"], ImageRef(row["image_sha256"], row["image"]["bytes"]))
                )
        return {category: sorted(items, key=lambda item: item[0]) for category, items in references.items()}


def open_dataset(
    source: str, config: str, split: str = "test", revision: str | None = None, columns: list[str] | None = None
) -> EvalDataset:
    """Open ``config``/``split`` of a built folder or a Hub dataset repo (``columns``: the
    record fields to load; default: what evaluation needs).

    Raises:
        InstructIADError: the folder or repo has no manifest, or not that config or split.
    """
    folder = Path(source).expanduser()
    if folder.is_dir():
        folder = folder.absolute()
        data_source = str(folder)
    elif "/" in source and not folder.exists() and not source.startswith((".", "/")):
        folder = _download_metadata(source, revision)
        data_source = source
    else:
        raise InstructIADError(f"{source}: no such dataset folder")
    manifest = read_manifest(folder)
    configs = ["all", *manifest["configs"]]
    if config not in configs:
        raise InstructIADError(f"{source}: no config {config!r} (configs: {', '.join(configs)})")
    if config == "all":
        fingerprint, splits = manifest["fingerprint"], _all_splits(manifest)
    else:
        fingerprint, splits = manifest["configs"][config]["fingerprint"], set(manifest["configs"][config]["splits"])
    if split not in splits:
        raise InstructIADError(
            f"{source}: config {config} has no split {split!r} (splits: {', '.join(sorted(splits))})"
        )
    if data_source == str(folder):  # a built folder; `datasets` reads every split's shards of the config
        _check_shards(folder, manifest, config)
    records = _load(data_source, config, split, revision, columns or _COLUMNS)
    return EvalDataset(data_source, config, split, revision, fingerprint, folder, frozenset(splits), records)


def _all_splits(manifest: dict) -> set[str]:
    return {split for entry in manifest["configs"].values() for split in entry["splits"]}


def _check_shards(folder: Path, manifest: dict, config: str) -> None:
    """Each Parquet shard of ``config`` is there, with the size ``manifest.json`` gives (cheap;
    `triad verify` checks the bytes); raises naming the first that is not."""
    configs = manifest["configs"].values() if config == "all" else [manifest["configs"][config]]
    for entry in configs:
        for name in (name for split in entry["splits"].values() for name in split["files"]):
            path = folder / name
            expected = manifest["files"].get(name, {}).get("bytes")
            if not path.is_file():
                problem = "missing"
            elif expected is not None and path.stat().st_size != expected:
                problem = f"size {path.stat().st_size} bytes, {MANIFEST} says {expected}"
            else:
                continue
            raise InstructIADError(f"{path}: {problem} (damaged dataset? run `triad verify {folder}`)")


def _load(source: str, config: str, split: str, revision: str | None, columns: list[str]) -> Records:
    """Rows of a split with undecoded images, as plain dicts read when asked for."""
    from datasets import Image, disable_progress_bars, load_dataset

    disable_progress_bars()  # the harness shows its own progress
    dataset = load_dataset(source, config, split=split, revision=revision)
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        missing_columns = ", ".join(missing)
        raise InstructIADError(
            f"{source}: the dataset has no {missing_columns} (built by an older instructiad? rebuild it)"
        )
    dataset = dataset.select_columns(columns)
    if "image" in columns:
        dataset = dataset.cast_column("image", Image(decode=False))
    return Records(dataset)


def _download_metadata(repo_id: str, revision: str | None) -> Path:
    """manifest.json, the card and the process annotations of a Hub dataset (not its data)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        path = snapshot_download(
            repo_id,
            repo_type="dataset",
            revision=revision,
            allow_patterns=["manifest.json", "README.md", "processes/**"],
        )
    except (HfHubHTTPError, OSError, ValueError) as error:
        raise InstructIADError(
            f"{repo_id}: cannot fetch the dataset's manifest ({str(error).splitlines()[0]})"
        ) from None
    return Path(path)


def describe(dataset: EvalDataset) -> dict:
    """What config.json records about the dataset."""
    records = dataset.records
    sets = sorted(set(zip(records.column("template_set"), records.column("template_version"), strict=True)))
    return {
        "source": dataset.source,
        "config": dataset.config,
        "split": dataset.split,
        "revision": dataset.revision,
        "fingerprint": dataset.fingerprint,
        "template_sets": [f"{name}@{version}" for name, version in sets],
    }
