"""``--expert maps:<folder>``: anomaly maps precomputed by any method, and the crops they give.

Maps are read from ``<folder>/<record id>.npy`` (a 2-D float array) or ``<folder>/<record
id>.png`` (a grayscale image; a PNG mask is used as is, non-zero = region); MuSc, a fitted
anomalib model or any other method can write them.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from instructiad.errors import InstructIADError
from instructiad.roi import Regions, regions_of_interest
from triad_eval.api import ImageRef


@dataclass
class MapFolder:
    """Precomputed anomaly maps keyed by record id."""

    folder: Path
    roi_args: dict = field(default_factory=dict)

    @property
    def spec(self) -> str:
        return f"maps:{self.folder}"

    def path(self, record_id: str) -> Path | None:
        """The map file of ``record_id`` (``.npy`` first), or ``None``; never outside the folder."""
        relative = PurePosixPath(record_id)
        if relative.is_absolute() or ".." in relative.parts:
            raise InstructIADError(f"record id {record_id!r} cannot name a map file inside {self.folder}")
        for suffix in (".npy", ".png"):
            candidate = self.folder / f"{record_id}{suffix}"
            if candidate.is_file():
                return candidate
        return None

    def describe(self) -> dict:
        return {"settings": self.roi_args}

    def prepare(self, data, record_ids: list[str]) -> None:
        """Every record needs a map; raise naming how many are missing and the first one."""
        missing = [i for i in record_ids if self.path(i) is None]
        if missing:
            raise InstructIADError(
                f"{self.folder}: no anomaly map for {len(missing)} of {len(record_ids)} records "
                f"(e.g. {missing[0]}.npy or .png)"
            )

    def load(self, record_id: str) -> np.ndarray:
        path = self.path(record_id)
        if path is None:
            raise InstructIADError(f"{self.folder}: no anomaly map for {record_id}")
        try:
            if path.suffix == ".npy":
                return np.load(path, allow_pickle=False)  # never unpickle
            with Image.open(path) as image:
                return np.asarray(image.convert("F"))
        except (OSError, ValueError) as error:
            raise InstructIADError(f"{path}: unreadable anomaly map ({error})") from None

    def regions(self, record_id: str, image_size: tuple[int, int]) -> Regions:
        """Regions of interest of one record's image (``image_size`` = (width, height))."""
        scores = self.load(record_id)
        if scores.ndim != 2:
            raise InstructIADError(f"{self.path(record_id)}: anomaly map must be 2-D, got shape {scores.shape}")
        height, width = scores.shape
        image_width, image_height = image_size
        if abs(width / height - image_width / image_height) > 0.02:
            raise InstructIADError(
                f"{self.path(record_id)}: map is {width}x{height} but its image is {image_width}x{image_height} "
                "(another aspect ratio)"
            )
        return regions_of_interest(scores, image_size, **self.roi_args)


def crop(image: ImageRef, box: tuple[int, int, int, int]) -> ImageRef:
    """The part of ``image`` inside ``box``, as a PNG image reference."""
    with Image.open(io.BytesIO(image.data)) as pil:
        buffer = io.BytesIO()
        pil.crop(box).save(buffer, format="PNG")
    data = buffer.getvalue()
    return ImageRef(hashlib.sha256(data).hexdigest(), data)
