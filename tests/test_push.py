"""`triad push` against a Hub-compatible HTTP server on 127.0.0.1."""

from __future__ import annotations

import huggingface_hub.constants
import pytest

from instructiad.errors import InstructIADError
from instructiad.export import build_dataset
from instructiad.hub import push
from tests.fake_hub import FakeHub
from triad_eval.cli import main


@pytest.fixture
def hub(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # the suite runs offline
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    with FakeHub() as server:
        yield server


def test_push_uploads_every_file_and_tags_the_commit(hub, built):
    lines = push(built, "triad/instructiad", endpoint=hub.url)
    files = hub.repos["triad/instructiad"]
    assert files == {p.relative_to(built).as_posix(): p.read_bytes() for p in built.rglob("*") if p.is_file()}
    assert hub.tags["triad/instructiad"] == {"v0.1.0": hub.commits[-1]["oid"]}
    assert "fingerprint" in hub.commits[-1]["summary"]
    assert lines[-1].startswith("uploaded 8 files") and "tag v0.1.0" in lines[-1]
    assert hub.validated_cards and "config_name: all" in hub.validated_cards[-1]


def test_a_new_version_replaces_the_data_files_of_the_old_one(hub, synthetic_root, tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    build_dataset([("synthetic", synthetic_root)], old, version="0.1.0", max_shard_bytes=50_000)
    build_dataset([("synthetic", synthetic_root)], new, version="0.2.0")
    push(old, "me/iad", endpoint=hub.url)
    assert len([n for n in hub.repos["me/iad"] if n.startswith("data/")]) > 2
    push(new, "me/iad", endpoint=hub.url, revision="release-2")
    assert sorted(n for n in hub.repos["me/iad"] if n.startswith("data/")) == [
        "data/synthetic/test-00000-of-00001.parquet",
        "data/synthetic/train-00000-of-00001.parquet",
    ]
    assert set(hub.tags["me/iad"]) == {"v0.1.0", "release-2"}


def test_pushing_a_tag_that_exists_fails_with_one_line_before_committing(hub, built, capsys):
    push(built, "me/iad", endpoint=hub.url)
    commits = len(hub.commits)
    with pytest.raises(InstructIADError, match=r"me/iad: tag v0.1.0 already exists; .*nothing was uploaded"):
        push(built, "me/iad", endpoint=hub.url)
    code = main(["push", str(built), "--repo", "me/iad", "--endpoint", hub.url])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and "already exists" in err
    assert len(hub.commits) == commits  # the second push committed nothing


def test_dry_run_touches_no_network(hub, built, capsys):
    assert main(["push", str(built), "--repo", "me/iad", "--endpoint", hub.url, "--dry-run"]) == 0
    assert hub.requests == []
    assert "dry run: would upload 8 files" in capsys.readouterr().out
