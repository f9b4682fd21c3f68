"""The dataset card's Hub metadata: licences as Hub ids, sizes, tasks, sources and citations,
read back with huggingface_hub's DatasetCard and checked the way the Hub checks it (its
``validate-yaml`` endpoint, here the fake Hub on 127.0.0.1)."""

from __future__ import annotations

import huggingface_hub.constants
import pytest
from huggingface_hub import DatasetCard

from instructiad.card import TRIAD_CITATION, TRIAD_PAPER
from instructiad.card_metadata import LICENSES, Licence, metadata_problems, size_category
from instructiad.export import build_dataset
from instructiad.sources import READERS
from tests import layouts
from tests.fake_hub import FakeHub
from triad_eval.cli import main


@pytest.fixture
def hub(monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    with FakeHub() as server:
        monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", server.url)  # where RepoCard.validate posts
        yield server


@pytest.fixture(scope="module")
def four_sources(tmp_path_factory):
    """MVTec AD, VisA, MVTec LOCO and Real-IAD layouts built into one folder."""
    root = tmp_path_factory.mktemp("four")
    layouts.make_mvtec_ad(root / "mvtec", categories={"bottle": ("broken_large",)}, n=1)
    layouts.make_visa_prepared(root / "visa", categories=("candle",))
    layouts.make_mvtec_loco(root / "loco", categories=("pushpins",))
    layouts.make_real_iad(root / "realiad", categories=("toy_brick",))
    out = root / "dataset"
    sources = [("mvtec_ad", root / "mvtec"), ("visa", root / "visa"), ("mvtec_loco", root / "loco")]
    build_dataset([*sources, ("real_iad", root / "realiad")], out)
    return out


def test_the_card_of_a_build_passes_the_hubs_checks(built, hub):
    card = DatasetCard.load(built / "README.md")
    data = card.data.to_dict()
    assert metadata_problems(data) == []
    card.validate(repo_type="dataset")  # the Hub's endpoint; raises ValueError on a problem
    assert hub.validated_cards == [str(card)]
    assert data["license"] == ["cc-by-4.0"] and "license_name" not in data
    assert data["size_categories"] == ["n<1K"] and data["language"] == ["en"]
    assert data["source_datasets"] == ["original"]  # the synthetic source is first published here
    assert "multiple-choice" in data["task_categories"] and "multiple-choice-qa" in data["task_ids"]
    assert data["annotations_creators"] == ["expert-generated", "machine-generated"]
    assert TRIAD_PAPER in card.text and TRIAD_CITATION in card.text


def test_every_source_is_licensed_sized_and_cited(four_sources, hub):
    card = DatasetCard.load(four_sources / "README.md")
    data = card.data.to_dict()
    assert metadata_problems(data) == []
    card.validate(repo_type="dataset")
    assert data["license"] == ["cc-by-4.0", "cc-by-nc-sa-4.0"]  # VisA; MVTec AD, LOCO and Real-IAD
    assert data["source_datasets"] == ["extended|mvtec_ad", "extended|visa", "extended|mvtec_loco", "extended|real_iad"]
    citations = card.text.split("```bibtex\n")[1].split("```")[0]
    for name in ("mvtec_ad", "visa", "mvtec_loco", "real_iad"):
        assert READERS[name].citation in citations
    keys = [line.split("{")[1].rstrip(",") for line in citations.splitlines() if line.startswith("@")]
    assert keys == [
        "li2025triad", "bergmann2019mvtec", "bergmann2021mvtec", "zou2022spot", "bergmann2022beyond", "wang2024realiad",
    ]  # fmt: skip
    assert "| visa | VisA" in card.text and "| cc-by-4.0 |" in card.text


def test_a_folder_source_states_its_own_licence(tmp_path, hub, capsys):
    layouts.make_folder(tmp_path / "line")
    out = tmp_path / "out"
    licence = "folder:license=other,license_name=acme-inspection-1.0,license_link=https://acme.example/terms"
    assert main(["build", "--source", f"folder={tmp_path / 'line'}", "--source-args", licence, "--out", str(out)]) == 0
    card = DatasetCard.load(out / "README.md")
    data = card.data.to_dict()
    assert data["license"] == ["other"] and data["license_name"] == "acme-inspection-1.0"
    assert data["license_link"] == "https://acme.example/terms" and data["source_datasets"] == ["original"]
    card.validate(repo_type="dataset")
    assert "| acme-inspection-1.0 (https://acme.example/terms) |" in card.text
    unstated = tmp_path / "unstated"
    assert main(["build", "--source", f"folder={tmp_path / 'line'}", "--out", str(unstated)]) == 0
    assert DatasetCard.load(unstated / "README.md").data.license == ["unknown"]  # we cannot know it


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("license=cc-by-nc-sa", "license 'cc-by-nc-sa' is not a Hub licence id"),
        ("license=other,license_link=https://acme.example/terms", "license other needs license_name"),
        ("license=other,license_name=Acme Terms,license_link=https://a.example/t", "lower-case slug"),
        ("license=other,license_name=acme-1.0", "license other needs license_link"),
        ("license=cc-by-4.0,license_name=acme-1.0", "go with license other, not cc-by-4.0"),
        ("license_link=https://acme.example/terms", "go with license other, not unknown"),
    ],
)
def test_a_bad_folder_licence_stops_the_build_in_one_line(tmp_path, capsys, options, message):
    layouts.make_folder(tmp_path / "line")
    out = tmp_path / "out"
    code = main(
        ["build", "--source", f"folder={tmp_path / 'line'}", "--source-args", f"folder:{options}", "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and message in err and "--source-args folder" in err
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_the_checks_catch_what_the_hub_refuses(built, hub):
    text = (built / "README.md").read_text()
    bad = text.replace("- cc-by-4.0\n", "- cc-by-nc-sa\n", 1).replace("- n<1K\n", "- tiny\n", 1)
    bad = bad.replace("- multiple-choice-qa\n", "- extractive-qa\n", 1)
    problems = metadata_problems(DatasetCard(bad).data.to_dict())
    assert problems == [
        "license: license 'cc-by-nc-sa' is not a Hub licence id (use one of the Hub's ids, or other)",
        "size_categories: 'tiny' is not one of the Hub's values",
        "task_ids: 'extractive-qa' is no sub-task of the listed task_categories",
    ]
    with pytest.raises(ValueError, match="is not a Hub licence id"):
        DatasetCard(bad).validate(repo_type="dataset")
    assert metadata_problems({"license": "other"})[:2] == [
        "license: license other needs license_name, a lower-case slug like my-license-1.0 (got None)",
        "license: license other needs license_link, an http(s) URL or LICENSE(.md) (got None)",
    ]
    assert metadata_problems({}) == ["license: missing"]


def test_every_reader_states_a_hub_licence_id():
    """The card's license_name and license_link come from a folder source's options only."""
    for reader in READERS.values():
        assert reader.license in LICENSES and reader.license != "other", reader.name
        assert reader.citation.startswith("@") or reader.name in ("folder", "synthetic"), reader.name


def test_size_categories_follow_the_hubs_steps():
    assert [size_category(n) for n in (0, 999, 1000, 9999, 10_000, 150_000, 10**12)] == [
        "n<1K", "n<1K", "1K<n<10K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "n>1T",
    ]  # fmt: skip
    assert Licence.of("cc-by-4.0").problems() == [] and str(Licence("other", "x-1", "LICENSE")) == "x-1 (LICENSE)"
