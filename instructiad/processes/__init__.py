"""Manufacturing-process annotations: how each product is made and which step causes which defect.

One reviewed YAML file per product category, ``instructiad/processes/<source>/<category>.yaml``,
following ``schemas/process.schema.json``:

>>> from instructiad import processes
>>> bottle = processes.load("mvtec_ad", "bottle")
>>> [step.name for step in bottle.process]
>>> bottle.defect("broken_large").caused_by
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from instructiad.errors import InstructIADError
from instructiad.processes.validate import annotation_files, parse, steps_named, validate_file

BUNDLED = Path(__file__).parent
"""Folder of the annotations shipped with the package."""

__all__ = ["BUNDLED", "Catalog", "Defect", "ProcessAnnotation", "Step", "list_annotations", "load", "load_file"]


@dataclass(frozen=True)
class Step:
    """One manufacturing step."""

    id: str
    name: str
    description: str
    equipment: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Defect:
    """One defect type: what it looks like and which steps cause it, how."""

    key: str
    name: str
    appearance: str
    caused_by: tuple[str, ...]
    mechanism: str
    severity: str
    kind: str
    aliases: tuple[str, ...] = ()
    mechanisms: dict[str, str] = field(default_factory=dict)
    """How each step in ``caused_by`` produces it, where the file gives one text per step."""
    catch_all: bool = False
    """A class that gathers unrelated defects (VisA ``other``): it has no single answer."""


@dataclass(frozen=True)
class ProcessAnnotation:
    """A category's process annotation, as validated from its YAML file."""

    id: str
    product_name: str
    product_description: str
    product_plural: bool
    materials: tuple[str, ...]
    process: tuple[Step, ...]
    normal_appearance: tuple[str, ...]
    acceptable_variation: tuple[str, ...]
    defects: dict[str, Defect]
    references: tuple[dict, ...]
    contributors: tuple[str, ...]
    review_status: str
    path: Path

    @property
    def source(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def category(self) -> str:
        return self.id.split("/", 1)[1]

    def step(self, step_id: str) -> Step:
        """The step with id ``step_id``."""
        return next(s for s in self.process if s.id == step_id)

    def steps_named(self, text: str) -> dict[str, str]:
        """``{step id: phrase}`` for the steps that ``text`` names by name or by one of their ``terms``."""
        return steps_named(text, [(s.id, [s.name.lower(), *s.terms]) for s in self.process])

    def defect(self, name: str) -> Defect | None:
        """The defect called ``name`` (its key or one of its aliases), or ``None``."""
        if name in self.defects:
            return self.defects[name]
        return next((d for d in self.defects.values() if name in d.aliases), None)


def load_file(path: str | Path, authoring: bool = True) -> ProcessAnnotation:
    """Validate and load one annotation file (``authoring=False``: as a built dataset ships
    it, see :func:`~instructiad.processes.validate.validate_file`).

    Raises:
        InstructIADError: the file is invalid (the message is its first problem).
    """
    path = Path(path)
    problems = validate_file(path, authoring)
    if problems:
        more = f" (and {len(problems) - 1} more; run `triad validate {path}`)" if len(problems) > 1 else ""
        raise InstructIADError(f"{problems[0]}{more}")
    data, _ = parse(path.read_text(encoding="utf-8"), path)
    return ProcessAnnotation(
        id=data["id"],
        product_name=data["product"]["name"],
        product_description=data["product"]["description"],
        product_plural=data["product"].get("number") == "plural",
        materials=tuple(data["materials"]),
        process=tuple(
            Step(
                s["id"],
                s["name"],
                s["description"],
                tuple(s.get("equipment", ())),
                tuple(s.get("parameters", ())),
                tuple(s.get("terms", ())),
            )
            for s in data["process"]
        ),
        normal_appearance=tuple(data["normal_appearance"]),
        acceptable_variation=tuple(data["acceptable_variation"]),
        defects={
            key: Defect(
                key,
                d["name"],
                d["appearance"],
                tuple(d["caused_by"]),
                _mechanism_text(d["mechanism"], d["caused_by"]),
                d["severity"],
                d["kind"],
                tuple(d.get("aliases", ())),
                {c: d["mechanism"][c] for c in d["caused_by"]} if isinstance(d["mechanism"], dict) else {},
                bool(d.get("catch_all", False)),
            )
            for key, d in data["defects"].items()
        },
        references=tuple(data["references"]),
        contributors=tuple(data["contributors"]),
        review_status=data["review"]["status"],
        path=path,
    )


def _mechanism_text(mechanism: str | dict[str, str], caused_by: list[str]) -> str:
    """One text for the whole mechanism: per-step texts joined in ``caused_by`` order."""
    return mechanism if isinstance(mechanism, str) else " ".join(mechanism[step] for step in caused_by)


def load(source: str, category: str, *, root: str | Path = BUNDLED) -> ProcessAnnotation:
    """The annotation of ``source``/``category`` under ``root`` (default: the bundled ones).

    Raises:
        InstructIADError: there is none, or it is invalid.
    """
    path = Path(root) / source / f"{category}.yaml"
    if not path.is_file():
        raise InstructIADError(f"{path}: no process annotation for {source}/{category}")
    return load_file(path)


def list_annotations(root: str | Path = BUNDLED) -> list[str]:
    """Ids (``<source>/<category>``) of the annotations under ``root``, sorted."""
    root = Path(root)
    return sorted(f"{p.parent.name}/{p.stem}" for p in annotation_files([root]) if p.parent.parent == root)


class Catalog:
    """The annotations a build links records to: the bundled ones, plus (overriding them) a
    folder of the user's own laid out as ``<source>/<category>.yaml``.

    The user's files are validated when the catalog is made, so a build fails before any work.
    """

    def __init__(self, extra: str | Path | None = None) -> None:
        self.paths = {id_: BUNDLED / f"{id_}.yaml" for id_ in list_annotations(BUNDLED)}
        self._loaded: dict[str, ProcessAnnotation] = {}
        if extra is not None:
            extra = Path(extra).expanduser().absolute()
            if not extra.is_dir():
                raise InstructIADError(f"{extra}: process annotation folder does not exist")
            for id_ in list_annotations(extra):
                self._loaded[id_] = load_file(extra / f"{id_}.yaml")
                self.paths[id_] = extra / f"{id_}.yaml"

    def id_for(self, source: str, category: str) -> str | None:
        """``<source>/<category>`` when that category has an annotation, else ``None``."""
        id_ = f"{source}/{category}"
        return id_ if id_ in self.paths else None

    def of_source(self, source: str) -> list[ProcessAnnotation]:
        """Every annotation of ``source``, in id order."""
        return [self.get(id_) for id_ in sorted(self.paths) if id_.split("/", 1)[0] == source]

    def get(self, id_: str) -> ProcessAnnotation:
        """The annotation with id ``id_`` (loaded once)."""
        if id_ not in self._loaded:
            self._loaded[id_] = load_file(self.paths[id_])
        return self._loaded[id_]
