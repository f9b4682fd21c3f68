"""What every fitted expert shares: fitting per category on normal training images, predicting
and caching maps, turning them into regions.

A fitted expert is fitted on each category's normal training images (all of them, or
``k_shot`` chosen with the seed) and predicts a map for every evaluated image. Maps are cached
on disk as compressed float16, keyed by the expert's settings and the dataset's fingerprint,
config and split (``$TRIAD_EXPERT_CACHE``). A subclass (:mod:`.anomalib_models`) says how its
torch module is built (:meth:`FittedExpert.build`) and fitted (:meth:`FittedExpert.fit`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from instructiad.errors import InstructIADError
from instructiad.roi import Regions, regions_of_interest
from instructiad.seeds import rng_for
from triad_eval.settings import boolean

COMMON_SETTINGS: dict[str, Callable[[str], Any]] = {
    "pre_trained": boolean,
    "k_shot": str,
    "image_size": int,
    "seed": int,
    "device": str,
}
"""Settings every fitted expert takes (``pre_trained=false`` runs without a weights download)."""
COMMON_DEFAULTS = {"pre_trained": True, "k_shot": "full", "image_size": 256, "seed": 0, "device": "cpu"}
_MEAN, _STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def cache_folder() -> Path:
    """Where fitted experts' maps are kept: ``$TRIAD_EXPERT_CACHE`` or ``~/.cache/triad/experts``."""
    return Path(os.environ.get("TRIAD_EXPERT_CACHE", Path.home() / ".cache" / "triad" / "experts"))


