"""What a build wrote, per source config: splits, shard checksums, counts, annotation coverage.

:func:`instructiad.export.build_dataset` fills these as it writes; the dataset card
(:mod:`instructiad.card`), ``build_report.json`` and ``manifest.json`` are made from them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from instructiad.processes import Catalog
from instructiad.sources import Reader


@dataclass
class SplitSummary:
    """What one split of one config holds once written."""

    num_examples: int = 0
    num_bytes: int = 0
    checksums: dict[str, tuple[str, int]] = field(default_factory=dict)  # shard file -> (sha256, bytes), in order
    counts: Counter = field(default_factory=Counter)  # (category, label, defect_type) -> images


@dataclass
class Coverage:
    """How much of one source config its process annotations cover."""

    categories: set[str] = field(default_factory=set)
    annotated_categories: set[str] = field(default_factory=set)
    images: int = 0
    linked_images: int = 0
    anomalous_images: int = 0
    anomalous_images_resolved: int = 0  # every defect of the image has an annotation entry

    def add(self, record: dict, catalog: Catalog) -> None:
        """Count one built ``record``; ``catalog`` resolves its process annotation."""
        self.categories.add(record["category"])
        self.images += 1
        anomalous = record["label"] == "anomaly"
        self.anomalous_images += anomalous
        if record["process_id"] is None:
            return
        self.annotated_categories.add(record["category"])
        self.linked_images += 1
        if anomalous:
            annotation = catalog.get(record["process_id"])
            names = record["sub_types"] or record["defect_types"]
            self.anomalous_images_resolved += bool(names) and all(annotation.defect(n) for n in names)

    def as_dict(self) -> dict[str, int]:
        """The counts as ``build_report.json`` lists them under ``processes``."""
        counts = {"categories": len(self.categories), "annotated_categories": len(self.annotated_categories)}
        return (
            counts
            | {k: getattr(self, k) for k in ("images", "linked_images", "anomalous_images")}
            | {"anomalous_images_resolved": self.anomalous_images_resolved}
        )


@dataclass
class ConfigSummary:
    """One source config: its reader, splits, fingerprint and annotation coverage."""

    reader: Reader
    splits: dict[str, SplitSummary] = field(default_factory=dict)
    fingerprint: str = ""
    skipped: list[dict[str, str]] = field(default_factory=list)
    coverage: Coverage = field(default_factory=Coverage)
