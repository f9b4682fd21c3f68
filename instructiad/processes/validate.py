"""`triad validate`: schema validation plus cross-checks of process annotations.

Every problem names the file, the line and the path inside the document, e.g.
``processes/mvtec_ad/bottle.yaml:42: defects.broken_small.caused_by[0]: ...``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

import schemas
from instructiad.sources import READERS

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an annotation file."""

    path: Path
    line: int
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.where}: {self.message}"


class _StrictLoader(yaml.SafeLoader):
    """The safe loader, refusing duplicate keys (which plain YAML silently overwrites) and
    aliases (``*name``): nested ones ("billion laughs") expand exponentially in every walk of
    the document, and an annotation never needs them."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"alias *{event.anchor} is not allowed; write the value out", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def parse(text: str, path: Path) -> tuple[object, dict[Location, int]]:
    """Parse one YAML document safely; return it and the line of every key and item in it.

    Raises:
        ValueError: with a ``Problem`` as its only argument, for malformed YAML or a tag
            that would construct an object.
    """
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise ValueError(Problem(path, 1, "(document)", "the file is empty"))
        lines: dict[Location, int] = {}
        _collect_lines(node, (), lines)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        problem = str(error.problem or error.context)
        if "could not determine a constructor" in problem:  # e.g. !!python/object/apply
            tag = problem.split(" for the tag ")[-1]
            problem = f"tag {tag} would construct an object; only plain YAML is allowed"
        raise ValueError(Problem(path, line, "(document)", f"invalid YAML: {problem}")) from None
    finally:
        loader.dispose()
    return data, lines


def _collect_lines(node: yaml.Node, location: Location, lines: dict[Location, int]) -> None:
    lines[location] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            _collect_lines(value_node, (*location, key), lines)
            lines[(*location, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _collect_lines(item, (*location, index), lines)


def _where(location: Location) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def _line(lines: dict[Location, int], location: Location) -> int:
    while location and location not in lines:
        location = location[:-1]
    return lines.get(location, 1)


def validate_file(path: str | Path, authoring: bool = True) -> list[Problem]:
    """Every problem of one annotation file (empty when it is valid).

    The file's place says what it annotates: ``.../<source>/<category>.yaml``. With
    ``authoring=False`` only what loading needs is checked (the schema, the place, steps and
    causes), not the rules for writing one that have grown since (mechanisms that name other
    steps, the reader's defect list): for annotations a built dataset ships.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return [Problem(path, 1, "(document)", f"cannot read the file ({error})")]
    try:
        data, lines = parse(text, path)
    except ValueError as error:
        return [error.args[0]]

    def problem(location: Location, message: str) -> Problem:
        return Problem(path, _line(lines, location), _where(location), message)

    found = [problem(tuple(e.absolute_path), e.message) for e in _schema_errors(data)]
    if not isinstance(data, dict):
        return found
    found += _check_place(data, path, problem)
    found += _check_steps_and_causes(data, problem)
    if authoring:
        found += _check_mechanisms(data, problem)
        found += _check_defect_coverage(data, path, problem)
    return sorted(found, key=lambda p: (p.line, p.where, p.message))


def _schema_errors(data: object) -> list:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schemas.load("process"))
    return sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])


def _check_place(data: dict, path: Path, problem) -> list[Problem]:
    source, category = path.parent.name, path.stem
    found = []
    if data.get("id") != f"{source}/{category}" and isinstance(data.get("id"), str):
        found.append(problem(("id",), f"id {data['id']!r} does not match the file's place {source}/{category}"))
    if source not in READERS:
        found.append(problem((), f"folder {source!r} is not a source (known: {', '.join(READERS)})"))
    elif READERS[source].defects and category not in READERS[source].defects:
        known = ", ".join(READERS[source].defects)
        found.append(problem((), f"{category!r} is not a {source} category (known: {known})"))
    return found


def _check_steps_and_causes(data: dict, problem) -> list[Problem]:
    found = []
    steps = [s for s in data.get("process") or [] if isinstance(s, dict)]
    seen: set[str] = set()
    for index, step in enumerate(steps):
        if step.get("id") in seen:
            found.append(problem(("process", index, "id"), f"duplicate step id {step['id']!r}"))
        seen.add(step.get("id"))
    defects = data.get("defects") if isinstance(data.get("defects"), dict) else {}
    for name, defect in defects.items():
        causes = defect.get("caused_by") if isinstance(defect, dict) else None
        for index, cause in enumerate(causes if isinstance(causes, list) else []):
            if cause not in seen:
                message = f"step {cause!r} is not a process step id (steps: {', '.join(map(str, seen))})"
                found.append(problem(("defects", name, "caused_by", index), message))
    return found


