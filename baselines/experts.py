"""Vision experts: anomalib models fitted per category, whose anomaly maps drive the expert condition.

``--expert padim``, ``--expert patchcore`` or ``--expert efficient_ad`` fits the model's torch
module on each category's normal training images (all of them, or ``k_shot`` chosen with the seed) and predicts a map
for every evaluated image. Maps are cached on disk as compressed float16, keyed by the
expert's settings and the dataset's fingerprint, config and split. Pre-trained backbones come
from timm (a download the first time); without network or cached weights use
``--expert-args pre_trained=false`` (random features: weak, but the pipeline runs).

EfficientAD trains its student and autoencoder for ``steps`` Adam steps (the paper: 70,000;
default here 1,000, for CPUs) from a teacher whose pre-trained weights anomalib downloads. Its
penalty term wants ImageNet images: ``penalty_images=<folder>`` (e.g. an Imagenette copy on
disk) supplies them, transformed as anomalib does; nothing is downloaded, and without the
folder the penalty uses seeded noise images instead (a documented deviation).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from instructiad.errors import InstructIADError
from instructiad.masks import GRID_CELLS
from instructiad.roi import Regions, regions_of_interest
from instructiad.seeds import rng_for
from triad_eval.adapters.base import ModelAdapter, Response
from triad_eval.requests import Request

EXPERTS = ("padim", "patchcore", "efficient_ad")
SETTINGS = {
    "backbone": str,
    "layers": lambda v: v.split("+"),
    "pre_trained": lambda v: v.lower() in ("1", "true", "yes"),
    "k_shot": str,
    "image_size": int,
    "seed": int,
    "coreset": float,
    "model_size": str,
    "steps": int,
    "penalty_images": str,
    "device": str,
}
DEFAULTS = {"pre_trained": True, "k_shot": "full", "image_size": 256, "seed": 0, "device": "cpu"}
EXPERT_DEFAULTS = {
    "padim": {"backbone": "resnet18", "layers": ["layer1", "layer2", "layer3"]},
    "patchcore": {"backbone": "resnet18", "layers": ["layer2", "layer3"], "coreset": 0.1},
    "efficient_ad": {"model_size": "small", "steps": 1000, "penalty_images": ""},
}
"""Settings each expert uses; others given with --expert-args are refused."""
_MEAN, _STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])


def cache_folder() -> Path:
    """Where fitted experts' maps are kept: ``$TRIAD_EXPERT_CACHE`` or ``~/.cache/triad/experts``."""
    return Path(os.environ.get("TRIAD_EXPERT_CACHE", Path.home() / ".cache" / "triad" / "experts"))


