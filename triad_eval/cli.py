"""The `triad` command line: one console script with subcommands.

Every subcommand prints a one-line error and exits with 1 on bad input.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path
from typing import NoReturn

import instructiad
from instructiad.errors import InstructIADError
from triad_eval.interop import EXPORTS
from triad_eval.registry import EXPERTS, known_specs

DEMO_MARKER = ".triad-demo"
DEMO_CONDITIONS = ("zero_shot", "process", "one_shot", "process+one_shot")


def main(argv: list[str] | None = None) -> int:
    """Run ``triad`` with ``argv`` (default: the process arguments); return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code = args.run(args)
        sys.stdout.flush()  # a reader that went away (`triad info DIR | head -1`) shows here, not at exit
        return code
    except InstructIADError as error:
        print(f"triad: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("triad: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # What is still buffered goes to devnull, so the flush at exit raises no second error.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE: what the shell reports for a writer whose reader went away


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 1 like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"triad: error: {message} (see `{self.prog} --help`)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="triad", description="InstructIAD dataset tools.")
    parser.add_argument("--version", action="version", version=f"triad {instructiad.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="build the embedded synthetic source, evaluate the chance and majority baselines, write the leaderboard",
    )
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
    build.add_argument(
        "--source-args", action="append", default=[], metavar="NAME:K=V,...",
        help="a reader's options, e.g. real_iad:resolution=512,split_set=realiad_jsons_sv (repeatable)",
    )  # fmt: skip
    build.add_argument("--out", type=Path, required=True, help="folder to create (must not exist)")
    build.add_argument(
        "--repo",
        default=instructiad.HUB_REPO,
        metavar="ID",
        help="Hub repo the card's load examples name (default: %(default)s)",
    )
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
    render.add_argument("--processes", type=Path, metavar="DIR", help="annotations to add to the bundled ones")
    render.set_defaults(run=_render)

    audit = commands.add_parser(
        "audit",
        help="can the questions be answered without the image? blind strategies vs chance (exit 1 if any beats it)",
    )
    audit.add_argument("dataset", nargs="?", help="a built dataset folder (default: audit the annotations instead)")
    audit.add_argument("--config", default="all", help="dataset config (default: all)")
    audit.add_argument("--split", default="test", help="dataset split (default: test)")
    audit.add_argument("--processes", type=Path, metavar="DIR", help="annotations to add to the bundled ones")
    audit.add_argument("--templates", default="default", metavar="NAME[@VERSION]", help="template set (annotations)")
    audit.add_argument(
        "--max-gap", type=float, default=5.0, metavar="POINTS", help="allowed points above chance (default: 5)"
    )
    audit.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    audit.set_defaults(run=_audit)

    evaluate = commands.add_parser("eval", help="score a model on a built dataset; writes a run folder")
    evaluate.add_argument(
        "--model", required=True, metavar="SPEC", help=f"one of {known_specs()} (`triad baselines` lists each's args)"
    )
    evaluate.add_argument("--model-args", metavar="K=V,...", help="the adapter's settings, e.g. seed=3")
    evaluate.add_argument(
        "--base-url", help="for openai:<model>: an OpenAI-compatible server, e.g. http://host:8000/v1"
    )
    evaluate.add_argument("--data", required=True, metavar="PATH_OR_HUB_ID", help="a built folder or a Hub dataset id")
    evaluate.add_argument("--config", required=True, help="dataset config, e.g. mvtec_ad or all")
    evaluate.add_argument("--split", default="test")
    evaluate.add_argument("--revision", help="Hub revision (a tag such as v0.1.0)")
    evaluate.add_argument(
        "--tasks", help="question types, comma-separated (default: the config's: CoT-M's five, MMAD's for mmad)"
    )
    evaluate.add_argument(
        "--conditions",
        default="zero_shot",
        help="comma-separated, e.g. zero_shot,process,one_shot,expert,process+expert,no_image,process+no_image",
    )
    evaluate.add_argument("--out", type=Path, required=True, metavar="RUN_DIR")
    evaluate.add_argument("--scoring", choices=("generate", "options"), default="generate")
    evaluate.add_argument("--limit", type=int, help="only the first N records")
    evaluate.add_argument(
        "--categories", metavar="CAT,...", help="only these categories' records (e.g. those a trained model held out)"
    )
    evaluate.add_argument("--batch-size", type=int, default=8)
    evaluate.add_argument("--concurrency", type=int, default=1, help="parallel requests for API adapters")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--shard", metavar="i/n", help="evaluate only shard i of n (merge with `triad merge`)")
    evaluate.add_argument(
        "--expert", metavar="SPEC", help=f"anomaly maps for the expert condition: maps:<folder> or {', '.join(EXPERTS)}"
    )
    evaluate.add_argument(
        "--expert-args", metavar="K=V,...", help="ROI settings (threshold, crop, max_regions, order), the expert's own"
    )
    evaluate.add_argument("--resume", action="store_true", help="continue a run folder from its cache")
    evaluate.add_argument("--allow-failures", action="store_true", help="exit 0 even if requests failed")
    evaluate.set_defaults(run=_eval)

    export = commands.add_parser(
        "export", help="write a dataset's questions, with triad eval's exact prompts, for lmms-eval, VLMEvalKit or MMAD"
    )
    export.add_argument("dataset", metavar="DATASET", help="a built folder or a Hub dataset id")
    export.add_argument("--config", required=True, help="dataset config, e.g. mvtec_ad or all")
    export.add_argument(
        "--format", required=True, metavar="FORMAT", help=f"one of {', '.join(EXPORTS)} (see the README's Interop)"
    )
    export.add_argument("--out", type=Path, required=True, metavar="DIR", help="new or empty folder")
    export.add_argument("--tasks", help="question types, comma-separated (default: the config's, as for triad eval)")
    export.add_argument("--conditions", default="zero_shot", help="comma-separated, as for triad eval")
    export.add_argument("--split", default="test")
    export.add_argument("--revision", help="Hub revision (a tag such as v0.1.0)")
    export.add_argument("--seed", type=int, default=0, help="the seed triad eval would use (one-shot references)")
    export.add_argument("--limit", type=int, help="only the first N records")
    export.add_argument("--expert", metavar="SPEC", help="anomaly maps for the expert condition, as for triad eval")
    export.add_argument("--expert-args", metavar="K=V,...", help="ROI settings and the expert's own")
    export.set_defaults(run=_export)

    merge = commands.add_parser("merge", help="join the shard runs of one evaluation into one run folder")
    merge.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    merge.add_argument("--out", type=Path, required=True)
    merge.set_defaults(run=_merge)

    board = commands.add_parser(
        "leaderboard",
        help="leaderboard.json, .md and .html from run folders; or (--space) a Gradio Space that shows a results repo",
    )
    board.add_argument("runs", nargs="*", type=Path, metavar="RUN_DIR")
    board.add_argument("--out", type=Path, help="folder for the leaderboard files (with RUN_DIR...)")
    board.add_argument("--space", type=Path, metavar="DIR", help="write a Gradio Space app into this new folder")
    board.add_argument("--repo", metavar="ID", help="with --space: the results dataset repo (triad push-results)")
    board.add_argument("--revision", default="main", help="with --space: the repo's branch, tag or commit (main)")
    board.set_defaults(run=_leaderboard)

    roster = commands.add_parser(
        "baselines", help="list the model specs, experts and named baselines `triad eval` runs, with their settings"
    )
    roster.set_defaults(run=_baselines)

    fit = commands.add_parser(
        "train", help="fine-tune an hf:/triad: model on a built dataset (TRL SFTTrainer, LoRA or full)"
    )
    fit.add_argument("--model", required=True, metavar="SPEC", help="hf:<model id or folder> or triad:<folder>")
    fit.add_argument("--model-args", metavar="K=V,...", help="dtype, attn_implementation, max_pixels, revision")
    fit.add_argument("--data", required=True, metavar="PATH_OR_HUB_ID", help="a built folder or a Hub dataset id")
    fit.add_argument("--config", required=True, help="dataset config, e.g. real_iad or synthetic")
    fit.add_argument("--revision", help="Hub revision of the dataset (a tag such as v0.1.0)")
    fit.add_argument("--out", type=Path, required=True, metavar="DIR", help="model folder to create (must not exist)")
    fit.add_argument(
        "--target", choices=("cot", "answer", "both"), default="cot",
        help="cot: the CoT-M conversations; answer: the multiple-choice questions' letters; both (default: cot)",
    )  # fmt: skip
    fit.add_argument("--tasks", help="question types for --target answer/both (default: the config's)")
    fit.add_argument(
        "--conditions", default="zero_shot",
        help="prompts as triad eval builds them under these conditions, e.g. zero_shot,process,process+one_shot",
    )  # fmt: skip
    fit.add_argument(
        "--train-from", default="train", metavar="SPLIT",
        help="split to train on (default: train; it must hold anomalies, as Real-IAD's does)",
    )  # fmt: skip
    fit.add_argument(
        "--holdout-categories", metavar="CAT,...", help="categories kept out (needed with --train-from test)"
    )
    fit.add_argument(
        "--lora", metavar="K=V,...", help="r=16,alpha=32,dropout=0.05,targets=q_proj,k_proj,... (the default method)"
    )
    fit.add_argument("--full", action="store_true", help="full fine-tuning of the language model and projector")
    fit.add_argument("--merge", action="store_true", help="merge the LoRA weights into a plain model folder")
    fit.add_argument("--epochs", type=float, default=1.0, help="passes over the examples (default: 1)")
    fit.add_argument("--max-steps", type=int, help="optimizer steps (overrides --epochs)")
    fit.add_argument("--batch-size", type=int, default=1, help="examples per device step (default: 1)")
    fit.add_argument("--grad-accum", type=int, default=1, help="gradient accumulation steps (default: 1)")
    fit.add_argument("--learning-rate", type=float, help="default: 2e-4 with LoRA, 2e-5 full")
    fit.add_argument("--lr-scheduler", choices=("linear", "cosine", "constant"), default="linear")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto", help="auto: bf16 on a GPU")
    fit.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    fit.add_argument("--save-steps", type=int, default=100, help="checkpoint every N steps for --resume (default: 100)")
    fit.add_argument("--log-steps", type=int, default=10, help="log the loss every N steps (default: 10)")
    fit.add_argument("--limit", type=int, help="only the first N records (after held-out categories)")
    fit.add_argument("--gradient-checkpointing", action="store_true", help="trade compute for activation memory")
    fit.add_argument("--expert", metavar="SPEC", help="anomaly maps for the expert condition, as for triad eval")
    fit.add_argument("--expert-args", metavar="K=V,...", help="ROI settings and the expert's own")
    fit.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    fit.set_defaults(run=_train)

    convert = commands.add_parser(
        "convert-checkpoint",
        help="convert a Triad (or LLaVA-OneVision) checkpoint from the original LLaVA-NeXT layout for triad:<path>",
    )
    convert.add_argument("src", type=Path, metavar="SRC", help="folder with config.json, tokenizer, *.safetensors")
    convert.add_argument("dst", type=Path, metavar="DST", help="new folder to write (must not exist or be empty)")
    convert.add_argument(
        "--variant", choices=["zero_shot", "one_shot"], help="default: from image_aspect_ratio in SRC/config.json"
    )
    convert.set_defaults(run=_convert)

    push = commands.add_parser("push", help="upload a built folder to the Hub and tag its version")
    push.add_argument("folder", type=Path)
    push.add_argument("--repo", required=True, help="dataset repo id, e.g. triad/instructiad")
    push.add_argument("--revision", help="tag to create (default: v<version>)")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--dry-run", action="store_true", help="list what would be uploaded; no network")
    push.add_argument("--endpoint", help="Hub URL (default: HF_ENDPOINT or huggingface.co)")
    push.set_defaults(run=_push)

    results = commands.add_parser(
        "push-results", help="publish run folders and their leaderboard.json to a Hub dataset repo in one commit"
    )
    results.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    results.add_argument("--repo", required=True, help="dataset repo id, e.g. me/instructiad-results")
    results.add_argument("--revision", metavar="TAG", help="tag the commit (e.g. results-2025-06)")
    results.add_argument("--private", action="store_true", help="create the repo as private")
    results.add_argument("--dry-run", action="store_true", help="list what would be uploaded; no network")
    results.add_argument("--endpoint", help="Hub URL (default: HF_ENDPOINT or huggingface.co)")
    results.set_defaults(run=_push_results)
    return parser


def _demo(args: argparse.Namespace) -> int:
    from instructiad.export import build_dataset
    from instructiad.info import format_summary, summarize
    from instructiad.sources import synthetic
    from triad_eval.audit import audit, dataset_items, summary_line
    from triad_eval.data import open_dataset
    from triad_eval.leaderboard import write_leaderboard
    from triad_eval.runner import EvalSettings, run_eval

    out = args.out.expanduser().absolute()
    if out.exists():
        if not (out / DEMO_MARKER).is_file():
            raise InstructIADError(f"{out}: exists and is not a triad demo folder; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    (out / DEMO_MARKER).write_text("made by `triad demo`; rerunning the demo replaces this folder\n")
    # six images per defect and six good ones per category: enough questions for `triad audit`
    # to tell a blind prior from noise
    source = synthetic.generate(out / "source", size=args.size, n_test_good=6, n_per_defect=6)
    build_dataset([("synthetic", source)], out / "dataset")
    print(format_summary(summarize(out / "dataset")))
    data = open_dataset(
        str(out / "dataset"), "synthetic", columns=["id", "category", "process_id", "questions", "skipped"]
    )
    print("\n" + summary_line(audit(*dataset_items(data.records, data.annotation))))
    runs = []
    has_experts = importlib.util.find_spec("anomalib") is not None
    # PaDiM on random features (no download) drives chance's expert condition, so that the
    # leaderboard's samples show the regions it flags
    padim_args = {"pre_trained": "false", "image_size": "128", "crop": str(max(32, args.size // 4))}
    padim = {"expert": "padim", "expert_args": padim_args} if has_experts else {}
    # no_image: the blind run beside zero_shot (the leaderboard's blind column and visual gain)
    plan = [
        ("chance", [*DEMO_CONDITIONS, *(["expert"] if has_experts else []), "no_image"], padim),
        ("majority", [*DEMO_CONDITIONS, "no_image"], {}),
    ]
    for model, conditions, expert in plan:
        settings = EvalSettings(
            model=model, data=str(out / "dataset"), config="synthetic", out=out / "runs" / model,
            tasks=_tasks("synthetic", None), conditions=list(conditions), **expert,
        )  # fmt: skip
        runs.append(run_eval(settings).folder)
    if has_experts:  # the vision expert as a baseline
        expert = EvalSettings(
            model="expert:padim", model_args={"pre_trained": "false", "image_size": "128"},
            data=str(out / "dataset"), config="synthetic", out=out / "runs" / "expert_padim",
            tasks=_tasks("synthetic", None), conditions=["zero_shot"],
        )  # fmt: skip
        runs.append(run_eval(expert).folder)
    else:
        print("\n(install the experts extra, pip install -e '.[experts]', to add the PaDiM expert baseline)")
    write_leaderboard(runs, out / "leaderboard")
    board = (out / "leaderboard" / "leaderboard.md").read_text()
    print("\n" + board.split("\n### Every task and condition")[0].rstrip())
    print(f"\nLoad it:     datasets.load_dataset({str(out / 'dataset')!r}, 'synthetic')")
    print(f"Check it:    triad verify {out / 'dataset'}")
    print(f"Leaderboard: {out / 'leaderboard' / 'leaderboard.html'} (runs in {out / 'runs'})")
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
    from triad_eval.settings import parse_key_values

    source_args = {}
    for text in args.source_args:
        name, sep, options = text.partition(":")
        if not sep or not name:
            raise InstructIADError(f"--source-args {text}: expected NAME:key=value,...")
        source_args[name] = parse_key_values(options, f"--source-args {name}")
    summaries = build_dataset(
        [parse_source(text) for text in args.source],
        args.out,
        source_args=source_args,
        hub_repo=args.repo,
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
    from instructiad.processes.validate import annotation_files, near_duplicates, validate_file

    files = annotation_files(args.paths or [BUNDLED])
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise InstructIADError(f"{missing[0]}: no such annotation file")
    problems = [problem for path in files for problem in validate_file(path)]
    for problem in problems:
        print(f"triad: invalid: {problem}", file=sys.stderr)
    warnings = near_duplicates(files)
    for warning in warnings:
        print(f"triad: warning: {warning}", file=sys.stderr)
    bad_files = len({p.path for p in problems})
    print(
        f"{len(files)} annotation file(s) checked, {bad_files} with problems ({len(problems)} in all), "
        f"{len(warnings)} near-duplicate text warning(s)"
    )
    return 1 if problems else 0


def _render(args: argparse.Namespace) -> int:
    from cot_m.engine import TemplateSet
    from cot_m.preview import preview
    from instructiad.processes import Catalog

    catalog = Catalog(args.processes)
    id_ = catalog.id_for(args.source, args.category)
    if id_ is None:
        raise InstructIADError(f"no process annotation for {args.source}/{args.category}")
    name, _, version = args.templates.partition("@")
    templates = TemplateSet(name, version or None)
    print(preview(catalog.get(id_), templates, args.defect, catalog.of_source(args.source)), end="")
    return 0


def _audit(args: argparse.Namespace) -> int:
    from cot_m.engine import TemplateSet
    from instructiad.processes import Catalog
    from triad_eval.audit import annotation_items, audit, dataset_items, format_report
    from triad_eval.data import open_dataset

    if args.max_gap < 0:
        raise InstructIADError(f"--max-gap {args.max_gap:g}: must be zero or more points")
    if args.dataset is None:
        name, _, version = args.templates.partition("@")
        templates = TemplateSet(name, version or None)
        items, skipped = annotation_items(Catalog(args.processes), templates)
        title = f"audit of the annotations with template set {templates.name} {templates.version}"
    else:
        columns = ["id", "category", "process_id", "questions", "skipped"]
        data = open_dataset(args.dataset, args.config, args.split, columns=columns)
        items, skipped = dataset_items(data.records, data.annotation)
        title = f"audit of {data.source} (config {data.config}, split {data.split})"
    if not items:
        raise InstructIADError(f"{args.dataset or 'the annotations'}: no questions to audit")
    report = audit(items, skipped, args.max_gap)
    print(format_report(report, title), end="")
    if args.json:
        from instructiad.jsonio import write_json

        write_json(args.json, report)
    return 1 if report["failures"] else 0


def _names(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]`` (a comma-separated option's names)."""
    return [name.strip() for name in text.split(",") if name.strip()]


def _tasks(config: str, given: str | None) -> list[str]:
    """The tasks `triad eval` asks of ``config``: those ``given`` (comma-separated), else the
    config's own: MMAD's question types for ``mmad``, CoT-M's for every other config. A type of
    the other kind is refused, except in ``all`` (which may hold both)."""
    from cot_m.questions import QUESTION_TYPES  # read when called
    from instructiad.sources import mmad

    own = list(mmad.TASKS) if config == mmad.NAME else [t for t in QUESTION_TYPES if t not in mmad.TASKS]
    if given is None:
        return own
    names = _names(given)
    foreign = next((t for t in names if t in QUESTION_TYPES and t not in own), None)
    if foreign and config != "all":
        raise InstructIADError(
            f"--tasks {foreign}: config {config} has no such questions (its tasks: {', '.join(own)})"
        )
    return names  # names no config has are refused with the known ones when the run starts


def _eval(args: argparse.Namespace) -> int:
    from triad_eval.runner import EvalSettings, parse_shard, run_eval
    from triad_eval.settings import parse_key_values

    if args.batch_size < 1 or args.concurrency < 1 or (args.limit is not None and args.limit < 1):
        raise InstructIADError("--batch-size, --concurrency and --limit must be at least 1")
    model_args = parse_key_values(args.model_args)
    if args.base_url:
        model_args["base_url"] = args.base_url
    settings = EvalSettings(
        model=args.model,
        data=args.data,
        config=args.config,
        out=args.out,
        tasks=_tasks(args.config, args.tasks),
        conditions=_names(args.conditions),
        categories=_names(args.categories) if args.categories else None,
        split=args.split,
        revision=args.revision,
        model_args=model_args,
        scoring=args.scoring,
        limit=args.limit,
        batch_size=args.batch_size,
        seed=args.seed,
        shard=parse_shard(args.shard),
        resume=args.resume,
        concurrency=args.concurrency,
        expert=args.expert,
        expert_args=parse_key_values(args.expert_args, "--expert-args"),
    )
    result = run_eval(settings)
    print((result.folder / "summary.txt").read_text(), end="")
    print(f"{result.from_cache} response(s) from the cache, {result.sent} sent; wrote {result.folder}")
    if result.failed and not args.allow_failures:
        print(
            f"triad: {result.failed} request(s) failed (not scored); pass --allow-failures to accept", file=sys.stderr
        )
        return 1
    return 0


def _export(args: argparse.Namespace) -> int:
    from triad_eval.interop.export import ExportSettings, export_dataset
    from triad_eval.settings import parse_key_values

    if args.limit is not None and args.limit < 1:
        raise InstructIADError("--limit must be at least 1")
    settings = ExportSettings(
        data=args.dataset,
        config=args.config,
        format=args.format,
        out=args.out,
        tasks=_tasks(args.config, args.tasks),
        conditions=_names(args.conditions),
        split=args.split,
        revision=args.revision,
        seed=args.seed,
        limit=args.limit,
        expert=args.expert,
        expert_args=parse_key_values(args.expert_args, "--expert-args"),
    )
    result = export_dataset(settings)
    counts = ", ".join(f"{condition} {n}" for condition, n in result.rows.items())
    print(f"wrote {sum(result.rows.values())} row(s) ({counts}) as {args.format} to {result.folder}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    from triad_eval.run_folder import merge_runs

    metrics = merge_runs(args.runs, args.out)
    print(f"merged {len(args.runs)} shard(s) into {args.out}: {metrics['counts']['requests']} requests")
    return 0


def _leaderboard(args: argparse.Namespace) -> int:
    from triad_eval.leaderboard import write_leaderboard

    if args.space is None and (not args.runs or args.out is None):
        raise InstructIADError("leaderboard: give RUN_DIR... --out DIR, or --space DIR --repo ID")
    if bool(args.runs) != (args.out is not None):
        raise InstructIADError("leaderboard: RUN_DIR... and --out go together")
    if args.space is not None:
        from triad_eval.space import write_space

        if args.repo is None:
            raise InstructIADError("--space needs --repo ID, the results repo it shows (triad push-results)")
        write_space(args.space, args.repo, args.revision)
        print(f"wrote a Gradio Space to {args.space} (app.py, requirements.txt, README.md) showing {args.repo}")
    if args.runs:
        board = write_leaderboard(args.runs, args.out)
        print((args.out / "leaderboard.md").read_text(), end="")
        print(f"wrote {args.out}/leaderboard.json, leaderboard.md, leaderboard.html ({len(board['entries'])} entries)")
    return 0


def _baselines(args: argparse.Namespace) -> int:
    from triad_eval.experts import ROI_SETTINGS, expert_class
    from triad_eval.registry import ADAPTERS, ROSTER, load_object

    print("Model specs (--model SPEC --model-args K=V,...):")
    width = max(len(entry.pattern) for entry in ADAPTERS)
    for entry in ADAPTERS:
        takes = entry.load().ARGS
        settings = ", ".join(takes) or "none"
        if entry.prefix == "expert":
            settings = "the expert's own settings (see Experts)"
        print(f"  {entry.pattern:<{width}}  {entry.summary}")
        print(f"  {'':<{width}}  args: {settings}")
    print("\nExperts (--expert SPEC --expert-args K=V,...; --model expert:NAME --model-args K=V,...):")
    print(f"  region settings, any expert: {', '.join(ROI_SETTINGS)}")
    width = max(len(name) for name in [*EXPERTS, "maps:<folder>"])
    print(f"  {'maps:<folder>':<{width}}  precomputed maps, <record id>.npy or .png")
    for name in EXPERTS:
        print(f"  {name:<{width}}  {', '.join(expert_class(name).setting_types())}")
    roster = load_object(ROSTER)
    print("\nBaselines (--model baseline:NAME):")
    width = max(len(name) for name in roster)
    for entry in roster.values():
        model_args = ",".join(f"{k}={v}" for k, v in entry.model_args.items())
        print(f"  {entry.name:<{width}}  {entry.spec}  [{model_args}]  licence: {entry.license}")
        print(f"  {'':<{width}}  {entry.notes}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from triad_eval.settings import parse_key_values
    from triad_train.options import TrainSettings
    from triad_train.trainer import train

    names = _names(args.holdout_categories or "")
    settings = TrainSettings(
        model=args.model, data=args.data, config=args.config, revision=args.revision, out=args.out,
        target=args.target, tasks=_tasks(args.config, args.tasks) if args.tasks else None,
        conditions=_names(args.conditions), train_from=args.train_from,
        holdout=names, model_args=parse_key_values(args.model_args), lora=args.lora, full=args.full,
        merge=args.merge, epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size,
        grad_accum=args.grad_accum, learning_rate=args.learning_rate, scheduler=args.lr_scheduler, seed=args.seed,
        precision=args.precision, device=args.device, save_steps=args.save_steps, log_steps=args.log_steps,
        limit=args.limit, gradient_checkpointing=args.gradient_checkpointing, expert=args.expert,
        expert_args=parse_key_values(args.expert_args, "--expert-args"), resume=args.resume,
    )  # fmt: skip
    result = train(settings)
    trained, log = result.args["trained_on"], result.args["log"]
    loss = f"; loss {log[0]['loss']:.4f} -> {log[-1]['loss']:.4f}" if log else ""
    print(
        f"wrote {result.folder}: {result.args['optimization']['steps']} steps on {trained['records']} records of "
        f"split {trained['split']} (held out: {', '.join(trained['held_out']) or 'none'}){loss}"
    )
    print(f"  evaluate it: triad eval --model {args.model.split(':', 1)[0]}:{result.folder} --data {args.data} ...")
    return 0


def _convert(args: argparse.Namespace) -> int:
    from triad_eval.triad.convert import convert_checkpoint

    done = convert_checkpoint(args.src, args.dst, variant=args.variant)
    print(f"{args.dst}: {done.variant} Triad checkpoint, {done.tensors} tensors")
    if done.dropped:
        print(f"  dropped {len(done.dropped)} buffer(s) without weights (rotary inv_freq)")
    if done.added_tokens:
        added = ", ".join(done.added_tokens)
        print(f"  added tokens {added}; {done.padded_vocabulary} new embedding row(s) start at the mean")
    print(f"  run it: triad eval --model triad:{args.dst} --conditions zero_shot,expert --expert <expert> ...")
    return 0


def _push_results(args: argparse.Namespace) -> int:
    from triad_eval.hub_results import push_results

    lines = push_results(
        args.runs, args.repo, revision=args.revision, dry_run=args.dry_run, private=args.private, endpoint=args.endpoint
    )
    for line in lines:
        print(line)
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
