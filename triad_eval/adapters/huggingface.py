"""`hf:<model id or local path>`: image-text-to-text models through transformers.

The model loads with ``AutoProcessor`` and ``AutoModelForImageTextToText`` (``from_pretrained``,
no remote code unless ``trust_remote_code=true``); prompts go through the processor's chat
template with several images per prompt where a condition adds them; batches are left-padded;
generation is greedy by default. ``score_options`` reads, in one forward pass, the next-token
probabilities of the option letters (spellings ``A``, `` A``, ``▁A``, ``ĠA`` all count).
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import ClassVar

from PIL import Image

from instructiad.errors import InstructIADError
from instructiad.jsonio import read_json
from triad_eval.api import ModelAdapter, Request, Response
from triad_eval.settings import boolean

_PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
_LETTER_FORMS = ("{}", " {}", "▁{}", "Ġ{}")
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
ADAPTER_CONFIG = "adapter_config.json"
"""What a PEFT (LoRA) adapter folder holds instead of config.json."""
TRAINING_ARGS = "training_args.json"
"""What `triad train` writes into the folders it makes: settings and what the model was trained on."""


def _check_folder(path: Path) -> None:
    """A local model folder must hold a config, safetensors weights, a processor and a chat template.
    A LoRA adapter folder (``triad train`` without ``--merge``) holds ``adapter_config.json``
    instead of ``config.json``; transformers loads its base model and attaches it (needs peft)."""
    names = {p.name for p in path.iterdir()}
    if "config.json" not in names and ADAPTER_CONFIG not in names:
        raise InstructIADError(f"{path}: not a model folder (no config.json)")
    pickles = sorted(n for n in names if n.endswith(_PICKLE_SUFFIXES))
    if pickles and not any(n.endswith(".safetensors") for n in names):
        # Loading a pickle can run code, weights_only or not: refuse rather than fall back to it.
        raise InstructIADError(
            f"{path}: only pickle weights ({pickles[0]}); safetensors are required "
            "(re-save the model with save_pretrained, which writes model.safetensors)"
        )
    if not names & set(_PROCESSOR_FILES):
        raise InstructIADError(
            f"{path}: no processor (processor_config.json or preprocessor_config.json); save it with save_pretrained"
        )
    has_template = "chat_template.jinja" in names or "chat_template.json" in names
    for name in ("processor_config.json", "tokenizer_config.json"):
        if not has_template and name in names:
            has_template = "chat_template" in read_json(path / name)
    if not has_template:
        raise InstructIADError(
            f"{path}: no chat template (chat_template.jinja); the harness needs one to build prompts"
        )


def _folder_fingerprint(path: Path) -> str:
    """sha256 over config.json (an adapter's adapter_config.json) and the names and sizes of the
    weight files (cache keys change with the model)."""
    config = path / "config.json" if (path / "config.json").is_file() else path / ADAPTER_CONFIG
    digest = hashlib.sha256(config.read_bytes())
    for weights in sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return digest.hexdigest()


def _pil(ref) -> Image.Image:
    return Image.open(io.BytesIO(ref.data)).convert("RGB")


def trained_on(path: Path) -> dict | None:
    """What a model folder made by `triad train` was trained on (``trained_on`` of its
    training_args.json: dataset, split, categories, held-out ones, weights digest); ``None`` for
    other folders. Runs record it, so that `triad leaderboard` can mark a model trained on
    records it scores."""
    if not (path / TRAINING_ARGS).is_file():
        return None
    return read_json(path / TRAINING_ARGS).get("trained_on")


def chat_prompt(request: Request) -> tuple[list[dict], list[Image.Image], dict]:
    """The request as chat messages for the processor's template, its images in order, and any
    further processor inputs (none here; Triad adds its crops). `triad train` builds its prompts
    with the same function, so training sees exactly what evaluation sends."""
    messages = []
    for message in request.messages:
        content = [
            {"type": "image"} if p["type"] == "image" else {"type": "text", "text": p["text"]}
            for p in message["content"]
        ]
        messages.append({"role": message["role"], "content": content})
    return messages, [_pil(ref) for ref in request.images], {}


def prompt_inputs(processor, prompts: list[tuple[list[dict], list[Image.Image], dict]]):
    """The processor's inputs (left-padded batch) for prompts as :func:`chat_prompt` makes them:
    the chat template with the generation prompt, the images, any further inputs."""
    conversations, images, extra = [], [], {}
    for messages, request_images, request_extra in prompts:
        conversations.append(processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
        images.append(request_images)
        for key, values in request_extra.items():
            extra.setdefault(key, []).extend(values)
    # a batch of text-only prompts (no_image) goes without images: processors refuse empty lists
    images = images if any(images) else None
    return processor(images=images, text=conversations, padding=True, return_tensors="pt", **extra)


class HuggingFace(ModelAdapter):
    """A transformers image-text-to-text model."""

    ARGS: ClassVar[dict] = {
        "dtype": str, "device": str, "device_map": str, "attn_implementation": str, "max_pixels": int,
        "max_new_tokens": int, "trust_remote_code": boolean, "revision": str,
    }  # fmt: skip
    supports_scores = True

    def __init__(
        self,
        spec: str,
        model: str,
        *,
        dtype: str = "auto",
        device: str = "cpu",
        device_map: str | None = None,
        attn_implementation: str | None = None,
        max_pixels: int | None = None,
        max_new_tokens: int = 16,
        trust_remote_code: bool = False,
        revision: str | None = None,
    ) -> None:
        super().__init__(spec)
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        import triad_eval.triad  # noqa: F401 - registers the triad model type (converted Triad folders)

        local = Path(model).expanduser()
        if local.exists():
            self.check_folder(local)
        self.model_name = str(local.absolute()) if local.exists() else model
        self.version = _folder_fingerprint(local) if local.exists() else (revision or "main")
        self.trained_on = trained_on(local) if local.is_dir() else None
        self.dtype, self.device, self.max_new_tokens, self.max_pixels = dtype, device, int(max_new_tokens), max_pixels
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        processor_args = {"trust_remote_code": trust_remote_code, "revision": revision}
        if max_pixels:
            processor_args["max_pixels"] = int(max_pixels)
        try:
            self.processor = AutoProcessor.from_pretrained(self.model_name, **processor_args)
            self.model = AutoModelForImageTextToText.from_pretrained(
                self.model_name, dtype=torch_dtype, device_map=device_map, attn_implementation=attn_implementation,
                trust_remote_code=trust_remote_code, revision=revision, use_safetensors=True,
            ).eval()  # fmt: skip
        except (OSError, ValueError) as error:
            raise InstructIADError(f"{model}: cannot load the model ({str(error).splitlines()[0]})") from None
        if device_map is None:
            self.model.to(device)
        if not getattr(self.processor, "chat_template", None):
            raise InstructIADError(f"{model}: the processor has no chat template")
        tokenizer = self.processor.tokenizer
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

    def check_folder(self, path: Path) -> None:
        """Raise naming what a local model folder lacks (config, processor, chat template)."""
        _check_folder(path)

    def cache_params(self) -> dict:
        params = {"model": self.model_name, "version": self.version, "dtype": self.dtype,
                  "max_new_tokens": self.max_new_tokens, "max_pixels": self.max_pixels, "greedy": True}  # fmt: skip
        if self.trained_on is not None:  # a folder `triad train` made: the run records what it learnt from
            params["trained_on"] = self.trained_on
        return params

    def _prompt(self, request: Request) -> tuple[list[dict], list[Image.Image], dict]:
        """The request as :func:`chat_prompt` makes it (Triad moves the expert's crops)."""
        return chat_prompt(request)

    def _inputs(self, requests: list[Request]):
        return prompt_inputs(self.processor, [self._prompt(request) for request in requests]).to(self.model.device)

    def generate(self, requests: list[Request]) -> list[Response]:
        import torch

        inputs = self._inputs(requests)
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        texts = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
        return [Response(text=text.strip()) for text in texts]

    def score_options(self, requests: list[Request]) -> list[Response]:
        import torch

        inputs = self._inputs(requests)
        with torch.inference_mode():
            # the next-token logits only: the full (tokens x vocabulary) matrix is gigabytes for a 7B model's image
            logits = self.model(**inputs, logits_to_keep=1).logits[:, -1, :].float()
        log_probs = torch.log_softmax(logits, dim=-1)
        responses = []
        for row, request in zip(log_probs, requests, strict=True):
            letters = sorted(request.options)
            scores = torch.stack([torch.logsumexp(row[self._letter_ids(letter)], dim=0) for letter in letters])
            probs = torch.softmax(scores, dim=0).tolist()
            responses.append(Response(probs=dict(zip(letters, probs, strict=True))))
        return responses

    def _letter_ids(self, letter: str) -> list[int]:
        """Vocabulary ids of every spelling of ``letter`` as a first answer token."""
        tokenizer = self.processor.tokenizer
        ids = {tokenizer.convert_tokens_to_ids(form.format(letter)) for form in _LETTER_FORMS}
        ids.discard(tokenizer.unk_token_id)
        ids.discard(None)
        if not ids:
            encoded = tokenizer.encode(letter, add_special_tokens=False)
            ids = {encoded[0]} if encoded else set()
        if not ids:
            raise InstructIADError(f"{self.model_name}: the tokenizer has no token for option letter {letter!r}")
        return sorted(ids)

    def close(self) -> None:
        del self.model
