"""The manifest of a built dataset folder: file checksums and the dataset fingerprint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow.parquet as pq

import schemas
from instructiad.errors import InstructIADError

MANIFEST = "manifest.json"
_CHUNK = 4 * 2**20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class Fingerprint:
    """sha256 over ordered ``<record id>\\t<image sha256>\\n`` lines."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()

    def add(self, record_id: str, image_sha256: str) -> None:
        self._digest.update(f"{record_id}\t{image_sha256}\n".encode())

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def read_manifest(folder: Path) -> dict:
    """The manifest of a built folder; raises if it is missing or malformed."""
    path = folder / MANIFEST
    if not folder.is_dir():
        raise InstructIADError(f"{folder}: not a folder")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InstructIADError(f"{path}: missing (is {folder} a dataset built by `triad build`?)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InstructIADError(f"{path}: unreadable manifest ({error})") from None
    problems = schemas.errors(manifest, "manifest")
    if problems:
        raise InstructIADError(f"{path}: {problems[0]}")
    return manifest


def verify(folder: Path) -> list[str]:
    """Check a built folder against its manifest.

    Recomputes each file's sha256 and size, each image's sha256 against the
    ``image_sha256`` column, and the dataset and per-config fingerprints; also reports data
    files the manifest does not list.

    Returns:
        One line per problem found (empty when the folder is intact).
    """
    manifest = read_manifest(folder)
    problems = []
    for name, expected in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: listed in {MANIFEST} but missing")
            continue
        if path.stat().st_size != expected["bytes"]:
            problems.append(f"{path}: size {path.stat().st_size} differs from {MANIFEST} ({expected['bytes']})")
        elif sha256_file(path) != expected["sha256"]:
            problems.append(f"{path}: sha256 differs from {MANIFEST}")
    listed = set(manifest["files"])
    problems += [
        f"{path}: data file not listed in {MANIFEST}"
        for path in sorted((folder / "data").rglob("*.parquet"))
        if path.relative_to(folder).as_posix() not in listed
    ]
    if not problems:
        problems += _check_fingerprints(folder, manifest)
    return problems


def _check_fingerprints(folder: Path, manifest: dict) -> list[str]:
    problems = []
    overall = Fingerprint()
    for config, entry in manifest["configs"].items():
        fingerprint = Fingerprint()
        for split in entry["splits"]:
            for shard in entry["splits"][split]["files"]:
                table = pq.read_table(folder / shard, columns=["id", "image", "image_sha256"])
                ids = table.column("id").to_pylist()
                images = table.column("image").combine_chunks().field("bytes").to_pylist()
                for record_id, data, stored in zip(ids, images, table.column("image_sha256").to_pylist(), strict=True):
                    actual = hashlib.sha256(data).hexdigest()
                    if actual != stored:
                        problems.append(f"{folder / shard}: image of {record_id} does not match its image_sha256")
                    fingerprint.add(record_id, actual)
                    overall.add(record_id, actual)
        if fingerprint.hexdigest() != entry["fingerprint"]:
            problems.append(f"{folder / MANIFEST}: fingerprint of config {config} does not match the data")
    if overall.hexdigest() != manifest["fingerprint"]:
        problems.append(f"{folder / MANIFEST}: dataset fingerprint does not match the data")
    return problems