class FittedExpert:
    """An anomalib model fitted on the dataset's normal training images, category by category."""

    def __init__(self, name: str, settings: dict, roi_args: dict) -> None:
        if name not in EXPERTS:
            raise InstructIADError(f"unknown expert {name!r} (known: {', '.join(EXPERTS)}, maps:<folder>)")
        unused = sorted(set(settings) - set(DEFAULTS) - set(EXPERT_DEFAULTS[name]))
        if unused:
            raise InstructIADError(f"expert {name} takes no setting {unused[0]!r}")
        self.name = name
        self.settings = DEFAULTS | EXPERT_DEFAULTS[name] | settings
        self.roi_args = roi_args
        self.maps: dict[str, np.ndarray] = {}

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
            maps = self._fit_predict(references, [r["image"]["bytes"] for r in records])
            self.maps.update({r["id"]: m for r, m in zip(records, maps, strict=True)})
        path.parent.mkdir(parents=True, exist_ok=True)
        ids = sorted(self.maps)
        partial = path.with_name(f".{path.name}.partial.npz")
        np.savez_compressed(partial, ids=np.array(ids), maps=np.stack([self.maps[i] for i in ids]))
        os.replace(partial, path)

    def regions(self, record_id: str, image_size: tuple[int, int]) -> Regions:
        return regions_of_interest(self.maps[record_id].astype(np.float32), image_size, **self.roi_args)

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

    def _tensor(self, images: list[bytes]):
        """(n, 3, size, size) float32: ImageNet-normalised, or in [0, 1] for EfficientAD (which
        normalises inside its networks)."""
        import torch

        size = self.settings["image_size"]
        arrays = []
        for data in images:
            with Image.open(io.BytesIO(data)) as image:
                pixels = np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR), np.float32)
            pixels = pixels / 255.0 if self.name == "efficient_ad" else (pixels / 255.0 - _MEAN) / _STD
            arrays.append(pixels.transpose(2, 0, 1))
        return torch.tensor(np.stack(arrays), dtype=torch.float32, device=self.settings["device"])

    def _model(self):
        """The expert's torch module on ``device``, seeded."""
        return self._build().to(self.settings["device"])

    def _build(self):
        import torch

        torch.manual_seed(self.settings["seed"])
        try:
            with warnings.catch_warnings():  # anomalib warns about optional components on import
                warnings.simplefilter("ignore")
                if self.name == "efficient_ad":
                    return self._efficient_ad()
                args = {"backbone": self.settings["backbone"], "layers": self.settings["layers"],
                        "pre_trained": self.settings["pre_trained"]}  # fmt: skip
                if self.name == "padim":
                    from anomalib.models.image.padim.torch_model import PadimModel

                    return PadimModel(**args)
                from anomalib.models.image.patchcore.torch_model import PatchcoreModel

                return PatchcoreModel(**args)
        except ImportError:
            raise InstructIADError(f"expert {self.name} needs anomalib: pip install 'instructiad[experts]'") from None
        except (OSError, RuntimeError, ValueError) as error:
            raise InstructIADError(
                f"expert {self.name}: cannot get the pre-trained {self.settings.get('backbone', 'teacher')} weights "
                f"({str(error).splitlines()[0][:120]}); without network use --expert-args pre_trained=false"
            ) from None

    def _efficient_ad(self):
        """EfficientAD's torch model; the teacher pre-trained (anomalib's download) or random."""
        import torch
        from anomalib.models.image.efficient_ad.torch_model import EfficientAdModel, EfficientAdModelSize

        size = self.settings["model_size"]
        if size not in ("small", "medium"):
            raise InstructIADError(f"--expert-args model_size={size}: must be small or medium")
        if self.settings["image_size"] < 256:  # its autoencoder's last 8 x 8 kernel needs 256 / 32 pixels
            raise InstructIADError(f"--expert-args image_size={self.settings['image_size']}: EfficientAD needs >= 256")
        model = EfficientAdModel(model_size=EfficientAdModelSize(size))
        if self.settings["pre_trained"]:
            from anomalib.data.utils import download_and_extract
            from anomalib.models.image.efficient_ad.lightning_model import WEIGHTS_DOWNLOAD_INFO
            from anomalib.utils.path import get_pretrained_weights_dir

            folder = get_pretrained_weights_dir()
            if not (folder / "efficientad_pretrained_weights").is_dir():
                download_and_extract(folder, WEIGHTS_DOWNLOAD_INFO)
            teacher = folder / "efficientad_pretrained_weights" / f"pretrained_teacher_{size}.pth"
            # the teacher ships only as a torch file: read with the restricted, tensors-only loader
            model.teacher.load_state_dict(torch.load(teacher, map_location="cpu", weights_only=True))
        return model

    def _fit_efficient_ad(self, model, references: list[bytes]) -> None:
        """Teacher statistics, ``steps`` Adam steps for student and autoencoder, map quantiles."""
        import torch
        from anomalib.models.image.efficient_ad.torch_model import reduce_tensor_elems

        images = self._tensor(references)
        with torch.no_grad():
            features = model.teacher(images)
            model.mean_std["mean"].copy_(features.mean(dim=(0, 2, 3), keepdim=True))
            model.mean_std["std"].copy_(features.std(dim=(0, 2, 3), keepdim=True))
        penalty = self._penalty_images()
        parameters = [*model.student.parameters(), *model.ae.parameters()]
        optimizer = torch.optim.Adam(parameters, lr=1e-4, weight_decay=1e-5)
        model.train()
        for step in range(self.settings["steps"]):
            index = step % len(images)
            loss_st, loss_ae, loss_stae = model(images[index : index + 1], next(penalty).to(images.device))
            optimizer.zero_grad()
            (loss_st + loss_ae + loss_stae).backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            map_st, map_ae = model.get_maps(images, normalize=False)
            for name, maps in (("st", map_st), ("ae", map_ae)):
                values = reduce_tensor_elems(maps)  # torch.quantile takes at most 2**24 values
                model.quantiles[f"qa_{name}"].copy_(torch.quantile(values, 0.9))
                model.quantiles[f"qb_{name}"].copy_(torch.quantile(values, 0.995))

    def _penalty_images(self):
        """Endless (1, 3, size, size) batches for EfficientAD's penalty: images of the
        ``penalty_images`` folder in a seeded order (resized to twice the size, grey with
        probability 0.3, centre-cropped, as anomalib prepares Imagenette), else seeded noise."""
        import torch

        size, seed = self.settings["image_size"], self.settings["seed"]
        folder = self.settings["penalty_images"]
        if not folder:
            generator = torch.Generator().manual_seed(seed)
            noise = torch.rand((4, 3, size, size), generator=generator)
            while True:
                yield from (image[None] for image in noise)
        paths = sorted(p for p in Path(folder).expanduser().rglob("*") if p.suffix.lower() in (".jpeg", ".jpg", ".png"))
        if not paths:
            raise InstructIADError(f"--expert-args penalty_images={folder}: no .jpg or .png images there")
        rng = rng_for(f"{seed}/efficient_ad/penalty")
        while True:
            with Image.open(rng.choice(paths)) as image:
                picture = image.convert("RGB").resize((2 * size, 2 * size), Image.Resampling.BILINEAR)
            if rng.random() < 0.3:
                picture = picture.convert("L").convert("RGB")
            offset = size // 2
            picture = picture.crop((offset, offset, offset + size, offset + size))
            pixels = np.asarray(picture, np.float32).transpose(2, 0, 1) / 255.0
            yield torch.from_numpy(pixels)[None]

    def _fit_predict(self, references: list[bytes], queries: list[bytes]) -> list[np.ndarray]:
        """A fresh model fitted on ``references``; the anomaly maps of ``queries``."""
        model = self._model()
        if self.name == "efficient_ad":
            self._fit_efficient_ad(model, references)
        else:
            self._fit_memory_bank(model, references)
        return self._predict(model, queries)

    def _fit_memory_bank(self, model, references: list[bytes]) -> None:
        """PaDiM's Gaussians or PatchCore's coreset from the features of ``references``."""
        import torch

        model.train()
        with torch.no_grad():
            for start in range(0, len(references), 8):
                model(self._tensor(references[start : start + 8]))
            if self.name == "padim":
                model.fit()
            else:
                with warnings.catch_warnings():  # anomalib 2.x warns about a parameter we do not pass
                    warnings.simplefilter("ignore", DeprecationWarning)
                    model.subsample_embedding(sampling_ratio=self.settings["coreset"])

    def _predict(self, model, queries: list[bytes]) -> list[np.ndarray]:
        """One float16 anomaly map per query image, at ``image_size``."""
        import torch

        model.eval()
        maps = []
        with torch.no_grad():
            for start in range(0, len(queries), 8):
                output = model(self._tensor(queries[start : start + 8]))
                maps += [m.squeeze().cpu().numpy().astype(np.float16) for m in output.anomaly_map]
        return maps


