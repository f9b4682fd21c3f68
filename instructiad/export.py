"""Build a Hub-ready dataset folder from sources on disk.

The folder holds ``data/<config>/<split>-NNNNN-of-NNNNN.parquet``, a ``README.md`` dataset
card (with ``configs:`` and ``dataset_info`` YAML), ``build_report.json`` and
``manifest.json``. ``datasets.load_dataset(folder, config)`` reads it exactly as it reads
the Hub copy. Everything is written to a temporary sibling folder, renamed at the end, so a
failed build leaves nothing behind; a lock file beside the output keeps a second build of the
same folder out while one runs.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from tqdm.auto import tqdm

import instructiad
from cot_m.engine import DEFAULT_SET, TemplateSet
from instructiad.card import render_card
from instructiad.errors import InstructIADError, SkippedFiles, raise_bad_file
from instructiad.jsonio import write_json
from instructiad.manifest import MANIFEST, Fingerprint, sha256_file
from instructiad.pipeline import iter_records, list_samples
from instructiad.processes import Catalog
from instructiad.shards import DEFAULT_SHARD_BYTES, ShardWriter
from instructiad.sources import READERS, Reader, resolve_source
from instructiad.summary import ConfigSummary, SplitSummary

BUILD_REPORT = "build_report.json"
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def parse_source(text: str) -> tuple[str | None, str]:
    """``NAME=PATH`` -> ``(NAME, PATH)``; a bare ``PATH`` -> ``(None, PATH)`` (layout detected)."""
    name, sep, path = text.partition("=")
    if sep and name in READERS:
        return name, path
    if sep and re.fullmatch(r"[a-z_]+", name):
        raise InstructIADError(f"--source {text}: unknown source {name!r} (known: {', '.join(READERS)})")
    return None, text


def build_dataset(
    sources: list[tuple[str | None, str | Path]],
    out: str | Path,
    *,
    version: str = instructiad.DATASET_VERSION,
    num_proc: int = 1,
    max_side: int | None = None,
    on_bad_file: str = "error",
    processes: str | Path | None = None,
    templates: str = DEFAULT_SET,
    max_shard_bytes: int = DEFAULT_SHARD_BYTES,
    source_args: dict[str, dict[str, str]] | None = None,
    hub_repo: str = instructiad.HUB_REPO,
) -> dict[str, ConfigSummary]:
    """Build the dataset folder ``out`` from ``sources``.

    Args:
        sources: ``(reader name or None to detect, root)`` pairs, one per source.
        source_args: reader name -> that reader's options (e.g. Real-IAD's ``resolution``).
        hub_repo: the Hub dataset repo the card's load examples name.
        out: the folder to create; it must not exist.
        version: semver of the dataset, written to the card and manifest.
        num_proc: processes that read and check images (output does not depend on it).
        max_side: resize images whose longer side exceeds it (default: keep original bytes).
        on_bad_file: ``"error"`` stops at the first bad file; ``"skip"`` leaves it out and
            lists it in ``build_report.json`` and the card.
        processes: a folder of the user's own process annotations
            (``<source>/<category>.yaml``), used before the bundled ones.
        templates: the CoT-M template set, ``NAME`` or ``NAME@VERSION`` (the version must
            match the set's).
        max_shard_bytes: start a new Parquet shard past this much Arrow data.

    Returns:
        The summary of each source config, keyed by config name.

    Raises:
        InstructIADError: bad arguments or bad input; nothing is left on disk.
    """
    out = Path(out).expanduser().absolute()
    if out.exists():
        raise InstructIADError(f"{out}: output folder already exists")
    if not out.parent.is_dir():
        raise InstructIADError(f"{out.parent}: parent of the output folder does not exist")
    if not _SEMVER.match(version):
        raise InstructIADError(f"--version {version}: not a semantic version X.Y.Z")
    if on_bad_file not in ("error", "skip"):
        raise InstructIADError(f"--on-bad-file {on_bad_file}: must be error or skip")
    if num_proc < 1:
        raise InstructIADError(f"--num-proc {num_proc}: must be at least 1")
    cores = os.cpu_count() or 1
    if num_proc > cores:
        raise InstructIADError(f"--num-proc {num_proc}: more processes than this machine's {cores} CPU core(s)")
    if max_side is not None and max_side < 1:
        raise InstructIADError(f"--max-side {max_side}: must be a positive number of pixels")
    resolved = _resolve(sources)
    source_args = source_args or {}
    extra = sorted(set(source_args) - {reader.name for reader, _ in resolved})
    if extra:
        raise InstructIADError(f"--source-args {extra[0]}: no such --source in this build")
    for reader, _ in resolved:
        reader.check_options(source_args.get(reader.name, {}))
    catalog = Catalog(processes)
    name, _, wanted = templates.partition("@")
    template_set = TemplateSet(name, wanted or None)

    partial = out.with_name(f".{out.name}.partial")
    with _build_lock(out):
        shutil.rmtree(partial, ignore_errors=True)  # left by a build that was killed
        try:
            summaries = {}
            overall = Fingerprint()  # every record, config after config
            for reader, root in resolved:
                summaries[reader.name] = _build_config(
                    reader, root, partial, overall, catalog, template_set, num_proc=num_proc, max_side=max_side,
                    on_bad_file=on_bad_file, max_shard_bytes=max_shard_bytes, options=source_args.get(reader.name, {}),
                )  # fmt: skip
            _copy_annotations(partial, summaries, catalog)
            options = {
                "max_side": max_side,
                "on_bad_file": on_bad_file,
                "template_set": template_set.name,
                "template_version": template_set.version,
                "source_args": {name: source_args[name] for name in sorted(source_args)},
                "hub_repo": hub_repo,
            }
            _write_metadata(partial, summaries, overall.hexdigest(), version=version, options=options)
            try:
                partial.rename(out)
            except OSError as error:  # something other than a build made the folder meanwhile
                raise InstructIADError(f"{out}: cannot publish the output folder ({error.strerror})") from None
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    return summaries


@contextmanager
def _build_lock(out: Path) -> Iterator[None]:
    """Hold ``.<out>.lock`` beside ``out`` for the whole build, or fail at once if another
    build holds it. The lock (``flock``) goes with its process, so a killed build leaves
    none behind; the file is removed at the end."""
    path = out.with_name(f".{out.name}.lock")
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise InstructIADError(f"{path}: cannot create the build lock ({error.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InstructIADError(f"{out}: another build is writing this output folder") from None
        try:
            current = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)  # locked a file the build before removed: lock the one now there
    try:
        if out.exists():  # a build that held the lock before has finished
            raise InstructIADError(f"{out}: output folder already exists")
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)


def _resolve(sources: list[tuple[str | None, str | Path]]) -> list[tuple[Reader, Path]]:
    """Check every source before any work; one config per reader, in :data:`READERS` order."""
    if not sources:
        raise InstructIADError("no --source given")
    resolved = [resolve_source(name, root) for name, root in sources]
    names = [reader.name for reader, _ in resolved]
    for name in set(names):
        if names.count(name) > 1:
            raise InstructIADError(f"--source {name} given more than once (one folder per source)")
    order = list(READERS)
    return sorted(resolved, key=lambda pair: order.index(pair[0].name))


def _build_config(
    reader: Reader,
    root: Path,
    folder: Path,
    overall: Fingerprint,
    catalog: Catalog,
    template_set: TemplateSet,
    *,
    num_proc: int,
    max_side: int | None,
    on_bad_file: str,
    max_shard_bytes: int,
    options: dict[str, str],
) -> ConfigSummary:
    skipped = SkippedFiles()
    on_bad = skipped if on_bad_file == "skip" else raise_bad_file
    summary = ConfigSummary(reader)
    fingerprint = Fingerprint()
    for split, samples in list_samples(reader.name, root, on_bad, options).items():
        writer = ShardWriter(folder / "data" / reader.name, split, max_shard_bytes)
        split_summary = SplitSummary()
        records = iter_records(
            samples, catalog=catalog, templates=template_set, max_side=max_side, on_bad=on_bad, num_proc=num_proc
        )
        with closing(records):  # its workers stop here, now, if writing fails
            for record in tqdm(
                records, total=len(samples), desc=f"{reader.name}/{split}", unit="img", leave=False, disable=None
            ):
                writer.write(record)
                fingerprint.add(record["id"], record["image_sha256"])
                overall.add(record["id"], record["image_sha256"])
                split_summary.counts[(record["category"], record["label"], record["defect_type"])] += 1
                summary.coverage.add(record, catalog)
        writer.close()
        split_summary.checksums = {p.relative_to(folder).as_posix(): c for p, c in writer.checksums.items()}
        split_summary.num_examples, split_summary.num_bytes = writer.num_rows, writer.num_bytes
        if writer.num_rows:
            summary.splits[split] = split_summary
    if not summary.splits:
        raise InstructIADError(f"{root}: every file of source {reader.name} was skipped; nothing to build")
    summary.fingerprint = fingerprint.hexdigest()
    summary.skipped = [_portable(e, root, reader.name) for e in skipped.as_list()]
    return summary


def _copy_annotations(folder: Path, summaries: dict[str, ConfigSummary], catalog: Catalog) -> None:
    """Ship the annotation of every annotated category with the data: ``processes/<id>.yaml``."""
    for name, summary in summaries.items():
        for category in sorted(summary.coverage.annotated_categories):
            target = folder / "processes" / name / f"{category}.yaml"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(catalog.paths[f"{name}/{category}"], target)


def _portable(entry: dict[str, str], root: Path, source: str) -> dict[str, str]:
    """A skipped-file entry with paths relative to the source root, so reports are portable."""
    prefix = f"{root}/"
    path = entry["path"][len(prefix) :] if entry["path"].startswith(prefix) else entry["path"]
    return {"source": source, "path": path, "problem": entry["problem"].replace(str(root), "<root>")}


def _write_metadata(
    folder: Path,
    summaries: dict[str, ConfigSummary],
    fingerprint: str,
    *,
    version: str,
    options: dict,
) -> None:
    report = {
        "version": version,
        "options": options,
        "sources": {
            name: {"num_records": sum(s.num_examples for s in c.splits.values()), "num_skipped": len(c.skipped)}
            for name, c in summaries.items()
        },
        "skipped": [entry for c in summaries.values() for entry in c.skipped],
        "processes": {name: c.coverage.as_dict() for name, c in summaries.items()},
    }
    write_json(folder / BUILD_REPORT, report)
    (folder / "README.md").write_text(
        render_card(summaries, version=version, fingerprint=fingerprint, report=report, hub_repo=options["hub_repo"]),
        encoding="utf-8",
    )

    shards = {
        name: c
        for summary in summaries.values()
        for split in summary.splits.values()
        for name, c in split.checksums.items()
    }
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        sha, size = shards[name] if name in shards else (sha256_file(path), path.stat().st_size)
        files[name] = {"sha256": sha, "bytes": size}
    manifest = {
        "dataset": "instructiad",
        "version": version,
        "builder": {"package": "instructiad", "version": instructiad.__version__},
        "fingerprint": fingerprint,
        "configs": {
            name: {
                "fingerprint": c.fingerprint,
                "splits": {
                    s: {"num_examples": v.num_examples, "files": list(v.checksums)} for s, v in c.splits.items()
                },
            }
            for name, c in summaries.items()
        },
        "files": files,
    }
    write_json(folder / MANIFEST, manifest)
