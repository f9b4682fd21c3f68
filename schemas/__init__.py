"""JSON Schemas shipped with the package (draft 2020-12), and a helper to check documents."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files

from jsonschema import Draft202012Validator


@cache
def load(name: str) -> dict:
    """The schema ``schemas/<name>.schema.json`` as a dict."""
    return json.loads(files(__name__).joinpath(f"{name}.schema.json").read_text(encoding="utf-8"))


def errors(instance: object, name: str) -> list[str]:
    """Every way ``instance`` breaks schema ``name``, as ``"<json path>: <message>"`` lines."""
    validator = Draft202012Validator(load(name))
    found = sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{e.json_path}: {e.message}" for e in found]
