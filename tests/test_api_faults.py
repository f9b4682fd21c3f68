"""Faults at the model and CLI edges: malformed 200 answers from an OpenAI-compatible server,
pickle-only `hf:` folders, and a reader that closes `triad`'s output pipe."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.openai_stub import OpenAIStub
from triad_eval.api import Response
from triad_eval.cache import ResponseCache
from triad_eval.cli import main
from triad_eval.parsing import parse_answer


@pytest.fixture
def stub(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with OpenAIStub() as server:
        yield server


def evaluate(capsys, built, out, stub, *extra):
    args = ["eval", "--model", "openai:stub-model", "--base-url", stub.url, "--data", built, "--config", "synthetic"]
    args += ["--tasks", "discrimination", "--out", out, "--limit", "2", "--model-args", "backoff=0.01,max_retries=1"]
    code = main([str(a) for a in [*args, *extra]])
    _, err = capsys.readouterr()
    return code, err


def predictions(folder):
    return [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]


def _set(path: str, value):
    """An edit of a completion body: ``path`` (dotted, ints index lists) set to ``value``."""

    def mangle(completion: dict) -> None:
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        target = completion
        for part in parents:
            target = target[part]
        target[last] = value

    return mangle


def _first_logprob(edit):
    def mangle(completion: dict) -> None:
        edit(completion["choices"][0]["logprobs"]["content"][0]["top_logprobs"][0])

    return mangle


SHAPES = {
    "content is an int": ("generate", _set("choices.0.message.content", 5), "message content is int"),
    "content is a list": (
        "generate",
        _set("choices.0.message.content", [{"type": "text", "text": "A"}]),
        "message content is list",
    ),
    "prompt_tokens is a string": ("generate", _set("usage.prompt_tokens", "many"), "usage.prompt_tokens 'many'"),
    "usage is a list": ("generate", _set("usage", [100, 2]), "usage is list"),
    "a logprob entry without logprob": ("options", _first_logprob(lambda e: e.pop("logprob")), "logprob None"),
    "logprob is 1e6": ("options", _first_logprob(lambda e: e.update(logprob=1e6)), "logprob 1000000.0"),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_malformed_answer_is_a_failed_request_and_resume_asks_again(built, tmp_path, stub, capsys, shape):
    scoring, stub.mangle, said = SHAPES[shape]
    out = tmp_path / "run"
    code, err = evaluate(capsys, built, out, stub, "--scoring", scoring)
    assert code == 1 and "2 request(s) failed" in err, err
    rows = predictions(out)
    assert all(r["status"] == "failed" and r["parsed"] is None and r["raw"] is None for r in rows)
    assert "malformed response body" in rows[0]["error"] and said in rows[0]["error"], rows[0]["error"]
    assert rows[0]["error"].endswith("(after 2 attempts)") and len(stub.bodies) == 2 * 2
    assert json.loads((out / "usage.json").read_text())["prompt_tokens"] == 0  # nothing counted from a bad body

    code, err = evaluate(capsys, built, out, stub, "--scoring", scoring, "--resume", "--allow-failures")
    assert code == 0, err
    assert len(stub.bodies) == 2 * 4  # failures are not cached: asked again, failed again
    stub.mangle = None
    assert evaluate(capsys, built, out, stub, "--scoring", scoring, "--resume")[0] == 0
    assert all(r["status"] == "ok" for r in predictions(out))


def test_parsing_and_the_cache_take_only_strings(tmp_path):
    with pytest.raises(TypeError, match="not int"):
        parse_answer(5, {"A": "Yes", "B": "No"})
    cache = ResponseCache(tmp_path / "cache.sqlite")
    try:
        with pytest.raises(TypeError, match="not list"):
            cache.put_many([("k1", Response(text="A")), ("k2", Response(text=["A"]))])
        assert cache.count() == 0  # nothing half-written
    finally:
        cache.close()


def test_a_pickle_only_hf_folder_is_one_line_and_never_unpickled(built, tmp_path, capsys, monkeypatch):
    pytest.importorskip("transformers")
    import torch
    from safetensors.torch import load_file

    from tests import tiny_models

    folder = tiny_models.llava_onevision(tmp_path / "pickled")
    weights = {}
    for path in folder.glob("*.safetensors"):
        weights.update(load_file(path))
        path.unlink()
    torch.save(weights, folder / "pytorch_model.bin")
    loads = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a))
    capsys.readouterr()
    args = ["eval", "--model", f"hf:{folder}", "--data", str(built), "--config", "synthetic", "--out", tmp_path / "r"]
    assert main([str(a) for a in args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"triad: error: {folder}: only pickle weights (pytorch_model.bin); safetensors are required "
        "(re-save the model with save_pretrained, which writes model.safetensors)"
    ]
    assert loads == [] and not (tmp_path / "r").exists()


def test_a_reader_that_closes_the_pipe_early_gets_no_traceback(built):
    process = subprocess.Popen(
        [sys.executable, "-m", "triad_eval", "info", str(built)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    process.stdout.close()  # like `| head -0`: nobody reads what triad writes
    _, err = process.communicate(timeout=60)
    assert err == b""
    assert process.returncode == 141
