"""A YAML alias bomb ("billion laughs") in an annotation is refused before it expands, in every
command that reads annotations: `triad validate`, `triad render --processes`, `triad build --processes`.

The commands run as real processes with a memory ceiling and a timeout, so a bomb that does
expand fails the test instead of the machine.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from instructiad import processes
from instructiad.processes.validate import validate_file
from tests import layouts

BOTTLE = processes.BUNDLED / "mvtec_ad" / "bottle.yaml"


def bomb(levels: int = 9) -> str:
    """Nested anchors and aliases: 9 aliases of 9 aliases ... of 9 strings (9**10 once expanded)."""
    lines = ['x_lol0: &lol0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"x_lol{i}: &lol{i} [{', '.join([f'*lol{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def annotation(folder: Path, place: str, text: str) -> Path:
    path = folder / f"{place}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(bomb() + text)
    return path


def triad(*argv) -> subprocess.CompletedProcess:
    def limit_memory() -> None:  # 4 GiB of heap: far more than the command needs, far less than the bomb
        resource.setrlimit(resource.RLIMIT_DATA, (4 << 30, 4 << 30))

    return subprocess.run(
        [sys.executable, "-m", "triad_eval", *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit_memory,
        check=False,
    )


def refused(result: subprocess.CompletedProcess, path: Path, prefix: str) -> None:
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr.splitlines() == [
        f"{prefix}{path}:2: (document): invalid YAML: alias *lol0 is not allowed; write the value out"
    ]


def test_validate_refuses_an_alias_bomb(tmp_path):
    path = annotation(tmp_path, "mvtec_ad/bottle", BOTTLE.read_text())
    refused(triad("validate", path), path, "triad: invalid: ")


def test_render_with_processes_refuses_an_alias_bomb(tmp_path):
    path = annotation(tmp_path / "annotations", "mvtec_ad/bottle", BOTTLE.read_text())
    result = triad("render", "--source", "mvtec_ad", "--category", "bottle", "--processes", tmp_path / "annotations")
    refused(result, path, "triad: error: ")
    assert result.stdout == ""


def test_build_with_processes_refuses_an_alias_bomb_before_any_work(tmp_path):
    layouts.make_folder(tmp_path / "line")
    gasket = BOTTLE.read_text().replace("id: mvtec_ad/bottle", "id: folder/gasket")
    path = annotation(tmp_path / "annotations", "folder/gasket", gasket)
    out = tmp_path / "out"
    result = triad("build", "--source", f"folder={tmp_path / 'line'}", "--out", out, "--processes", path.parent.parent)
    refused(result, path, "triad: error: ")
    assert not out.exists()


@pytest.mark.parametrize("text", ["a: &x 1\nb: *x\n", "a: &x [1]\nb: [*x, *x]\n", "a: &x {k: 1}\nb:\n  <<: *x\n"])
def test_any_alias_is_refused_with_its_line(tmp_path, text):
    path = tmp_path / "mvtec_ad" / "bottle.yaml"
    path.parent.mkdir()
    path.write_text(text)
    (problem,) = validate_file(path)
    assert (problem.line, problem.where) == (text.count("\n", 0, text.index("*")) + 1, "(document)")
    assert "alias *x is not allowed" in problem.message
