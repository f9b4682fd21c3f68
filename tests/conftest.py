"""Shared fixtures: small generated sources and datasets built from them."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before `datasets` is imported: its caches go to a throwaway folder, and nothing goes online.
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="triad-test-hf-cache-")
os.environ["TRIAD_EXPERT_CACHE"] = tempfile.mkdtemp(prefix="triad-test-expert-cache-")
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="triad-test-cache-")  # anomalib's weights folder
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


@pytest.fixture(scope="session")
def maps(built, tmp_path_factory):
    """A map per test record: its defect mask as a PNG (anomalies), a constant .npy (normal)."""
    import numpy as np
    from PIL import Image

    from triad_eval.data import open_dataset

    folder = tmp_path_factory.mktemp("maps")
    for record in open_dataset(str(built), "synthetic").records:
        path = folder / f"{record['id']}"
        path.parent.mkdir(parents=True, exist_ok=True)
        if record["label"] == 1:
            mask = load_dataset_mask(built, record["id"])
            Image.fromarray(mask).save(f"{path}.png")
        else:
            np.save(f"{path}.npy", np.full((24, 24), 0.3, np.float32))
    return folder


def load_dataset_mask(built, record_id):
    """The mask of one record of the built synthetic dataset, as a numpy array."""
    import numpy as np
    from datasets import load_dataset

    ds = load_dataset(str(built), "synthetic", split="test")
    row = ds[list(ds["id"]).index(record_id)]
    return np.asarray(row["mask"])
