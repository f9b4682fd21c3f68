"""The InstructIAD leaderboard as a Gradio app, for a Hugging Face Space.

It reads ``leaderboard.json`` from the results repo that ``triad push-results`` wrote and shows,
per dataset, the headline table and every task x condition, as ``triad leaderboard`` computes
them. ``triad leaderboard --space DIR`` copies this file to ``DIR/app.py`` with the repo id, the
revision and the question types filled in; the Space variables ``RESULTS_REPO`` and
``RESULTS_REVISION`` override them.

This module imports nothing of the instructiad package (a Space installs only its
requirements.txt): gradio, pandas and huggingface_hub, each where it is needed.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict

RESULTS_REPO = os.environ.get("RESULTS_REPO", "")
RESULTS_REVISION = os.environ.get("RESULTS_REVISION", "main")
QUESTION_TYPES: tuple[str, ...] = ()
"""Tasks in the order the package lists them; a task not named here follows, in order of appearance."""

HEADLINE = (
    "rank", "model", "scoring", "zero-shot", "process gain", "95% CI", "McNemar p", "one-shot gain", "expert gain",
    "blind", "visual gain",
)  # fmt: skip
NOTE = (
    "Discrimination is ranked by balanced accuracy (MMAD), other tasks by accuracy; averages are unweighted over "
    'tasks. The process gain pools every task\'s questions (task "all"), paired, with a bootstrap 95% CI and '
    "McNemar's exact test; one-shot and expert gains are differences of averages. Blind is the zero-shot prompt "
    "with every image removed (no_image); blind runs are not ranked. Failed requests are never scored; unparsed "
    "answers count as wrong."
)


def load_board(repo_id: str, revision: str, endpoint: str | None = None) -> dict:
    """``leaderboard.json`` of the dataset repo ``repo_id`` at ``revision``, from ``endpoint``
    (default: ``HF_ENDPOINT`` or huggingface.co; ``HF_TOKEN`` applies, as everywhere in huggingface_hub)."""
    from huggingface_hub import hf_hub_download

    path = hf_hub_download(repo_id, "leaderboard.json", repo_type="dataset", revision=revision, endpoint=endpoint)
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def tables(board: dict) -> list[dict]:
    """Per dataset (fingerprint), in the board's order: its ``title``, the ``headline`` table and
    the ``detail`` grid, each as ``(header, rows)`` of strings."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in board["entries"]:
        groups[row["dataset"]["fingerprint"]].append(row)
    return [
        {"title": _title(rows[0]["dataset"], fingerprint), "headline": _headline(rows), "detail": _detail(rows)}
        for fingerprint, rows in groups.items()
    ]


def _model(row: dict) -> str:
    """The model's name, marked † when `triad train` trained it on records scored here (as leaderboard.md)."""
    return row["model"] + (" †" if row.get("training", {}).get("scored_records_trained_on", 0) > 0 else "")


