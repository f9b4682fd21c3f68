"""The normalized sample every source reader yields."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

NORMAL = "normal"
ANOMALY = "anomaly"
LABELS = (NORMAL, ANOMALY)
GOOD = "good"
"""Defect type of every normal image, whatever the source calls its normal folder."""


@dataclass(frozen=True)
class OwnQuestions:
    """Multiple-choice questions a source brings with its images (MMAD's), which records keep
    as they are instead of the questions CoT-M would render.

    Attributes:
        origin: what records name as their ``template_set`` (e.g. ``"mmad"``).
        version: what records name as their ``template_version`` (e.g. the source file's hash).
        questions: the image's questions as records store them (``type``, ``question``,
            ``options`` of ``{"letter", "text"}``, ``answer``, ``facts``); empty for images
            that are only references (MMAD's normal templates).
    """

    origin: str
    version: str
    questions: tuple[dict, ...] = ()


@dataclass(frozen=True)
class Sample:
    """One image of a source dataset, as found on disk.

    Attributes:
        source: reader name, e.g. ``"mvtec_ad"``.
        category: product category, e.g. ``"bottle"``.
        split: ``"train"``, ``"validation"`` or ``"test"``.
        root: the source root every path below is confined under.
        image_path: path of the image file, relative to ``root`` (POSIX form).
        key: the image's path inside its split (e.g. ``"broken_large/000.png"``); the
            last part of the record id.
        label: ``"normal"`` or ``"anomaly"``.
        defect_type: the source's own name for the defect (``"good"`` for normal images;
            ``"combined"`` where one image holds several defect types).
        defect_types: every defect type in the image (empty for normal images).
        sub_types: finer defect names where the source has them (MVTec LOCO).
        mask_paths: mask files relative to ``root``; several are merged (union).
        extra: source-specific metadata (e.g. Real-IAD camera view and sample id).
        questions: the source's own questions for this image; ``None`` (every source but
            MMAD): CoT-M makes the record's questions from its process annotation.
    """

    source: str
    category: str
    split: str
    root: Path
    image_path: str
    key: str
    label: str
    defect_type: str
    defect_types: tuple[str, ...] = ()
    sub_types: tuple[str, ...] = ()
    mask_paths: tuple[str, ...] = ()
    extra: tuple[tuple[str, str], ...] = field(default=())
    questions: OwnQuestions | None = None

    @property
    def id(self) -> str:
        """Stable record id: ``<source>/<category>/<split>/<key>``."""
        return f"{self.source}/{self.category}/{self.split}/{self.key}"
