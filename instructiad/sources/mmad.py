"""MMAD (ICLR 2025, github jam-cc/MMAD): its images and its own multiple-choice questions.

The root holds ``mmad.json``: an object from each query image's path (relative to the root,
``<dataset>/<class>/.../<folder>/<image>``, e.g. ``DS-MVTec/bottle/image/broken_large/000.png``)
to its entry, whose ``conversation`` lists the image's questions, each with ``Question``,
``Options`` (letter -> text), ``Answer`` (a letter) and ``type`` (one of MMAD's question
types, :data:`TYPES`). The entry also names normal template images (``random_templates``,
``similar_templates``, e.g. ``MVTec-AD/bottle/train/good/000.png``) and a ``mask_path``.

Each query image becomes a ``test`` record whose questions are MMAD's, verbatim (question,
options in their order, answer letter); CoT-M makes none. Question types become task ids in
snake case (``"Defect Classification"`` -> ``defect_classification``), so that ``triad eval
--tasks`` names them like CoT-M's; each question's ``facts`` keep MMAD's own type name and its
``annotation`` flag. The template images become ``train`` records without questions: the normal
references of the ``one_shot`` condition. Test records follow ``mmad.json``'s order (the order
MMAD's query scripts answer in); train records are sorted by path.

A record's category is the image's class (the second part of its path), its label ``normal``
when the image's folder is ``good`` (MMAD's scorer also calls an image normal by ``good`` in its
path), its defect type that folder's name. The record id is ``mmad/<class>/<split>/<path in
mmad.json>``, so an MMAD answers file (whose ``image`` is that path) maps back to it. Masks are
not read: MMAD's questions do not need them, and ``mask_path`` is kept in ``metadata.extra``
with the dataset and the template lists.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from instructiad.errors import BadFileError, InstructIADError, OnBadFile, raise_bad_file
from instructiad.sample import ANOMALY, GOOD, NORMAL, OwnQuestions, Sample
from instructiad.sources.files import confined
from instructiad.sources.registry import Reader

FILE = "mmad.json"
NAME = "mmad"

TYPES: dict[str, str] = {
    "Anomaly Detection": "anomaly_detection",
    "Defect Classification": "defect_classification",
    "Defect Localization": "defect_localization",
    "Defect Description": "defect_description",
    "Defect Analysis": "defect_analysis",
    "Object Classification": "object_classification",
    "Object Analysis": "object_analysis",
    "Object Structure": "object_structure",
    "Object Details": "object_details",
}
"""MMAD's question type -> the task id its questions have in records and runs."""
TASKS: dict[str, str] = {task: mmad_type for mmad_type, task in TYPES.items()}
"""Task id -> MMAD's question type, in MMAD's order."""
TABLE_TYPES = (
    "Anomaly Detection",
    "Defect Classification",
    "Defect Localization",
    "Defect Description",
    "Defect Analysis",
    "Object Classification",
    "Object Analysis",
)
"""The columns of MMAD's table: its seven question types."""
MERGED = {"Object Structure": "Object Analysis", "Object Details": "Object Analysis"}
"""Types MMAD's scorer counts under another column."""
TEMPLATE_LISTS = ("random_templates", "similar_templates")


def table_type(mmad_type: str) -> str:
    """The column of MMAD's table a question of ``mmad_type`` counts in."""
    return MERGED.get(mmad_type, mmad_type)


def mmad_image(record_id: str) -> str:
    """The path ``mmad.json`` names an image by, from the id of its record."""
    return record_id.split("/", 3)[3]


def looks_like(root: Path) -> bool:
    """``mmad.json`` at the root."""
    return (root / FILE).is_file()


def iter_samples(root: Path, on_bad: OnBadFile = raise_bad_file) -> Iterator[Sample]:
    """The query images in ``mmad.json`` order (``test``), then the template images (``train``).

    Raises:
        InstructIADError: ``mmad.json`` is unreadable, not JSON, or not an object of entries.
        BadFileError: an entry is malformed (no conversation, an unknown question type, an
            answer that is not one of its options, ...) or names an image that escapes the root
            or is missing (passed to ``on_bad``: skipped with ``--on-bad-file skip``).
    """
    entries, version = _read(root / FILE)
    templates: dict[str, str] = {}  # template path -> the entry that first names it
    for key, entry in entries.items():
        where = f"{root / FILE}: {key}"
        try:
            sample, named = _query(root, key, entry, where, version)
        except BadFileError as error:
            on_bad(error)
            continue
        for template in named:
            templates.setdefault(template, where)
        yield sample
    for template in sorted(templates):
        try:
            yield _template(root, template, templates[template], version)
        except BadFileError as error:
            on_bad(error)


def _read(path: Path) -> tuple[dict, str]:
    """The entries of ``mmad.json`` and its version: ``sha256:`` and the start of the file's hash."""
    try:
        data = path.read_bytes()
        entries = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except OSError as error:
        raise InstructIADError(f"{path}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise InstructIADError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise InstructIADError(f"{path}: not valid JSON (line {error.lineno}: {error.msg})") from None
    except ValueError as error:  # a key given twice
        raise InstructIADError(f"{path}: {error}") from None
    if not isinstance(entries, dict):
        raise InstructIADError(f"{path}: not a JSON object from image path to entry")
    if not entries:
        raise InstructIADError(f"{path}: lists no images")
    return entries, f"sha256:{hashlib.sha256(data).hexdigest()[:16]}"


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    found: dict = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"key {key!r} appears twice in one object")
        found[key] = value
    return found


