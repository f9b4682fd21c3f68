"""lmms-eval: an exported task folder (`triad export --format lmms-eval`) and the sample logs its
`--log_samples` writes (`replay:<file or folder> --model-args format=lmms`).

The task folder holds one task per condition (``instructiad_<config>_<condition>``) and a group
over them (``instructiad_<config>``); each task reads its rows from a Parquet file in the folder
(``dataset_path: parquet``, a path lmms-eval resolves against the YAML's folder), so it runs
offline. ``utils.py`` gives the exact interleaved prompt (``doc_to_messages``; ``doc_to_text`` and
``doc_to_visual`` for models without chat messages), parses answers with the project's parser and
scores with the project's metrics (balanced accuracy for discrimination, accuracy otherwise, the
MMAD-style average), so lmms-eval's numbers are `triad eval`'s.

Each sample of a log carries what ``process_results`` returned: the record id, task and condition
the answer belongs to, which is how a log maps back to the dataset's requests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from instructiad.errors import InstructIADError
from triad_eval.interop.answers import record_ids, unique_entries
from triad_eval.interop.rows import ExportRow

if TYPE_CHECKING:
    from triad_eval.data import EvalDataset

PREFIX = "instructiad"
SAMPLES = re.compile(r"_samples_(.+)\.jsonl$")
"""lmms-eval's sample log name: ``<date-time>_samples_<task>.jsonl``."""
GENERATION = {"max_new_tokens": 16, "temperature": 0, "do_sample": False}
"""What `triad eval`'s ``hf:`` adapter uses: greedy, 16 new tokens."""


# --- export -------------------------------------------------------------------------------------


def task_name(config: str, condition: str) -> str:
    """The lmms-eval task of one condition: ``instructiad_<config>_<condition>`` (``+`` -> ``_``)."""
    return f"{PREFIX}_{config}_{condition.replace('+', '_')}"


def write_task(rows: list[ExportRow], folder: Path, info: dict) -> None:
    """Write an lmms-eval task folder: ``<group>.yaml``, one ``<task>.yaml`` per condition,
    ``utils.py`` and ``data/<condition>.parquet``."""
    config = info["dataset"]["config"]
    tasks = info["tasks"]
    (folder / "data").mkdir()
    names = []
    for condition in info["conditions"]:
        name = task_name(config, condition)
        names.append(name)
        data_file = f"data/{condition.replace('+', '_')}.parquet"
        _write_parquet([r for r in rows if r.condition == condition], folder / data_file)
        (folder / f"{name}.yaml").write_text(_task_yaml(name, data_file, tasks), encoding="utf-8")
    group = "\n".join([f"group: {PREFIX}_{config}", "task:", *(f"  - {n}" for n in names), ""])
    (folder / f"{PREFIX}_{config}.yaml").write_text(group, encoding="utf-8")
    (folder / "utils.py").write_text(_utils_py(tasks), encoding="utf-8")


def _task_yaml(name: str, data_file: str, tasks: list[str]) -> str:
    lines = [
        f"task: {name}",
        "dataset_path: parquet",
        "dataset_kwargs:",
        "  data_files:",
        f"    test: {data_file}",
        "test_split: test",
        "output_type: generate_until",
        "doc_to_visual: !function utils.doc_to_visual",
        "doc_to_text: !function utils.doc_to_text",
        "doc_to_messages: !function utils.doc_to_messages",
        "doc_to_target: !function utils.doc_to_target",
        "process_results: !function utils.process_results",
        "generation_kwargs:",
        *(f"  {k}: {json.dumps(v)}" for k, v in GENERATION.items()),
        "metric_list:",
    ]
    for metric in [*tasks, "average"]:
        aggregation = f"    aggregation: !function utils.aggregate_{metric}"
        lines += [f"  - metric: {metric}", aggregation, "    higher_is_better: true"]
    lines += ["metadata:", "  version: 1.0", ""]
    return "\n".join(lines)