def _title(dataset: dict, fingerprint: str) -> str:
    return (
        f"{dataset['source']} · config {dataset['config']} · split {dataset['split']} · fingerprint {fingerprint[:12]}"
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def _minus(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else value - base


def _headline(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Per model: the zero-shot average, the pooled process gain with its CI and McNemar p, the
    one-shot and expert gains, the blind score and the visual gain (gains in points)."""
    body = []
    for rank, row in enumerate(rows, start=1):
        average = row["average"]
        zero = average.get("zero_shot")
        gain = row["process_gain"].get("all", {}).get("process vs zero_shot")
        blind = row["blind"]["average"].get("zero_shot", {})
        body.append(
            [
                str(rank),
                _model(row),
                row["scoring"],
                _pct(zero),
                _points(gain["delta"]) if gain else "-",
                f"{_points(gain['ci95'][0])} to {_points(gain['ci95'][1])}" if gain else "-",
                f"{gain['mcnemar_p']:.3g}" if gain else "-",
                _points(_minus(average.get("one_shot"), zero)),
                _points(_minus(average.get("expert"), zero)),
                _pct(blind.get("blind")),
                _points(blind.get("visual_gain")),
            ]
        )
    return list(HEADLINE), body


def _task_rank(task: str, seen: list[str]) -> tuple[int, int]:
    if task in QUESTION_TYPES:
        return (0, QUESTION_TYPES.index(task))
    return (1, seen.index(task))


def _detail(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Averages, then every task x condition, each followed by its blind score where some model
    ran that condition without images; then the unparsed and failed counts."""
    conditions = list(dict.fromkeys(c for r in rows for c in r["blind"]["average"]))
    by_task = list(dict.fromkeys(c for r in rows for t in r["blind"]["tasks"].values() for c in t))
    seen = list(dict.fromkeys(t for r in rows for t in r["blind"]["tasks"]))
    pairs = {(t, c) for r in rows for t, by_condition in r["blind"]["tasks"].items() for c in by_condition}
    columns = sorted(pairs, key=lambda pair: (_task_rank(pair[0], seen), by_task.index(pair[1])))
    blind = {c for r in rows for c, p in r["blind"]["average"].items() if p["blind"] is not None}
    header = ["rank", "model", "scoring"]
    for c in conditions:
        header += [f"avg {c}"] + ([f"avg {c} blind"] if c in blind else [])
    for t, c in columns:
        header += [f"{t} {c}"] + ([f"{t} {c} blind"] if c in blind else [])
    header += ["unparsed", "failed"]
    body = []
    for rank, row in enumerate(rows, start=1):
        cells = [str(rank), _model(row), row["scoring"]]
        for c in conditions:
            pair = row["blind"]["average"].get(c, {})
            cells += [_pct(pair.get("real"))] + ([_pct(pair.get("blind"))] if c in blind else [])
        for t, c in columns:
            pair = row["blind"]["tasks"].get(t, {}).get(c, {})
            cells += [_pct(pair.get("real"))] + ([_pct(pair.get("blind"))] if c in blind else [])
        cells += [str(row["counts"]["unparsed"]), str(row["counts"]["failed"])]
        body.append(cells)
    return header, body


def build_app(repo_id: str = RESULTS_REPO, revision: str = RESULTS_REVISION):
    """The Gradio app: a dataset picker, the headline table, the detail grid and a reload button.
    The results are read once at start and again on each reload."""
    import gradio as gr
    import pandas as pd

    def read() -> tuple[list[dict], str]:
        try:
            return tables(load_board(repo_id, revision)), ""
        except Exception as error:  # shown on the page: a Space that crashes shows nothing
            return [], f"Could not read leaderboard.json from {repo_id} at {revision}: {error}"

    def frame(table: tuple[list[str], list[list[str]]] | None):
        return pd.DataFrame(table[1], columns=table[0]) if table else pd.DataFrame()

    def show(groups: list[dict], title: str | None):
        group = next((g for g in groups if g["title"] == title), groups[0] if groups else None)
        return frame(group and group["headline"]), frame(group and group["detail"])

    def reload():
        groups, problem = read()
        titles = [g["title"] for g in groups]
        return (groups, gr.update(choices=titles, value=titles[0] if titles else None), *show(groups, None), problem)

    groups, problem = read()
    titles = [g["title"] for g in groups]
    first = show(groups, None)
    with gr.Blocks(title="InstructIAD leaderboard") as app:
        state = gr.State(groups)
        gr.Markdown(
            f"# InstructIAD leaderboard\n\nResults from the dataset repo `{repo_id}` at revision `{revision}` "
            "(`triad push-results`). Runs on different datasets are shown apart, never mixed."
        )
        message = gr.Markdown(problem)
        picker = gr.Dropdown(titles, value=titles[0] if titles else None, label="Dataset")
        headline = gr.Dataframe(first[0], label="Headline", interactive=False)
        with gr.Accordion("Every task and condition", open=True):
            detail = gr.Dataframe(first[1], label="Detail", interactive=False)
        gr.Markdown(NOTE)
        button = gr.Button("Reload results")
        picker.change(show, [state, picker], [headline, detail])
        button.click(reload, None, [state, picker, headline, detail, message])
    return app


if __name__ == "__main__":  # a Space runs `python app.py`
    build_app().launch()
