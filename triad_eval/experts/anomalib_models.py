"""The anomalib experts: PaDiM, PatchCore and EfficientAD, one small class each.

Pre-trained backbones come from timm (a download the first time); without network or cached
weights use ``--expert-args pre_trained=false`` (random features: weak, but the pipeline runs).

EfficientAD trains its student and autoencoder for ``steps`` Adam steps (the paper: 70,000;
default here 1,000, for CPUs) from a teacher whose pre-trained weights anomalib downloads. Its
penalty term wants ImageNet images: ``penalty_images=<folder>`` (e.g. an Imagenette copy on
disk) supplies them, transformed as anomalib does; nothing is downloaded, and without the
folder the penalty uses seeded noise images instead (a documented deviation).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
from PIL import Image

from instructiad.errors import InstructIADError
from instructiad.seeds import rng_for
from triad_eval.experts.fitted import FittedExpert


def _layers(text: str) -> list[str]:
    """``layer2+layer3`` -> ``["layer2", "layer3"]``."""
    return text.split("+")


class _MemoryBankExpert(FittedExpert):
    """A backbone's features of the normal images, summarised once (no training steps)."""

    SETTINGS: ClassVar[dict] = {"backbone": str, "layers": _layers}

    def backbone_args(self) -> dict:
        return {key: self.settings[key] for key in ("backbone", "layers", "pre_trained")}

    def fit(self, model, references: list[bytes]) -> None:
        import torch

        model.train()
        with torch.no_grad():
            for start in range(0, len(references), 8):
                model(self.tensor(references[start : start + 8]))
            self.summarise(model)

    def summarise(self, model) -> None:
        """Turn the collected features into the fitted state."""
        raise NotImplementedError


class Padim(_MemoryBankExpert):
    """PaDiM: a Gaussian per patch position over the backbone's features."""

    name = "padim"
    DEFAULTS: ClassVar[dict] = {"backbone": "resnet18", "layers": ["layer1", "layer2", "layer3"]}

    def build(self):
        from anomalib.models.image.padim.torch_model import PadimModel

        return PadimModel(**self.backbone_args())

    def summarise(self, model) -> None:
        model.fit()


class Patchcore(_MemoryBankExpert):
    """PatchCore: a coreset of patch features; a patch's score is its distance to the nearest."""

    name = "patchcore"
    SETTINGS: ClassVar[dict] = _MemoryBankExpert.SETTINGS | {"coreset": float}
    DEFAULTS: ClassVar[dict] = {"backbone": "resnet18", "layers": ["layer2", "layer3"], "coreset": 0.1}

    def build(self):
        from anomalib.models.image.patchcore.torch_model import PatchcoreModel

        return PatchcoreModel(**self.backbone_args())

    def summarise(self, model) -> None:
        with warnings.catch_warnings():  # anomalib 2.x warns about a parameter we do not pass
            warnings.simplefilter("ignore", DeprecationWarning)
            model.subsample_embedding(sampling_ratio=self.settings["coreset"])


class EfficientAd(FittedExpert):
    """EfficientAD: a student and an autoencoder trained to match a pre-trained teacher."""

    name = "efficient_ad"
    SETTINGS: ClassVar[dict] = {"model_size": str, "steps": int, "penalty_images": str}
    DEFAULTS: ClassVar[dict] = {"model_size": "small", "steps": 1000, "penalty_images": ""}
    normalise = False  # its networks normalise their inputs

    def build(self):
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

    def fit(self, model, references: list[bytes]) -> None:
        """Teacher statistics, ``steps`` Adam steps for student and autoencoder, map quantiles."""
        import torch
        from anomalib.models.image.efficient_ad.torch_model import reduce_tensor_elems

        images = self.tensor(references)
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
        """Endless (1, 3, size, size) batches for the penalty: images of the ``penalty_images``
        folder in a seeded order (resized to twice the size, grey with probability 0.3,
        centre-cropped, as anomalib prepares Imagenette), else seeded noise."""
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
