"""`openai:<model>`: any OpenAI-compatible chat API (OpenAI, vLLM, other servers).

Images go as base64 data URLs (resized so the longer side is at most ``max_side``). Requests
run with bounded concurrency; 429, 5xx, timeouts, connection errors and malformed bodies are
retried with exponential backoff and jitter, honouring ``Retry-After``, then recorded as
failed (never scored). With ``--scoring options`` the first token's ``logprobs`` give option
probabilities. The API key is read from the environment only (``OPENAI_API_KEY``, or the
variable named by ``api_key_env``) and is never written to run files or logs.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import math
import os
import random
import time
from typing import ClassVar

from PIL import Image

from instructiad.errors import InstructIADError
from triad_eval.api import ImageRef, ModelAdapter, Request, Response

_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


def data_url(image: ImageRef, max_side: int) -> str:
    """The image as a data URL; resized (and re-encoded as PNG) only when larger than ``max_side``."""
    with Image.open(io.BytesIO(image.data)) as pil:
        fmt = pil.format or "PNG"
        if max(pil.size) > max_side or fmt not in _MIME:
            scale = max_side / max(pil.size)
            resized = pil.resize((max(1, round(pil.width * scale)), max(1, round(pil.height * scale))))
            if resized.mode not in ("RGB", "L"):
                resized = resized.convert("RGB")
            buffer = io.BytesIO()
            resized.save(buffer, format="PNG")
            data, fmt = buffer.getvalue(), "PNG"
        else:
            data = image.data
    return f"data:{_MIME[fmt]};base64,{base64.b64encode(data).decode()}"


def letter_probabilities(top_logprobs: list[dict], letters: list[str]) -> dict[str, float] | None:
    """Option probabilities from the first token's top logprobs (``{"token", "logprob"}``
    entries; "A", " A", "(A" all count as A), renormalised over the options; ``None`` when no
    option letter is among them.

    Raises:
        ValueError: an entry is not a ``{"token", "logprob"}`` mapping or its logprob is not a
            finite number at most 0 (a malformed response).
    """
    mass: dict[str, float] = {}
    for item in top_logprobs or []:
        if not isinstance(item, dict):
            raise ValueError(f"top_logprobs entry is {type(item).__name__}, not an object")
        token = str(item.get("token", "")).strip().lstrip("(▁Ġ").rstrip(").:").upper()
        if token in letters:
            mass[token] = mass.get(token, 0.0) + math.exp(_logprob(item.get("logprob")))
    total = sum(mass.values())
    if not total:
        return None
    return {letter: mass.get(letter, 0.0) / total for letter in sorted(letters)}


def _logprob(value: object) -> float:
    """A log-probability from a response: a finite number <= 0 (a rounding error above 0 is 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value > 1e-3:
        raise ValueError(f"logprob {value!r} is not a log-probability")
    return min(float(value), 0.0)


def _token_count(usage: dict, name: str) -> int:
    """``usage[name]``: a count of tokens (absent or null counts as 0)."""
    value = usage.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"usage.{name} {value!r} is not a token count")
    return value


