"""The templating engine: versioned template sets rendered in Jinja2's sandbox.

A template set is a folder ``cot_m/templates/<set>/`` with a ``set.yaml`` (``name``,
``version``, ``rules``, ``description``) and one folder per *slot* (e.g. ``questions/location``) holding
one or more ``.j2`` files: the phrasing variants of that slot. Which variant a record gets is
chosen with a generator seeded from the record id, never from global random state.

Templates run in :class:`jinja2.sandbox.SandboxedEnvironment` with ``StrictUndefined``: a
template that reads a missing field, or reaches outside the sandbox (``__class__`` and the
like), fails with a :class:`TemplateError` that names the template.

Earlier versions of a set stay selectable in folders ``<set>@<version>/``, so a dataset built
with them can be rebuilt byte for byte. ``rules`` is the version of the question-making rules
the set goes with (:mod:`cot_m.questions`): 1 for the first set, 2 from 2.0.0 on.
"""

from __future__ import annotations

import random
from functools import cache
from pathlib import Path

import jinja2
import yaml
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from instructiad.errors import InstructIADError

TEMPLATES = Path(__file__).parent / "templates"
"""The bundled template sets."""
DEFAULT_SET = "default"


class TemplateError(InstructIADError):
    """A template set is unknown, or one of its templates fails to load or render."""


def _lower_first(text: str) -> str:
    """``"A large chip"`` -> ``"a large chip"`` (keeps acronyms such as ``"PCB"``)."""
    if len(text) > 1 and text[1].isupper():
        return text
    return text[:1].lower() + text[1:]


class TemplateSet:
    """One versioned set of templates, loaded from its folder.

    Args:
        name: folder name under ``root``.
        version: if given, the set's ``version`` must equal it.
        root: folder that holds template sets (default: :data:`TEMPLATES`, read when called).
    """

    def __init__(self, name: str = DEFAULT_SET, version: str | None = None, root: str | Path | None = None) -> None:
        root = TEMPLATES if root is None else root
        folder = Path(root) / name
        if version is not None and (Path(root) / f"{name}@{version}" / "set.yaml").is_file():
            folder = Path(root) / f"{name}@{version}"
        manifest = folder / "set.yaml"
        if not manifest.is_file():
            known = sorted(p.name for p in Path(root).iterdir() if (p / "set.yaml").is_file())
            raise TemplateError(f"unknown template set {name!r} in {root} (known: {', '.join(known)})")
        meta = yaml.safe_load(manifest.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or not isinstance(meta.get("version"), str):
            raise TemplateError(f"{manifest}: needs a `version` string")
        if version is not None and version != meta["version"]:
            raise TemplateError(f"template set {name!r} is version {meta['version']}, not {version}")
        self.name, self.version, self.folder = name, meta["version"], folder
        self.rules = int(meta.get("rules", 1))
        self.description = str(meta.get("description", ""))
        self._env = SandboxedEnvironment(
            loader=jinja2.FileSystemLoader(folder),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            auto_reload=False,  # a set is read once; no stat() per render
        )
        self._variants: dict[str, list[str]] = {}
        self._env.filters["lower_first"] = _lower_first

    def variants(self, slot: str) -> list[str]:
        """Template files of ``slot`` (a file ``slot.j2`` or a folder of ``*.j2``), sorted."""
        if slot not in self._variants:
            self._variants[slot] = self._find_variants(slot)
        return self._variants[slot]

    def _find_variants(self, slot: str) -> list[str]:
        single = self.folder / f"{slot}.j2"
        if single.is_file():
            return [f"{slot}.j2"]
        files = sorted((self.folder / slot).glob("*.j2"))
        if not files:
            raise TemplateError(f"template set {self.name!r} has no template for {slot!r}")
        return [f.relative_to(self.folder).as_posix() for f in files]

    def render(self, slot: str, context: dict, rng: random.Random | None = None) -> str:
        """Render ``slot`` with ``context``; ``rng`` picks among its phrasing variants.

        Raises:
            TemplateError: the template reads a missing field, breaks the sandbox, or is
                malformed; the message names the template file.
        """
        choices = self.variants(slot)
        name = choices[rng.randrange(len(choices))] if rng and len(choices) > 1 else choices[0]
        where = self.folder / name
        try:
            return self._env.get_template(name).render(**context).strip()
        except SecurityError as error:
            raise TemplateError(f"{where}: blocked by the sandbox ({error})") from None
        except jinja2.UndefinedError as error:
            raise TemplateError(f"{where}: reads a missing field ({error})") from None
        except jinja2.TemplateSyntaxError as error:
            raise TemplateError(f"{where}:{error.lineno}: template syntax error ({error.message})") from None


@cache
def template_set(name: str = DEFAULT_SET, version: str | None = None) -> TemplateSet:
    """The bundled template set ``name`` (loaded once per process)."""
    return TemplateSet(name, version)