def _write_parquet(rows: list[ExportRow], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Features, Image, List, Value

    features = Features(
        {
            "id": Value("string"), "task": Value("string"), "condition": Value("string"),
            "category": Value("string"), "label": Value("string"), "question": Value("string"),
            "options": Value("string"), "answer": Value("string"), "text": Value("string"),
            "parts": Value("string"), "images": List(Image()), "image_ids": List(Value("string")),
            "image_roles": List(Value("string")),
        }
    )  # fmt: skip
    table = pa.Table.from_pylist(
        [
            {
                **{k: getattr(r, k) for k in ("id", "task", "condition", "category", "label", "question", "answer")},
                "options": json.dumps(r.options, ensure_ascii=False),
                "text": "\n".join(p["text"] for p in r.parts if p["type"] == "text"),
                "parts": json.dumps(_plain_parts(r), ensure_ascii=False),
                "images": [{"bytes": p.image.data, "path": None} for p in r.pictures],
                "image_ids": [p.id for p in r.pictures],
                "image_roles": [p.role for p in r.pictures],
            }
            for r in rows
        ],
        schema=features.arrow_schema,
    )
    pq.write_table(table, path, row_group_size=100)


def _plain_parts(row: ExportRow) -> list[dict]:
    """The content parts with each image as its index into ``images``, role and id."""
    parts, index = [], 0
    for part in row.parts:
        if part["type"] == "text":
            parts.append(part)
        else:
            picture = part["picture"]
            parts.append({"type": "image", "index": index, "role": picture.role, "id": picture.id})
            index += 1
    return parts


_UTILS = '''"""lmms-eval task utilities for InstructIAD, written by `triad export --format lmms-eval`.

Prompts are the ones `triad eval` sends; answers are parsed with the project's parser and scored
with its metrics (`pip install instructiad` where lmms-eval runs).
"""

import json

from triad_eval.metrics import compute_metrics, headline
from triad_eval.parsing import parse_answer

TASKS = {tasks!r}


def doc_to_visual(doc):
    """The prompt's images in order: one-shot references, the query image, expert crops."""
    return [image.convert("RGB") for image in doc["images"]]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    """The prompt's text parts, one per line (models that place the images themselves)."""
    return doc["text"]


def doc_to_messages(doc, lmms_eval_specific_kwargs=None):
    """The prompt exactly as `triad eval` sends it: text and images interleaved."""
    images = doc_to_visual(doc)
    content = []
    for part in json.loads(doc["parts"]):
        if part["type"] == "image":
            content.append({{"type": "image", "url": images[part["index"]]}})
        else:
            content.append({{"type": "text", "text": part["text"]}})
    return [{{"role": "user", "content": content}}]


def doc_to_target(doc):
    return doc["answer"]


def process_results(doc, results):
    """The answer parsed with the project's parser, under every metric (each keeps its task)."""
    raw = results[0] if results else None
    raw = raw if isinstance(raw, str) else getattr(raw, "text", None)
    options = json.loads(doc["options"])
    parsed = parse_answer(raw, options)
    item = {{
        "id": doc["id"], "task": doc["task"], "condition": doc["condition"], "category": doc["category"],
        "label": doc["label"], "options": options, "answer": doc["answer"], "raw": raw, "parsed": parsed,
        "probs": None, "status": "ok" if parsed else "unparsed",
    }}
    return {{metric: item for metric in [*TASKS, "average"]}}


def _headline(items, task):
    """Balanced accuracy for discrimination, accuracy otherwise, as `triad eval` computes them
    (NaN where undefined, e.g. balanced accuracy with one class)."""
    cells = compute_metrics([i for i in items if i["task"] == task])["tasks"].get(task, {{}})
    value = headline(next(iter(cells.values())), task) if cells else None
    return float("nan") if value is None else value


def aggregate_average(items):
    """The MMAD-style average over the tasks (the unweighted mean of their headline numbers)."""
    averages = compute_metrics(items)["average"]
    value = next(iter(averages.values()), None)
    return float("nan") if value is None else value
'''


def _utils_py(tasks: list[str]) -> str:
    text = _UTILS.format(tasks=list(tasks))
    for task in tasks:
        text += f'\n\ndef aggregate_{task}(items):\n    return _headline(items, "{task}")\n'
    return text


# --- answers (replay) ---------------------------------------------------------------------------


def looks_like(path: Path) -> bool:
    """A sample log (``*_samples_<task>.jsonl``) or a folder holding some."""
    if path.is_dir():
        return any(SAMPLES.search(p.name) for p in path.rglob("*.jsonl"))
    return bool(SAMPLES.search(path.name))


def read(path: Path, data: EvalDataset) -> list[dict]:
    """The answers of a sample log, or of every sample log under a folder (sorted by path).

    Raises:
        InstructIADError: a file that cannot be read, a line that is not a sample, a sample that
            names no InstructIAD request or a record ``data`` lacks, or one answered twice.
    """
    files = sorted(p for p in path.rglob("*.jsonl") if SAMPLES.search(p.name)) if path.is_dir() else [path]
    if not files:
        raise InstructIADError(f"{path}: no lmms-eval sample log (*_samples_<task>.jsonl) in it")
    known = record_ids(data)
    found = []
    for file in files:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise InstructIADError(f"{file}: cannot read the sample log ({error})") from None
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{file}:{number}"
            try:
                sample = json.loads(line)
            except json.JSONDecodeError:
                raise InstructIADError(f"{where}: not a JSON line") from None
            found.append((where, _entry(sample, where, known)))
    return unique_entries(found)


def _entry(sample: object, where: str, known: set[str]) -> dict:
    if not isinstance(sample, dict):
        raise InstructIADError(f"{where}: not an lmms-eval sample")
    item = next(
        (v for v in sample.values() if isinstance(v, dict) and {"id", "task", "condition"} <= v.keys()),
        None,
    )
    if item is None:  # a task of another make: the document itself, where lmms-eval logged it
        doc = sample.get("doc")
        item = doc if isinstance(doc, dict) and {"id", "task", "condition"} <= doc.keys() else None
    if item is None:
        doc_id = sample.get("doc_id", "?")
        raise InstructIADError(f"{where}: sample doc_id {doc_id} names no record id, task and condition")
    if item["id"] not in known:
        raise InstructIADError(f"{where}: record id {item['id']!r} is not in the dataset")
    responses = sample.get("filtered_resps", sample.get("resps"))
    raw = responses[0] if isinstance(responses, list) and responses else responses
    while isinstance(raw, list):  # some models log [[text]]
        raw = raw[0] if raw else None
    if raw is not None and not isinstance(raw, str):
        raise InstructIADError(f"{where}: filtered_resps is not text")
    return {"id": item["id"], "task": item["task"], "condition": item["condition"], "raw": raw}