def steps_named(text: str, steps: list[tuple[str, list[str]]]) -> dict[str, str]:
    """``{step id: the phrase found}`` for every step that ``text`` names.

    Args:
        steps: ``(id, phrases)`` per step; a step's phrases are its lower-cased name and its
            ``terms``. They match whole words, in any case.
    """
    text = text.lower()
    named = {}
    for step_id, phrases in steps:
        for phrase in phrases:
            if phrase and re.search(rf"(?<![a-z0-9]){re.escape(phrase)}(?![a-z0-9])", text):
                named[step_id] = phrase
                break
    return named


def _check_mechanisms(data: dict, problem) -> list[Problem]:
    """A mechanism explains the steps in ``caused_by`` and names no other step."""
    steps = [
        (s["id"], [str(s.get("name", "")).lower(), *(str(t).lower() for t in s.get("terms") or [])])
        for s in data.get("process") or []
        if isinstance(s, dict) and isinstance(s.get("id"), str)
    ]
    defects = data.get("defects") if isinstance(data.get("defects"), dict) else {}
    found = []
    for name, defect in defects.items():
        if not isinstance(defect, dict) or not isinstance(defect.get("caused_by"), list):
            continue
        causes, mechanism = defect["caused_by"], defect.get("mechanism")
        texts = mechanism if isinstance(mechanism, dict) else {None: mechanism}
        if isinstance(mechanism, dict) and set(mechanism) != set(causes):
            message = f"keys {sorted(mechanism)} must be the caused_by steps {sorted(causes)}"
            found.append(problem(("defects", name, "mechanism"), message))
        for key, text in texts.items():
            where = ("defects", name, "mechanism") + ((key,) if key else ())
            for step_id, term in steps_named(str(text or ""), steps).items():
                if step_id not in causes:
                    message = f"names step {step_id!r} ({term!r}), which is not in caused_by"
                    found.append(problem(where, message))
    return found


def near_duplicates(paths: list[Path], threshold: float = 0.8, min_words: int = 12) -> list[str]:
    """Warnings for texts that two annotation files share almost word for word.

    Compares the product description, step descriptions, normal appearance and defect
    appearances of every pair of files (word 3-gram overlap, Jaccard >= ``threshold``);
    texts under ``min_words`` words are ignored.
    """
    shingles: list[tuple[str, str, frozenset]] = []
    for path in paths:
        try:
            data, _ = parse(path.read_text(encoding="utf-8"), path)
        except (OSError, UnicodeDecodeError, ValueError):
            continue  # validate_file reports it
        for where, text in _long_texts(data):
            words = re.findall(r"[a-z0-9]+", text.lower())
            if len(words) >= min_words:
                shingles.append((str(path), where, frozenset(zip(words, words[1:], words[2:], strict=False))))
    warnings = []
    for i, (path_a, where_a, a) in enumerate(shingles):
        for path_b, where_b, b in shingles[i + 1 :]:
            if path_a != path_b and len(a & b) >= threshold * len(a | b):
                warnings.append(f"{path_a}: {where_a} is nearly the same text as {path_b}: {where_b}")
    return warnings


def _long_texts(data: object) -> list[tuple[str, str]]:
    if not isinstance(data, dict):
        return []
    product = data.get("product") if isinstance(data.get("product"), dict) else {}
    texts = [("product.description", product.get("description"))]
    texts += [
        (f"process[{i}].description", s.get("description"))
        for i, s in enumerate(data.get("process") or [])
        if isinstance(s, dict)
    ]
    texts += [(f"normal_appearance[{i}]", t) for i, t in enumerate(data.get("normal_appearance") or [])]
    defects = data.get("defects") if isinstance(data.get("defects"), dict) else {}
    texts += [(f"defects.{k}.appearance", d.get("appearance")) for k, d in defects.items() if isinstance(d, dict)]
    return [(where, text) for where, text in texts if isinstance(text, str)]


def _check_defect_coverage(data: dict, path: Path, problem) -> list[Problem]:
    source, category = path.parent.name, path.stem
    known = READERS[source].defects.get(category) if source in READERS else None
    defects = data.get("defects") if isinstance(data.get("defects"), dict) else {}
    if not known:
        return []
    names_of = {name: {name, *(d.get("aliases") or [] if isinstance(d, dict) else [])} for name, d in defects.items()}
    covered = set().union(*names_of.values()) if names_of else set()
    found = [
        problem(("defects",), f"defect {name!r} that the {source} reader emits for {category} is not annotated")
        for name in known
        if name not in covered
    ]
    found += [
        problem(("defects", name), f"{name!r} is not a defect the {source} reader emits for {category}")
        for name, spellings in names_of.items()
        if not spellings & set(known)
    ]
    return found


def annotation_files(paths: list[str | Path]) -> list[Path]:
    """The ``*.yaml`` files named by ``paths`` (files, or folders searched recursively)."""
    files = []
    for path in map(Path, paths):
        files += sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
    return files
