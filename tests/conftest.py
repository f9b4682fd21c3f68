"""Shared fixtures: small generated sources and datasets built from them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before `datasets` is imported: its caches go to a throwaway folder, and nothing goes online.
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="triad-test-hf-cache-")
os.environ["TRIAD_EXPERT_CACHE"] = tempfile.mkdtemp(prefix="triad-test-expert-cache-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

import pytest

from instructiad.export import build_dataset
from instructiad.sources import synthetic


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A small synthetic source: 3 categories x (2 train, 1 test good, 3 defects x 2)."""
    return synthetic.generate(tmp_path_factory.mktemp("synthetic") / "src", n_train=2, n_test_good=1, size=96)


@pytest.fixture(scope="session")
def built(synthetic_root, tmp_path_factory) -> Path:
    """The synthetic source built into a dataset folder (treat as read-only)."""
    out = tmp_path_factory.mktemp("built") / "dataset"
    build_dataset([("synthetic", synthetic_root)], out)
    return out
