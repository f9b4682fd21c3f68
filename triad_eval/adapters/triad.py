"""`triad:<folder>`: a Triad checkpoint converted with ``triad convert-checkpoint``.

It runs like ``hf:`` with one difference: under the ``expert`` condition the region crops
are not shown as extra images with a sentence about them; they become Triad's region tokens,
attached to the query image (:class:`~triad_eval.triad.processing.TriadProcessor`), as the
released checkpoints were trained.
"""

from __future__ import annotations

from pathlib import Path

from instructiad.errors import InstructIADError
from instructiad.jsonio import read_json
from triad_eval.adapters.huggingface import ADAPTER_CONFIG, HuggingFace, _pil
from triad_eval.api import Request


def check_triad_folder(path: Path) -> None:
    """A converted Triad folder (model_type ``triad``); says what to do with other checkpoints."""
    config_path = path / "config.json"
    if (path / ADAPTER_CONFIG).is_file() and not config_path.is_file():  # a LoRA adapter: its base decides
        base = read_json(path / ADAPTER_CONFIG).get("base_model_name_or_path") or ""
        config_path = Path(base) / "config.json"
    if not path.is_dir() or not config_path.is_file():
        raise InstructIADError(f"{path}: not a Triad checkpoint folder (triad:<path> needs a folder with config.json)")
    config = read_json(config_path)
    model_type = config.get("model_type")
    if model_type == "triad":
        return
    if "mm_vision_tower" in config:
        raise InstructIADError(
            f"{path}: original LLaVA-NeXT layout; convert it first with `triad convert-checkpoint {path} DST`"
        )
    if model_type == "llava_onevision":
        raise InstructIADError(f"{path}: a LLaVA-OneVision checkpoint, not Triad; run it with hf:{path}")
    raise InstructIADError(f"{path}: not a Triad checkpoint (model_type {model_type!r})")


class Triad(HuggingFace):
    """Triad from a converted checkpoint; region crops become region tokens of the query image."""

    needs_image = True  # region tokens attach to the query image

    def __init__(self, spec: str, model: str, **kwargs) -> None:
        if not Path(model).expanduser().exists():
            raise InstructIADError(
                f"{model}: no such folder (triad:<path> runs a folder made by `triad convert-checkpoint`)"
            )
        super().__init__(spec, model, **kwargs)

    def check_folder(self, path: Path) -> None:
        check_triad_folder(path)
        super().check_folder(path)

    def _prompt(self, request: Request) -> tuple[list[dict], list, dict]:
        return triad_prompt(request)


def triad_prompt(request: Request) -> tuple[list[dict], list, dict]:
    """Messages without the expert's crops and sentences; each crop goes to the image before it
    (processor input ``roi_images``). `triad train` builds Triad's prompts with it too."""
    messages, images, crops = [], [], []
    for message in request.messages:
        content = []
        for part in message["content"]:
            if part.get("roi"):
                if part["type"] == "image":
                    crops[-1].append(_pil(part["image"]))
                continue
            if part["type"] == "image":
                content.append({"type": "image"})
                images.append(_pil(part["image"]))
                crops.append([])
            else:
                content.append({"type": "text", "text": part["text"]})
        messages.append({"role": message["role"], "content": content})
    return messages, images, {"roi_images": crops}