class OpenAICompatible(ModelAdapter):
    """An OpenAI-compatible chat-completions endpoint."""

    ARGS: ClassVar[dict] = {
        "base_url": str, "max_side": int, "detail": str, "max_tokens": int, "temperature": float, "timeout": float,
        "max_retries": int, "backoff": float, "top_logprobs": int, "api_key_env": str,
    }  # fmt: skip
    supports_scores = True

    @classmethod
    def create(cls, spec: str, value: str, args: dict, *, seed: int, concurrency: int) -> OpenAICompatible:
        return cls(spec, value, concurrency=concurrency, **args)

    def __init__(
        self,
        spec: str,
        model: str,
        *,
        base_url: str | None = None,
        concurrency: int = 4,
        max_side: int = 1024,
        detail: str = "auto",
        max_tokens: int = 16,
        temperature: float = 0.0,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        top_logprobs: int = 10,
        api_key_env: str = "OPENAI_API_KEY",
    ) -> None:
        super().__init__(spec)
        from openai import AsyncOpenAI

        key = os.environ.get(api_key_env)
        if not key and base_url is None:
            raise InstructIADError(f"{spec}: set the API key in the environment variable {api_key_env}")
        self.model, self.base_url = model, base_url
        self.concurrency, self.max_side, self.detail = int(concurrency), int(max_side), detail
        self.max_tokens, self.temperature, self.timeout = int(max_tokens), float(temperature), float(timeout)
        self.max_retries, self.backoff, self.top_logprobs = int(max_retries), float(backoff), int(top_logprobs)
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "requests": 0, "retries": 0}
        self._urls: dict[str, str] = {}
        # One event loop and one client for the whole run: a client per batch would redo the
        # TLS set-up and drop the connection pool every time.
        self._loop = asyncio.new_event_loop()
        self._client = AsyncOpenAI(base_url=base_url, api_key=key or "EMPTY", max_retries=0, timeout=self.timeout)

    def cache_params(self) -> dict:
        return {
            "model": self.model,
            "base_url": self.base_url,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "max_side": self.max_side,
            "detail": self.detail,
            "top_logprobs": self.top_logprobs,
        }

    def _messages(self, request: Request) -> list[dict]:
        def part(p: dict) -> dict:
            if p["type"] == "image":
                return {
                    "type": "image_url",
                    "image_url": {"url": data_url(p["image"], self.max_side), "detail": self.detail},
                }
            return {"type": "text", "text": p["text"]}

        return [{"role": m["role"], "content": [part(p) for p in m["content"]]} for m in request.messages]

    def generate(self, requests: list[Request]) -> list[Response]:
        return self._collect(requests, scores=False)

    def score_options(self, requests: list[Request]) -> list[Response]:
        return self._collect(requests, scores=True)

    def run_batch(self, requests: list[Request], scoring: str, on_response) -> None:
        self._loop.run_until_complete(self._all(requests, scoring == "options", on_response))

    def _collect(self, requests: list[Request], scores: bool) -> list[Response]:
        answers: list[Response | None] = [None] * len(requests)
        self._loop.run_until_complete(
            self._all(requests, scores, lambda index, answer: answers.__setitem__(index, answer))
        )
        return answers

    async def _all(self, requests: list[Request], scores: bool, on_response) -> None:
        """Send every request with at most ``concurrency`` in flight; report each as it arrives."""
        limit = asyncio.Semaphore(self.concurrency)

        async def one(index: int, request: Request) -> None:
            async with limit:
                on_response(index, await self._with_retries(self._client, request, scores))

        await asyncio.gather(*(one(i, r) for i, r in enumerate(requests)))

    def close(self) -> None:
        self._loop.run_until_complete(self._client.close())
        self._loop.close()

    async def _with_retries(self, client, request: Request, scores: bool) -> Response:
        import openai

        arguments = {"model": self.model, "messages": self._messages(request), "max_tokens": self.max_tokens,
                     "temperature": self.temperature}  # fmt: skip
        if scores:
            arguments |= {"logprobs": True, "top_logprobs": self.top_logprobs, "max_tokens": 1}
        for attempt in range(self.max_retries + 1):
            began = time.perf_counter()
            try:
                # client.post is the SDK's documented low-level call: the same request, retries
                # off, the same errors as chat.completions.create, but without its per-request
                # transform of the typed parameters and pydantic parsing of the answer (together
                # ~3 ms of CPU a request with an image, the bottleneck at high concurrency): the
                # arguments are plain JSON already, and the body is read as JSON.
                completion = await client.post("/chat/completions", body=arguments, cast_to=dict)
                return self._response(completion, request, scores, time.perf_counter() - began)
            except (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError,
                    openai.APIConnectionError, openai.APIResponseValidationError, _Malformed,
                    json.JSONDecodeError) as error:  # fmt: skip
                problem = _describe(error)
                if attempt == self.max_retries:
                    return Response(error=f"{problem} (after {attempt + 1} attempts)")
                self.usage["retries"] += 1
                await asyncio.sleep(_retry_after(error) or self.backoff * 2**attempt * (0.5 + random.random()))
            except openai.APIStatusError as error:  # other 4xx: retrying will not help
                return Response(error=_describe(error))
        raise AssertionError("unreachable")

    def _response(self, completion: dict, request: Request, scores: bool, latency: float) -> Response:
        """A chat-completion body (JSON) as a Response; raises _Malformed when it is not one.

        Everything read from the body is checked here, before any of it is counted or kept: a
        body of the wrong shape is a failed request (retried, then recorded), never a crash.
        """
        try:
            choice = completion["choices"][0]
            text = choice["message"]["content"]
            if text is not None and not isinstance(text, str):
                raise ValueError(f"message content is {type(text).__name__}, not a string")
            usage = completion.get("usage") or {}
            if not isinstance(usage, dict):
                raise ValueError(f"usage is {type(usage).__name__}, not an object")
            prompt_tokens = _token_count(usage, "prompt_tokens")
            completion_tokens = _token_count(usage, "completion_tokens")
            probs = None
            if scores:
                content = (choice.get("logprobs") or {}).get("content") or []
                top_logprobs = (content[0].get("top_logprobs") or []) if content else []
                probs = letter_probabilities(top_logprobs, sorted(request.options))
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as error:
            detail = f": {error}" if isinstance(error, ValueError) else f" ({type(error).__name__})"
            raise _Malformed(f"malformed response body{detail}") from None
        if not scores and text is None:
            raise _Malformed("response has no message content")
        self.usage["requests"] += 1
        self.usage["prompt_tokens"] += prompt_tokens
        self.usage["completion_tokens"] += completion_tokens
        if probs is not None:
            return Response(probs=probs, latency_s=latency)
        return Response(text=text, latency_s=latency)  # no usable logprobs: the text is scored instead


class _Malformed(Exception):
    """A 200 response whose body is not a usable chat completion."""


def _describe(error: Exception) -> str:
    status = getattr(error, "status_code", None)
    kind = type(error).__name__
    return f"HTTP {status} {kind}" if status else f"{kind}: {str(error).splitlines()[0][:200] if str(error) else ''}"


def _retry_after(error: Exception) -> float | None:
    response = getattr(error, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return min(float(value), 120.0) if value is not None else None
    except ValueError:
        return None