class ExpertModel(ModelAdapter):
    """`expert:<name>`: the vision expert itself as a baseline.

    It answers discrimination by comparing its image score (the map's maximum) with a threshold
    set on held-out normal training images (the highest score among them), with probabilities
    that grow with the score (so AUROC and AP are reported), and location with the 3x3 cell of
    the map's peak. Other question types need language and are not asked.
    """

    supports_scores = True
    supported_tasks = ("discrimination", "location")
    needs_image = True  # it answers from its anomaly map of the query image

    def __init__(self, spec: str, name: str, settings: dict) -> None:
        super().__init__(spec)
        self.expert = FittedExpert(name, settings, {})
        self.data = None
        self.thresholds: dict[str, tuple[float, float]] = {}

    def cache_params(self) -> dict:
        return {"settings": self.expert.settings, "thresholds": dict(sorted(self.thresholds.items()))}

    def bind(self, data) -> None:
        self.data = data

    def prepare(self, requests: list[Request]) -> None:
        ids = sorted({r.id for r in requests})
        self.expert.prepare(self.data, ids)
        for category, references in sorted(self.data.normal_references.items()):
            images = [ref.data for _, ref in references]
            # Half the normal images fit, the other half set the threshold; with fewer than four
            # there is nothing to hold out, and the fitted images set it themselves.
            fit_on, held_out = (images[0::2], images[1::2]) if len(images) >= 4 else (images, images)
            scores = [float(np.nanmax(m)) for m in self.expert._fit_predict(fit_on, held_out)]
            spread = float(np.nanstd(scores)) or 1e-3
            self.thresholds[category] = (float(np.nanmax(scores)), spread)

    def _answer(self, request: Request) -> Response:
        scores = self.expert.maps[request.id].astype(np.float32)
        threshold, spread = self.thresholds[request.category]
        if not np.isfinite(scores).all() or not np.isfinite(threshold):
            return Response(error=f"{self.spec} gave a map with NaN (too few normal images to fit {request.category}?)")
        if request.task == "discrimination":
            p_yes = float(1 / (1 + np.exp(-(float(scores.max()) - threshold) / spread)))
            letters = {text: letter for letter, text in request.options.items()}
            text = letters["Yes"] if p_yes > 0.5 else letters["No"]
            return Response(text=text, probs={letters["Yes"]: p_yes, letters["No"]: 1 - p_yes})
        row, col = np.unravel_index(int(np.argmax(scores)), scores.shape)
        cell = GRID_CELLS[min(2, 3 * row // scores.shape[0])][min(2, 3 * col // scores.shape[1])]
        letter = next((k for k, v in request.options.items() if v == cell), None)
        return Response(text=letter or "none of the options")

    def generate(self, requests: list[Request]) -> list[Response]:
        return [self._answer(r) for r in requests]

    def score_options(self, requests: list[Request]) -> list[Response]:
        return [
            Response(probs=self._answer(r).probs) if r.task == "discrimination" else self._answer(r) for r in requests
        ]
