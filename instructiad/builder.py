"""The InstructIAD builder: a ``datasets.GeneratorBasedBuilder`` with one config per source.

Use it from Python to prepare a source into the ``datasets`` cache::

    from instructiad.builder import InstructIAD
    builder = InstructIAD(config_name="mvtec_ad", data_dir="/data/mvtec_ad")
    builder.download_and_prepare()
    ds = builder.as_dataset(split="test")

or the ``all`` config with ``roots={"mvtec_ad": ..., "visa": ...}``. ``triad build`` writes
the same records (same readers, same :func:`~instructiad.records.make_record`) straight to
Hub-ready Parquet shards; see :mod:`instructiad.export`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby

import datasets

import instructiad
from instructiad.card import ALL_CONFIG
from instructiad.errors import InstructIADError, SkippedFiles, raise_bad_file
from instructiad.features import FEATURES
from instructiad.pipeline import iter_records, list_samples
from instructiad.sources import READERS


@dataclass
class InstructIADConfig(datasets.BuilderConfig):
    """A builder config: which sources it reads, and the build options.

    Attributes:
        sources: reader names this config reads (one for a source config; all for ``all``).
        roots: source name -> root folder (a source config can take ``data_dir`` instead).
        max_side: resize images whose longer side exceeds it.
        on_bad_file: ``"error"`` or ``"skip"``.
    """

    sources: tuple[str, ...] = ()
    roots: dict[str, str] | None = None
    max_side: int | None = None
    on_bad_file: str = "error"
    skipped: SkippedFiles = field(default_factory=SkippedFiles, compare=False, repr=False)


_VERSION = datasets.Version(instructiad.DATASET_VERSION)


class InstructIAD(datasets.GeneratorBasedBuilder):
    """InstructIAD records from the IAD datasets on disk."""

    VERSION = _VERSION
    BUILDER_CONFIG_CLASS = InstructIADConfig
    BUILDER_CONFIGS = [
        InstructIADConfig(name=name, version=_VERSION, sources=(name,), description=reader.description)
        for name, reader in READERS.items()
    ] + [InstructIADConfig(name=ALL_CONFIG, version=_VERSION, sources=tuple(READERS), description="every source")]
    DEFAULT_CONFIG_NAME = ALL_CONFIG

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(
            description="Industrial anomaly detection images with labels, masks and defect types.",
            features=FEATURES,
            homepage=f"https://huggingface.co/datasets/{instructiad.HUB_REPO}",
        )

    def _roots(self) -> dict[str, str]:
        roots = dict(self.config.roots or {})
        if self.config.data_dir and len(self.config.sources) == 1:
            roots.setdefault(self.config.sources[0], self.config.data_dir)
        roots = {name: root for name, root in roots.items() if name in self.config.sources}
        if not roots:
            raise InstructIADError(f"config {self.config.name}: give data_dir=... or roots={{source: folder}}")
        return roots

    def _split_generators(self, dl_manager: datasets.DownloadManager) -> list[datasets.SplitGenerator]:
        on_bad = self.config.skipped if self.config.on_bad_file == "skip" else raise_bad_file
        roots = self._roots()
        by_split: dict[str, list] = {}
        for name in READERS:  # sources in READERS order, as `triad build` writes them
            if name in roots:
                for split, samples in list_samples(name, roots[name], on_bad).items():
                    by_split.setdefault(split, []).extend(samples)
        return [datasets.SplitGenerator(name=split, gen_kwargs={"samples": s}) for split, s in by_split.items()]

    def _generate_examples(self, samples: list) -> Iterator[tuple[str, dict]]:
        on_bad = self.config.skipped if self.config.on_bad_file == "skip" else raise_bad_file
        # one source at a time, as `triad build` balances each config's questions on its own
        for _, group in groupby(samples, key=lambda sample: sample.source):
            for record in iter_records(list(group), max_side=self.config.max_side, on_bad=on_bad):
                yield record["id"], record
