"""`triad push-results` and `triad leaderboard --space` against the Hub-compatible server on
127.0.0.1 (tests/fake_hub.py): runs and their leaderboard in one commit, the Space's tables equal
to the leaderboard's, and the Space itself started and fetched over HTTP where gradio is installed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import huggingface_hub.constants
import pytest
import yaml
from huggingface_hub import SpaceCard

from tests.test_architecture import imports_of, project_modules
from triad_eval import leaderboard, space_app
from triad_eval.cli import main
from triad_eval.hub_results import plan_results
from triad_eval.space import GRADIO_VERSION

MODELS = (("chance", "zero_shot,process,no_image"), ("majority", "zero_shot,process"))


@pytest.fixture(scope="module")
def runs(built, tmp_path_factory) -> dict[str, Path]:
    """Finished runs: chance (with its blind twin), majority, and always:B in two shards."""
    folder = tmp_path_factory.mktemp("runs")
    data = ["--data", str(built), "--config", "synthetic", "--tasks", "discrimination,defect_type,root_cause"]
    found = {}
    for model, conditions in MODELS:
        found[model] = folder / model
        assert main(["eval", "--model", model, *data, "--conditions", conditions, "--out", str(found[model])]) == 0
    for shard in (0, 1):
        found[f"shard{shard}"] = folder / f"always_b.{shard}"
        args = ["eval", "--model", "always:B", *data, "--shard", f"{shard}/2", "--out", str(found[f"shard{shard}"])]
        assert main(args) == 0
    return found


@pytest.fixture
def hub(monkeypatch):
    from tests.fake_hub import FakeHub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the suite runs offline
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    with FakeHub() as server:
        yield server


def push(hub, *folders, extra=()) -> int:
    return main(["push-results", *map(str, folders), "--repo", "me/results", "--endpoint", hub.url, *extra])


def test_runs_and_their_leaderboard_go_up_in_one_commit(hub, runs, capsys):
    assert push(hub, *runs.values(), extra=["--revision", "results-1"]) == 0
    out = capsys.readouterr().out
    files = hub.repos["me/results"]
    names = {"config.json", "metrics.json", "predictions.jsonl", "summary.txt"}
    expected = {f"runs/{folder.name}/{name}" for folder in runs.values() for name in names}
    assert set(files) == expected | {"leaderboard.json"} and len(hub.commits) == 1
    for folder in runs.values():
        assert (folder / "cache.sqlite").is_file()  # there, and never uploaded
        for name in names:
            assert files[f"runs/{folder.name}/{name}"] == (folder / name).read_bytes()
    board = json.loads(files["leaderboard.json"])
    local = leaderboard.build_board(leaderboard.collect(list(runs.values())))
    for entry in local["entries"]:
        entry["runs"] = [f"runs/{Path(run).name}" for run in entry["runs"]]
    assert board == local  # what `triad leaderboard` computes, with the runs named as in the repo
    assert [e["runs"] for e in board["entries"] if e["model"] == "always:B"] == [
        ["runs/always_b.0", "runs/always_b.1"]
    ]  # shards of one evaluation, joined into one entry
    assert hub.tags["me/results"] == {"results-1": hub.commits[-1]["oid"]}
    assert "uploaded 17 files" in out and "tag results-1" in out


def test_a_later_push_replaces_the_runs_and_a_tag_keeps_the_old_ones(hub, runs, capsys):
    from triad_eval.space_app import load_board

    assert push(hub, runs["chance"], runs["majority"], extra=["--revision", "first"]) == 0
    assert push(hub, runs["majority"]) == 0
    assert "removed 4 file(s) of runs not pushed again" in capsys.readouterr().out
    assert not [name for name in hub.repos["me/results"] if name.startswith("runs/chance/")]
    assert len(hub.commits) == 2
    code = push(hub, runs["chance"], extra=["--revision", "first"])
    one_line_error(capsys, code, "me/results: tag first already exists; choose another --revision")
    assert len(hub.commits) == 2  # refused before the commit
    now, then = load_board("me/results", "main", hub.url), load_board("me/results", "first", hub.url)
    assert [e["model"] for e in now["entries"]] == ["majority"]
    assert sorted(e["model"] for e in then["entries"]) == ["chance", "majority"]


def test_dry_run_lists_the_files_without_network_or_token(hub, runs, capsys, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    assert push(hub, runs["chance"], extra=["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert hub.requests == []
    assert "runs/chance/predictions.jsonl  " in out and "cache.sqlite" not in out
    assert out.strip().splitlines()[-1].startswith("dry run: would upload 5 files")


def one_line_error(capsys, code: int, message: str) -> None:
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and message in err, err


def test_an_unfinished_run_is_refused(hub, runs, tmp_path, capsys):
    unfinished = tmp_path / "unfinished"
    shutil.copytree(runs["majority"], unfinished)
    (unfinished / "metrics.json").unlink()
    one_line_error(capsys, push(hub, runs["chance"], unfinished), "not a finished run (no metrics.json)")
    (unfinished / "summary.txt").unlink()
    shutil.copy(runs["majority"] / "metrics.json", unfinished)
    one_line_error(capsys, push(hub, unfinished), "not a finished run (no summary.txt)")
    assert hub.commits == []


def test_two_runs_of_one_evaluation_are_refused(hub, runs, tmp_path, capsys):
    again = tmp_path / "chance_again"
    shutil.copytree(runs["chance"], again)
    one_line_error(capsys, push(hub, runs["chance"], again), "are both runs of one evaluation")
    twin = tmp_path / "x" / "chance"
    shutil.copytree(runs["majority"], twin)
    one_line_error(capsys, push(hub, runs["chance"], twin), "two run folders of one name; rename one")
    one_line_error(capsys, push(hub, runs["shard0"]), "need each of 0/n .. n-1/n exactly once")
    assert hub.commits == []


def test_no_token_is_refused(hub, runs, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-tokens"))
    one_line_error(capsys, push(hub, runs["chance"]), "no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    assert hub.requests == []


def test_a_secret_in_a_run_is_never_uploaded(hub, runs, capsys, monkeypatch, tmp_path):
    leaky = tmp_path / "leaky"
    shutil.copytree(runs["majority"], leaky)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-live-0123456789abcdefghijklmn")
    with (leaky / "summary.txt").open("a") as summary:
        summary.write("key used: sk-live-0123456789abcdefghijklmn\n")
    one_line_error(capsys, push(hub, leaky), "summary.txt: holds the value of $OPENAI_API_KEY; nothing was uploaded")
    monkeypatch.delenv("OPENAI_API_KEY")
    one_line_error(capsys, push(hub, leaky), "holds what looks like an OpenAI-style API key")
    assert hub.requests == []


# --- the Space --------------------------------------------------------------------------------------


def write_space(tmp_path, capsys, repo="me/results", revision="main") -> Path:
    space = tmp_path / "space"
    assert main(["leaderboard", "--space", str(space), "--repo", repo, "--revision", revision]) == 0
    capsys.readouterr()
    return space


def load_app(space: Path):
    spec = importlib.util.spec_from_file_location("space_app_written", space / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_space_shows_the_leaderboards_tables(runs, tmp_path, capsys):
    app = load_app(write_space(tmp_path, capsys))
    board = plan_results(list(runs.values())).board
    groups = app.tables(board)
    expected = leaderboard._groups(board)
    assert [g["title"] for g in groups] == [leaderboard._title(r[0]["dataset"], f) for f, r in expected.items()]
    for group, rows in zip(groups, expected.values(), strict=True):
        assert group["headline"] == leaderboard._headline(rows)
        assert group["detail"] == leaderboard._board_table(rows)
    headline = dict((row[1], row) for row in groups[0]["headline"][1])
    assert headline["chance"][9] != "-" and headline["majority"][9] == "-"  # the blind score, chance only


def test_the_space_files(tmp_path, capsys):
    space = write_space(tmp_path, capsys, revision="results-1")
    assert sorted(p.name for p in space.iterdir()) == ["README.md", "app.py", "requirements.txt"]
    card = SpaceCard.load(space / "README.md")
    assert card.data.sdk == "gradio" and card.data.sdk_version == GRADIO_VERSION and card.data.app_file == "app.py"
    app = (space / "app.py").read_text()
    assert 'os.environ.get("RESULTS_REPO", "me/results")' in app
    assert 'os.environ.get("RESULTS_REVISION", "results-1")' in app and "'discrimination'" in app
    source = Path(space_app.__file__)
    assert imports_of(source, project_modules()) == set()  # a Space has only its requirements
    assert len(set(app.splitlines()) - set(source.read_text().splitlines())) == 3  # the filled-in settings
    (tmp_path / "again").mkdir()
    again = write_space(tmp_path / "again", capsys, revision="results-1")
    assert {p.name: p.read_bytes() for p in again.iterdir()} == {p.name: p.read_bytes() for p in space.iterdir()}
    yaml.safe_load((space / "README.md").read_text().split("---\n")[1])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--space", "{tmp}/taken", "--repo", "me/results"], "Space folder already exists and is not empty"),
        (["--space", "{tmp}/new", "--repo", "results"], "--repo results: not a Hub repo id"),
        (["--space", "{tmp}/new", "--repo", "me/results", "--revision", "../x"], "not a branch, tag or commit"),
        (["--space", "{tmp}/new"], "--space needs --repo ID"),
        (["--out", "{tmp}/board"], "give RUN_DIR... --out DIR, or --space DIR --repo ID"),
        (["{tmp}/run", "--space", "{tmp}/new", "--repo", "me/results"], "RUN_DIR... and --out go together"),
    ],
)
def test_bad_space_input(tmp_path, capsys, args, message):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "app.py").write_text("mine\n")
    one_line_error(capsys, main(["leaderboard", *(a.format(tmp=tmp_path) for a in args)]), message)
    assert not (tmp_path / "new").exists() and (tmp_path / "taken" / "app.py").read_text() == "mine\n"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode("utf-8")


def test_the_space_serves_the_results_over_http(hub, runs, tmp_path, capsys):
    pytest.importorskip("gradio", reason="the space extra is not installed (pip install -e '.[space]')")
    assert push(hub, runs["chance"], runs["majority"], extra=["--revision", "results-1"]) == 0
    assert push(hub, runs["majority"]) == 0  # main moves on; the Space shows the tag
    space = write_space(tmp_path, capsys, revision="results-1")
    port = _free_port()
    env = {
        **os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"),
        "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False",
    }  # fmt: skip
    log = (tmp_path / "app.log").open("w")
    app = subprocess.Popen([sys.executable, "app.py"], cwd=space, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        page = None
        deadline = time.monotonic() + 90
        while page is None and time.monotonic() < deadline and app.poll() is None:
            try:
                page = _get(f"http://127.0.0.1:{port}/")
            except OSError:
                time.sleep(0.3)
        assert page is not None, (tmp_path / "app.log").read_text()
        config = json.loads(_get(f"http://127.0.0.1:{port}/config"))
    finally:
        app.terminate()
        app.wait(timeout=30)
        log.close()
    assert '"title":"InstructIAD leaderboard"' in page and "chance" in page  # the page carries its config
    values = {c["props"].get("label"): c["props"].get("value") for c in config["components"]}
    board = plan_results([runs["chance"], runs["majority"]]).board
    header, rows = leaderboard._headline(board["entries"])
    assert values["Headline"]["headers"] == header and values["Headline"]["data"] == rows
    header, rows = leaderboard._board_table(board["entries"])
    assert values["Detail"]["headers"] == header and values["Detail"]["data"] == rows
    assert ("GET", "/datasets/me/results/resolve/results-1/leaderboard.json") in hub.requests