def _parts(path: str, where: str, what: str) -> list[str]:
    parts = path.replace("\\", "/").split("/")
    if len(parts) < 4 or not all(parts):
        raise BadFileError(where, f"{what} path {path!r} is not <dataset>/<class>/<folder>/<image>")
    return parts


def _query(root: Path, key: str, entry: object, where: str, version: str) -> tuple[Sample, list[str]]:
    """The test sample of one ``mmad.json`` entry, and the template images it names."""
    if not isinstance(entry, dict):
        raise BadFileError(where, "entry is not a JSON object")
    conversation = entry.get("conversation")
    if not isinstance(conversation, list) or not conversation:
        raise BadFileError(where, "entry has no conversation (a list of questions)")
    parts = _parts(key, where, "image")
    image_path = confined(root, key, where, "image")
    questions, asked = [], {}
    for number, item in enumerate(conversation, start=1):
        question = _question(item, number, where)
        if question["type"] in asked:
            raise BadFileError(
                where,
                f"questions {asked[question['type']]} and {number} are both of type {TASKS[question['type']]!r}; "
                "an image has one question per type",
            )
        asked[question["type"]] = number
        questions.append(question)
    named = []
    for field in TEMPLATE_LISTS:
        listed = entry.get(field, [])
        if not isinstance(listed, list) or not all(isinstance(p, str) and p for p in listed):
            raise BadFileError(where, f"{field} is not a list of image paths")
        named += listed
    mask = entry.get("mask_path") or ""
    if not isinstance(mask, str):
        raise BadFileError(where, "mask_path is not a path")
    folder = parts[-2]
    label = NORMAL if folder == GOOD else ANOMALY
    extra = (
        ("mmad_dataset", parts[0]),
        ("mmad_image", key),
        ("mask_path", mask),
        *((field, tuple(entry.get(field, []))) for field in TEMPLATE_LISTS),
    )
    sample = Sample(
        NAME, parts[1], "test", root, image_path, key, label,
        defect_type=GOOD if label == NORMAL else folder,
        defect_types=() if label == NORMAL else (folder,),
        extra=extra,
        questions=OwnQuestions(NAME, version, tuple(questions)),
    )  # fmt: skip
    return sample, named


def _question(item: object, number: int, where: str) -> dict:
    """One ``conversation`` item as a record stores a question (MMAD's text and letters kept)."""
    if not isinstance(item, dict):
        raise BadFileError(where, f"question {number} is not a JSON object")
    mmad_type = item.get("type")
    if mmad_type not in TYPES:
        raise BadFileError(where, f"question {number} has unknown type {mmad_type!r} (known: {', '.join(TYPES)})")
    text = item.get("Question")
    if not isinstance(text, str) or not text.strip():
        raise BadFileError(where, f"question {number} has no Question text")
    options = item.get("Options")
    if (
        not isinstance(options, dict)
        or len(options) < 2
        or not all(len(k) == 1 and "A" <= k <= "Z" and isinstance(v, str) for k, v in options.items())
    ):
        raise BadFileError(where, f"question {number}: Options must map two or more letters A-Z to texts")
    answer = item.get("Answer")
    if answer not in options:
        known = ", ".join(options)
        raise BadFileError(where, f"question {number}: Answer {answer!r} is not one of its options ({known})")
    flag = item.get("annotation")
    return {
        "type": TYPES[mmad_type],
        "question": text,
        "options": [{"letter": letter, "text": option} for letter, option in options.items()],
        "answer": answer,
        "facts": json.dumps({"mmad_type": mmad_type, "annotation": flag if isinstance(flag, bool) else None}),
    }


def _template(root: Path, path: str, where: str, version: str) -> Sample:
    """A normal template image as a train sample without questions (a ``one_shot`` reference)."""
    parts = _parts(path, f"{where} (template)", "template image")
    image_path = confined(root, path, f"{where} (template)", "template image")
    return Sample(
        NAME, parts[1], "train", root, image_path, path, NORMAL, GOOD,
        extra=(("mmad_dataset", parts[0]), ("mmad_image", path)),
        questions=OwnQuestions(NAME, version),
    )  # fmt: skip


CITATION = """\
@inproceedings{jiang2025mmad,
  title     = {{MMAD}: The Comprehensive Benchmark for Multimodal Large Language Models in Industrial Anomaly
               Detection},
  author    = {Jiang, Xi and Li, Jian and Deng, Hanqiu and Liu, Yong and Gao, Bin-Bin and Zhou, Yifeng and
               Li, Jialin and Wang, Chengjie and Zheng, Feng},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2025},
  eprint    = {2410.09453},
  archivePrefix = {arXiv}
}"""

READER = Reader(
    name=NAME,
    description="MMAD: multiple-choice questions in seven types on images of MVTec AD (Defect Spectrum), "
    "MVTec LOCO, VisA and GoodsAD, its own questions kept (Jiang et al., ICLR 2025)",
    license="cc-by-nc-sa-4.0",
    homepage="https://github.com/jam-cc/MMAD",
    expected=f"{FILE} at the root, images at the paths it names (<dataset>/<class>/.../<image>)",
    looks_like=looks_like,
    iter_samples=iter_samples,
    citation=CITATION,
)
