"""The `triad` command line: one console script with subcommands.

Every subcommand prints a one-line error and exits with 1 on bad input.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import NoReturn

import instructiad
from instructiad.errors import InstructIADError

DEMO_MARKER = ".triad-demo"


def main(argv: list[str] | None = None) -> int:
    """Run ``triad`` with ``argv`` (default: the process arguments); return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except InstructIADError as error:
        print(f"triad: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("triad: interrupted", file=sys.stderr)
        return 130


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 1 like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"triad: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="triad", description="InstructIAD dataset tools.")
    parser.add_argument("--version", action="version", version=f"triad {instructiad.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="build the embedded synthetic source and print its summary")
    demo.add_argument("--out", type=Path, default=Path("triad-demo"), help="demo folder (default: triad-demo)")
    demo.add_argument("--size", type=int, default=256, help="image side in pixels (default: 256)")
    demo.set_defaults(run=_demo)

    synth = commands.add_parser("synthesize", help="write a synthetic source tree (MVTec AD layout)")
    synth.add_argument("--out", type=Path, required=True)
    synth.add_argument("--size", type=int, default=256, help="image side in pixels (default: 256)")
    synth.add_argument("--train", type=int, default=6, help="normal training images per category")
    synth.add_argument("--test-good", type=int, default=3, help="normal test images per category")
    synth.add_argument("--per-defect", type=int, default=2, help="test images per defect type")
    synth.set_defaults(run=_synthesize)

    build = commands.add_parser("build", help="build a Hub-ready dataset folder from sources on disk")
    build.add_argument(
        "--source", action="append", required=True, metavar="NAME=PATH",
        help="a source and its root, e.g. mvtec_ad=/data/mvtec_ad (repeatable; a bare PATH is detected)",
    )  # fmt: skip
    build.add_argument("--out", type=Path, required=True, help="folder to create (must not exist)")
    build.add_argument("--version", default=instructiad.DATASET_VERSION, help="dataset semver (default: %(default)s)")
    build.add_argument("--num-proc", type=int, default=1, help="processes that read images (default: 1)")
    build.add_argument("--max-side", type=int, help="resize images whose longer side exceeds this (pixels)")
    build.add_argument("--on-bad-file", choices=("error", "skip"), default="error")
    build.add_argument(
        "--processes", type=Path, metavar="DIR",
        help="your own process annotations (<source>/<category>.yaml), used before the bundled ones",
    )  # fmt: skip
    build.add_argument(
        "--templates", default="default", metavar="NAME[@VERSION]",
        help="CoT-M template set for questions and conversations (default: default)",
    )  # fmt: skip
    build.set_defaults(run=_build)

    info = commands.add_parser("info", help="configs, splits, counts, version and fingerprint of a built folder")
    info.add_argument("folder", type=Path)
    info.add_argument("--json", action="store_true", help="print JSON instead of text")
    info.set_defaults(run=_info)

    verify = commands.add_parser("verify", help="recompute checksums of a built folder (exit 1 on mismatch)")
    verify.add_argument("folder", type=Path)
    verify.set_defaults(run=_verify)

    validate = commands.add_parser("validate", help="check process annotations (default: every bundled one)")
    validate.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="annotation files or folders")
    validate.set_defaults(run=_validate)

    render = commands.add_parser("render", help="print what each CoT-M template produces for a category")
    render.add_argument("--source", required=True)
    render.add_argument("--category", required=True)
    render.add_argument("--defect", help="only this defect (default: a normal image and every defect)")
    render.add_argument("--templates", default="default", metavar="NAME[@VERSION]", help="template set")
    render.add_argument("--processes", type=Path, metavar="DIR", help="annotation folder (default: the bundled one)")
    render.set_defaults(run=_render)

    push = commands.add_parser("push", help="upload a built folder to the Hub and tag its version")
    push.add_argument("folder", type=Path)
    push.add_argument("--repo", required=True, help="dataset repo id, e.g. triad/instructiad")
    push.add_argument("--revision", help="tag to create (default: v<version>)")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--dry-run", action="store_true", help="list what would be uploaded; no network")
    push.add_argument("--endpoint", help="Hub URL (default: HF_ENDPOINT or huggingface.co)")
    push.set_defaults(run=_push)
    return parser


def _demo(args: argparse.Namespace) -> int:
    from instructiad.export import build_dataset
    from instructiad.info import format_summary, summarize
    from instructiad.sources import synthetic

    out = args.out.expanduser().absolute()
    if out.exists():
        if not (out / DEMO_MARKER).is_file():
            raise InstructIADError(f"{out}: exists and is not a triad demo folder; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / DEMO_MARKER).write_text("made by `triad demo`; rerunning the demo replaces this folder\n")
    source = synthetic.generate(out / "source", size=args.size)
    build_dataset([("synthetic", source)], out / "dataset")
    print(format_summary(summarize(out / "dataset")))
    print(f"\nLoad it:  datasets.load_dataset({str(out / 'dataset')!r}, 'synthetic')")
    print(f"Check it: triad verify {out / 'dataset'}")
    return 0


def _synthesize(args: argparse.Namespace) -> int:
    from instructiad.sources import synthetic

    if args.out.exists():
        raise InstructIADError(f"{args.out}: output folder already exists")
    root = synthetic.generate(
        args.out, size=args.size, n_train=args.train, n_test_good=args.test_good, n_per_defect=args.per_defect
    )
    print(f"wrote a synthetic source to {root}")
    return 0


def _build(args: argparse.Namespace) -> int:
    from instructiad.export import build_dataset, parse_source

    summaries = build_dataset(
        [parse_source(text) for text in args.source],
        args.out,
        version=args.version,
        num_proc=args.num_proc,
        max_side=args.max_side,
        on_bad_file=args.on_bad_file,
        processes=args.processes,
        templates=args.templates,
    )
    for name, summary in summaries.items():
        records = sum(s.num_examples for s in summary.splits.values())
        skipped = f", {len(summary.skipped)} file(s) skipped" if summary.skipped else ""
        print(f"{name}: {records} records{skipped}")
    print(f"wrote {args.out}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from instructiad.info import format_summary, summarize

    summary = summarize(args.folder)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from instructiad.manifest import verify

    problems = verify(args.folder.expanduser().absolute())
    for problem in problems:
        print(f"triad: mismatch: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"{args.folder}: every file and fingerprint matches manifest.json")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from instructiad.processes import BUNDLED
    from instructiad.processes.validate import annotation_files, validate_file

    files = annotation_files(args.paths or [BUNDLED])
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise InstructIADError(f"{missing[0]}: no such annotation file")
    problems = [problem for path in files for problem in validate_file(path)]
    for problem in problems:
        print(f"triad: invalid: {problem}", file=sys.stderr)
    bad_files = len({p.path for p in problems})
    print(f"{len(files)} annotation file(s) checked, {bad_files} with problems ({len(problems)} in all)")
    return 1 if problems else 0


def _render(args: argparse.Namespace) -> int:
    from cot_m.engine import TemplateSet
    from cot_m.preview import preview
    from instructiad import processes

    annotation = processes.load(args.source, args.category, root=args.processes or processes.BUNDLED)
    name, _, version = args.templates.partition("@")
    print(preview(annotation, TemplateSet(name, version or None), args.defect), end="")
    return 0


def _push(args: argparse.Namespace) -> int:
    from instructiad.hub import push

    lines = push(
        args.folder,
        args.repo,
        revision=args.revision,
        dry_run=args.dry_run,
        private=args.private,
        endpoint=args.endpoint,
    )
    for line in lines:
        print(line)
    return 0