class FittedExpert:
    """An expert fitted on the dataset's normal training images, category by category.

    Subclasses set :attr:`name`, their own :attr:`SETTINGS` and :attr:`DEFAULTS`, and implement
    :meth:`build` and :meth:`fit`.

    Attributes:
        settings: every setting, defaults filled in (recorded in the run's config.json).
        roi_args: the region-of-interest knobs (:data:`triad_eval.experts.ROI_SETTINGS`).
        maps: record id -> anomaly map (float16, ``image_size`` square), after :meth:`prepare`.
    """

    name: ClassVar[str]
    SETTINGS: ClassVar[dict[str, Callable[[str], Any]]] = {}
    DEFAULTS: ClassVar[dict[str, Any]] = {}
    normalise: ClassVar[bool] = True
    """Inputs are ImageNet-normalised (else left in [0, 1] for a model that normalises inside)."""

    def __init__(self, settings: dict | None = None, roi_args: dict | None = None) -> None:
        unused = sorted(set(settings or {}) - set(self.setting_types()))
        if unused:
            raise InstructIADError(f"expert {self.name} takes no setting {unused[0]!r}")
        self.settings = COMMON_DEFAULTS | self.DEFAULTS | (settings or {})
        self.roi_args = roi_args or {}
        self.maps: dict[str, np.ndarray] = {}

    @classmethod
    def setting_types(cls) -> dict[str, Callable[[str], Any]]:
        """Every setting this expert takes: name -> converter from text."""
        return COMMON_SETTINGS | cls.SETTINGS

    @property
    def spec(self) -> str:
        return self.name

    def describe(self) -> dict:
        return {"settings": self.settings} | ({"roi": self.roi_args} if self.roi_args else {})

    def prepare(self, data, record_ids: list[str]) -> None:
        """Fit per category and predict the maps of ``record_ids`` (or read them from the cache)."""
        key = hashlib.sha256(
            json.dumps({"expert": self.name, "settings": self.settings, "fingerprint": data.fingerprint,
                        "config": data.config, "split": data.split, "ids": record_ids}, sort_keys=True).encode()
        ).hexdigest()  # fmt: skip
        path = cache_folder() / f"{key}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as stored:
                self.maps = dict(zip(stored["ids"].tolist(), stored["maps"], strict=True))
            return
        wanted = set(record_ids)
        by_category: dict[str, list[dict]] = {}
        for record in data.records:
            if record["id"] in wanted:
                by_category.setdefault(record["category"], []).append(record)
        for category, records in sorted(by_category.items()):
            references = self._shots(category, data.normal_references.get(category, []))
            maps = self.fit_predict(references, [r["image"]["bytes"] for r in records])
            self.maps.update({r["id"]: m for r, m in zip(records, maps, strict=True)})
        path.parent.mkdir(parents=True, exist_ok=True)
        ids = sorted(self.maps)
        partial = path.with_name(f".{path.name}.partial.npz")
        np.savez_compressed(partial, ids=np.array(ids), maps=np.stack([self.maps[i] for i in ids]))
        os.replace(partial, path)

    def regions(self, record_id: str, image_size: tuple[int, int]) -> Regions:
        """Regions of interest of one prepared record's image (``image_size`` = (width, height))."""
        return regions_of_interest(self.maps[record_id].astype(np.float32), image_size, **self.roi_args)

    def fit_predict(self, references: list[bytes], queries: list[bytes]) -> list[np.ndarray]:
        """A fresh model fitted on ``references`` (encoded images); one float16 anomaly map per
        query image, ``image_size`` x ``image_size``."""
        model = self.model()
        self.fit(model, references)
        return self.predict(model, queries)

    def model(self):
        """The expert's torch module on ``device``, seeded; one-line errors where anomalib or
        the pre-trained weights are missing."""
        import torch

        torch.manual_seed(self.settings["seed"])
        try:
            with warnings.catch_warnings():  # anomalib warns about optional components on import
                warnings.simplefilter("ignore")
                module = self.build()
        except ImportError:
            raise InstructIADError(f"expert {self.name} needs anomalib: pip install 'instructiad[experts]'") from None
        except (OSError, RuntimeError, ValueError) as error:
            raise InstructIADError(
                f"expert {self.name}: cannot get the pre-trained {self.settings.get('backbone', 'teacher')} weights "
                f"({str(error).splitlines()[0][:120]}); without network use --expert-args pre_trained=false"
            ) from None
        return module.to(self.settings["device"])

    def build(self):
        """The untrained torch module (subclasses)."""
        raise NotImplementedError

    def fit(self, model, references: list[bytes]) -> None:
        """Fit ``model`` on the encoded normal images ``references`` (subclasses)."""
        raise NotImplementedError

    def predict(self, model, queries: list[bytes]) -> list[np.ndarray]:
        """One float16 anomaly map per query image, at ``image_size``."""
        import torch

        model.eval()
        maps = []
        with torch.no_grad():
            for start in range(0, len(queries), 8):
                output = model(self.tensor(queries[start : start + 8]))
                maps += [m.squeeze().cpu().numpy().astype(np.float16) for m in output.anomaly_map]
        return maps

    def tensor(self, images: list[bytes]):
        """(n, 3, size, size) float32 on ``device``: ImageNet-normalised, or in [0, 1] where
        :attr:`normalise` is false."""
        import torch

        size = self.settings["image_size"]
        arrays = []
        for data in images:
            with Image.open(io.BytesIO(data)) as image:
                pixels = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), np.float32)
            pixels = (pixels / 255.0 - _MEAN) / _STD if self.normalise else pixels / 255.0
            arrays.append(pixels.transpose(2, 0, 1))
        return torch.tensor(np.stack(arrays), dtype=torch.float32, device=self.settings["device"])

    def _shots(self, category: str, references: list) -> list[bytes]:
        if not references:
            raise InstructIADError(f"expert {self.name}: category {category} has no normal training image to fit on")
        shots = self.settings["k_shot"]
        if shots == "full":
            return [ref.data for _, ref in references]
        if not shots.isdigit() or int(shots) < 1:
            raise InstructIADError(f"--expert-args k_shot={shots}: must be full or a positive number")
        chosen = rng_for(f"{self.settings['seed']}/{category}/k_shot").sample(
            references, min(int(shots), len(references))
        )
        return [ref.data for _, ref in chosen]
