"""`openai:<model>` against an OpenAI-compatible server on 127.0.0.1 that injects faults."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from tests.openai_stub import OpenAIStub
from triad_eval.adapters.openai_api import data_url, letter_probabilities
from triad_eval.api import ImageRef
from triad_eval.cli import main

SECRET = "sk-test-secret-do-not-log"


@pytest.fixture
def stub(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with OpenAIStub() as server:
        yield server


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def evaluate(built, out, stub, *extra):
    args = ["eval", "--model", "openai:stub-model", "--base-url", stub.url, "--data", built, "--config", "synthetic"]
    return [*args, "--tasks", "discrimination", "--out", out, *extra]


def predictions(folder):
    return [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]


def test_a_run_sends_images_as_data_urls_and_keeps_the_key_out_of_every_file(built, tmp_path, stub, capsys):
    stub.answer = lambda prompt: "The answer is A."
    out = tmp_path / "run"
    code, _, _ = run(capsys, *evaluate(built, out, stub, "--model-args", "detail=low,max_tokens=8"))
    assert code == 0
    rows = predictions(out)
    assert all(r["status"] == "ok" and r["parsed"] == "A" for r in rows)
    body = stub.bodies[0]
    parts = body["messages"][0]["content"]
    assert parts[0]["type"] == "image_url" and parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert parts[0]["image_url"]["detail"] == "low" and body["max_tokens"] == 8 and body["temperature"] == 0.0
    assert {k.lower(): v for k, v in stub.headers[0].items()}["authorization"] == f"Bearer {SECRET}"
    usage = json.loads((out / "usage.json").read_text())
    assert usage["requests"] == len(rows) and usage["prompt_tokens"] == 100 * len(rows)
    for path in out.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path


def test_an_image_too_large_for_the_api_is_resized():
    big = Image.new("RGB", (3000, 1500), "white")
    buffer = io.BytesIO()
    big.save(buffer, format="JPEG")
    url = data_url(ImageRef("x" * 64, buffer.getvalue()), max_side=768)
    import base64

    sent = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert sent.size == (768, 384) and url.startswith("data:image/png;base64,")
    small = Image.new("RGB", (100, 50))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG")
    assert data_url(ImageRef("y" * 64, buffer.getvalue()), 768).startswith("data:image/jpeg;base64,")


@pytest.mark.parametrize("fault", ["429", "500", "malformed", "garbage", "timeout"])
def test_transient_faults_are_retried(built, tmp_path, stub, capsys, fault):
    stub.slow_s = 4.0  # a "timeout" answer comes far later than the client waits; others far sooner
    stub.faults.extend([fault, fault])
    out = tmp_path / "run"
    args = evaluate(built, out, stub, "--limit", "3", "--model-args", "backoff=0.01,timeout=1.5")
    code, _, _ = run(capsys, *args)
    assert code == 0
    assert all(r["status"] == "ok" for r in predictions(out))
    assert json.loads((out / "usage.json").read_text())["retries"] == 2
    assert len(stub.bodies) == 3 + 2


def test_a_request_that_keeps_failing_is_recorded_as_failed_and_never_scored(built, tmp_path, stub, capsys):
    stub.always = "500"
    out = tmp_path / "run"
    code, stdout, err = run(
        capsys, *evaluate(built, out, stub, "--limit", "2", "--model-args", "backoff=0.01,max_retries=2")
    )
    assert code == 1 and "request(s) failed" in err and "WARNING" in stdout
    rows = predictions(out)
    assert all(r["status"] == "failed" and r["parsed"] is None for r in rows)
    assert rows[0]["error"] == "HTTP 500 InternalServerError (after 3 attempts)"
    assert len(stub.bodies) == 2 * 3
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["tasks"]["discrimination"]["zero_shot"]["scored"] == 0


def test_a_client_error_is_not_retried(built, tmp_path, stub, capsys):
    stub.always = "400"
    out = tmp_path / "run"
    assert run(capsys, *evaluate(built, out, stub, "--limit", "1", "--allow-failures"))[0] == 0
    assert len(stub.bodies) == 1 and predictions(out)[0]["error"].startswith("HTTP 400")


def test_option_probabilities_come_from_logprobs(built, tmp_path, stub, capsys):
    out = tmp_path / "run"
    assert run(capsys, *evaluate(built, out, stub, "--scoring", "options", "--limit", "2"))[0] == 0
    assert stub.bodies[0]["logprobs"] is True and stub.bodies[0]["max_tokens"] == 1
    rows = predictions(out)
    assert rows[0]["probs"] == pytest.approx({"A": 0.7 / 0.9, "B": 0.2 / 0.9})
    assert rows[0]["parsed"] == "A"
    stub.token_probs = None  # a server without logprobs: the text is scored instead
    assert run(capsys, *evaluate(built, tmp_path / "text", stub, "--scoring", "options", "--limit", "1"))[0] == 0
    assert predictions(tmp_path / "text")[0]["parsed"] == "B"


def test_letter_probabilities_handle_tokenizer_variants():
    def Token(token, p):
        return {"token": token, "logprob": __import__("math").log(p)}

    probs = letter_probabilities(
        [Token("▁A", 0.3), Token(" B", 0.3), Token("(C", 0.2), Token("yes", 0.2)], ["A", "B", "C"]
    )
    assert probs == pytest.approx({"A": 0.375, "B": 0.375, "C": 0.25})
    assert letter_probabilities([Token("yes", 1.0)], ["A", "B"]) is None


def test_requests_run_with_the_concurrency_asked(built, tmp_path, stub, capsys):
    stub.latency_s = 0.2
    out = tmp_path / "run"
    began = time.perf_counter()
    assert run(capsys, *evaluate(built, out, stub, "--limit", "16", "--concurrency", "8"))[0] == 0
    elapsed = time.perf_counter() - began
    assert stub.max_in_flight == 8
    assert elapsed < len(stub.bodies) * 0.2 / 2  # far below sequential time


def test_a_missing_api_key_is_a_clear_error(built, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    args = ["eval", "--model", "openai:gpt-4o", "--data", built, "--config", "synthetic", "--out", tmp_path / "run"]
    code, _, err = run(capsys, *args)
    assert code == 1 and "set the API key in the environment variable OPENAI_API_KEY" in err
    assert not (tmp_path / "run").exists()


def test_ctrl_c_keeps_the_cache_and_resume_finishes(built, tmp_path, stub):
    stub.latency_s = 0.3  # slow enough that the run is still going when Ctrl-C comes, even on a busy machine
    out = tmp_path / "run"
    command = [sys.executable, "-m", "triad_eval", *map(str, evaluate(built, out, stub, "--batch-size", "2"))]
    # a shell that starts jobs in the background (CI runners, `cmd &`) leaves SIGINT ignored,
    # and an ignored signal is inherited: give the run the default, as a terminal would
    process = subprocess.Popen(
        command, stderr=subprocess.PIPE, env=os.environ.copy(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.time() + 30
    while len(stub.bodies) < 6 and time.time() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130 and b"interrupted" in err
    asked = len(stub.bodies)
    stub.latency_s = 0.02
    finished = subprocess.run(
        [*command, "--resume"], capture_output=True, text=True, env=os.environ.copy(), check=False
    )
    assert finished.returncode == 0, finished.stderr
    rows = predictions(out)
    assert all(r["status"] == "ok" for r in rows)
    assert len(stub.bodies) - asked <= len(rows) - 4  # at least the batches done before Ctrl-C were not asked again


def test_a_roster_baseline_runs_against_a_compatible_server(built, tmp_path, stub, capsys):
    code, out, _ = run(capsys, "baselines")
    assert code == 0
    for name in ("llava-onevision-0.5b", "llava-onevision-7b", "qwen2.5-vl-3b", "qwen2.5-vl-7b", "internvl3-2b",
                 "smolvlm-2.2b", "gpt-4o", "gpt-4o-mini"):  # fmt: skip
        assert name in out
    args = ["eval", "--model", "baseline:gpt-4o-mini", "--base-url", stub.url, "--data", built, "--config", "synthetic"]
    assert run(capsys, *args, "--limit", "2", "--tasks", "discrimination", "--out", tmp_path / "run")[0] == 0
    assert (
        stub.bodies[0]["model"] == "gpt-4o-mini"
        and stub.bodies[0]["messages"][0]["content"][0]["image_url"]["detail"] == "high"
    )
    code, _, err = run(
        capsys, "eval", "--model", "baseline:gpt-5", "--data", built, "--config", "synthetic", "--out", tmp_path / "x"
    )
    assert code == 1 and "unknown baseline 'gpt-5'" in err


def test_shards_on_two_workers_against_one_served_model_merge_into_the_single_run(built, tmp_path, stub, capsys):
    """The scale-out recipe: a large model behind vLLM's OpenAI-compatible server (tensor
    parallel on its GPUs), and `--shard i/n` workers that share it; `triad merge` joins them."""
    stub.answer = lambda prompt: "B" if "No" in prompt.split("\n")[1] else "A"
    single = tmp_path / "single"
    assert run(capsys, *evaluate(built, single, stub, "--concurrency", "4"))[0] == 0
    workers = []
    for i in range(2):
        command = [
            sys.executable,
            "-m",
            "triad_eval",
            *map(str, evaluate(built, tmp_path / f"w{i}", stub, "--shard", f"{i}/2")),
        ]
        workers.append(
            subprocess.Popen([*command, "--concurrency", "4"], stdout=subprocess.DEVNULL, env=os.environ.copy())
        )
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    assert run(capsys, "merge", tmp_path / "w0", tmp_path / "w1", "--out", tmp_path / "merged")[0] == 0
    strip = lambda rows: [{k: v for k, v in r.items() if k != "latency_s"} for r in rows]  # noqa: E731
    assert strip(predictions(tmp_path / "merged")) == strip(predictions(single))
    assert (tmp_path / "merged" / "metrics.json").read_bytes() == (single / "metrics.json").read_bytes()
