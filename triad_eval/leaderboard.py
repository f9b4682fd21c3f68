"""`triad leaderboard`: rank runs and write leaderboard.json, leaderboard.md and leaderboard.html.

Runs are grouped by dataset fingerprint (and config and split): numbers from different data
are shown apart, never mixed. Shards of one evaluation are joined before ranking. The HTML
page is self-contained (plots as inline PNG) and needs no network to view.

Blind runs (``no_image`` conditions) are not ranked: each model's blind score is shown beside
the image-bearing condition it pairs with (``no_image`` with ``zero_shot``, ``process+no_image``
with ``process``), with the visual gain (real minus blind); ``-`` where a model has no blind run.
"""

from __future__ import annotations

import base64
import html
import io
import sys
from collections import defaultdict
from pathlib import Path

import schemas
from cot_m import QUESTION_TYPES
from instructiad.jsonio import write_json
from instructiad.sources import mmad
from triad_eval.conditions import is_blind, sighted
from triad_eval.metrics import READS, anomaly_score, compute_metrics, headline
from triad_eval.run_folder import METRICS, identity, join_shards, load_run
from triad_eval.trained import trained_scored

_READS = (*READS, "record_index", "notes")
"""What the leaderboard reads of a prediction (the metrics' fields, the samples view's order and regions)."""


def collect(folders: list[Path]) -> list[dict]:
    """One entry per evaluation (shards joined), with its predictions for the plots."""
    runs: dict[str, list[tuple[Path, dict, list[dict], dict]]] = defaultdict(list)
    for folder in folders:
        config, predictions, metrics = load_run(folder, _READS)
        runs[identity(config)].append((Path(folder), config, predictions, metrics))
    entries = []
    for parts in runs.values():
        whole = [part for part in parts if not part[1].get("shard")]
        if len(whole) > 1:  # the same evaluation run again: the newest counts
            newest = max(whole, key=lambda part: (part[0] / METRICS).stat().st_mtime_ns)
            others = ", ".join(str(part[0]) for part in whole if part is not newest)
            print(f"triad: note: {newest[0]} repeats {others} (same model, data and settings); kept the newest",
                  file=sys.stderr)  # fmt: skip
            parts = [newest]
        if len(parts) == 1 and not parts[0][1].get("shard"):
            folder, config, predictions, metrics = parts[0]
        else:
            config, predictions = join_shards([part[:3] for part in parts])
            metrics = compute_metrics(predictions, seed=config["seed"])
        runs_used = [str(part[0].absolute()) for part in parts]
        entries.append({"config": config, "runs": runs_used, "predictions": predictions, "metrics": metrics})
    return entries


def build_board(entries: list[dict]) -> dict:
    """The leaderboard.json payload (see ``schemas/leaderboard.schema.json``), ranked within each
    dataset by the number of question types answered, then by the best average."""
    rows = []
    for entry in entries:
        config, metrics = entry["config"], entry["metrics"]
        dataset = config["dataset"]
        rows.append(
            {
                "model": config["model"],
                "scoring": config["scoring"],
                "dataset": {k: dataset[k] for k in ("fingerprint", "source", "config", "split")},
                "runs": entry["runs"],
                "counts": metrics["counts"],
                "average": metrics["average"],
                "tasks": {
                    task: {condition: headline(m, task) for condition, m in by_condition.items()}
                    for task, by_condition in metrics["tasks"].items()
                },
                "process_gain": {
                    task: {
                        name: {k: g[k] for k in ("delta", "ci95", "mcnemar_p", "n_pairs")} for name, g in gains.items()
                    }
                    for task, gains in metrics["process_gain"].items()
                },
            }
        )
        rows[-1]["blind"] = _blind(rows[-1])
        trained_on = config.get("generation", {}).get("trained_on")
        if trained_on:  # a model made by `triad train`: did it see any record scored here?
            scored = {p["id"] for p in entry["predictions"]}
            rows[-1]["training"] = {
                "split": trained_on.get("split"),
                "categories": trained_on.get("categories", []),
                "held_out": trained_on.get("held_out", []),
                "dataset_fingerprint": trained_on.get("dataset", {}).get("fingerprint"),
                "scored_records": len(scored),
                "scored_records_trained_on": trained_scored(trained_on, scored),
            }
        if "mmad" in metrics:  # MMAD's table, its Average row (mean over datasets) per condition
            rows[-1]["mmad"] = {
                c: {"types": t["average"]["accuracy"], "average": t["average"]["average"]}
                for c, t in metrics["mmad"].items()
            }
    # Entries that answer more question types rank first (an expert answering two types is not
    # comparable with a model answering five), then by best average.
    rows.sort(key=lambda r: (r["dataset"]["fingerprint"], -len(r["tasks"]), -_score(r), r["model"], r["scoring"]))
    return {"schema_version": 1, "entries": rows}


def _score(row: dict) -> float:
    """The best average over image-bearing conditions (a blind score never ranks a model)."""
    values = [v for c, v in row["average"].items() if v is not None and not is_blind(c)]
    return max(values) if values else -1.0


def _pair(real: float | None, blind: float | None) -> dict:
    gain = None if real is None or blind is None else round(real - blind, 6)
    return {"real": real, "blind": blind, "visual_gain": gain}


def _blind(row: dict) -> dict:
    """Per task and on average, for every image-bearing condition (and every one a blind run
    pairs with): the real score, the blind score (``None`` without a blind run) and the gain."""

    def pairs(scores: dict[str, float | None]) -> dict[str, dict]:
        real = list(dict.fromkeys(sighted(c) for c in scores))
        blind = {sighted(c): v for c, v in scores.items() if is_blind(c)}
        return {c: _pair(scores.get(c), blind.get(c)) for c in real}

    return {
        "tasks": {task: pairs(by_condition) for task, by_condition in row["tasks"].items()},
        "average": pairs(row["average"]),
    }


def write_leaderboard(folders: list[Path], out: Path) -> dict:
    """Write the three leaderboard files into ``out`` and return the JSON payload."""
    entries = collect(folders)
    board = build_board(entries)
    problems = schemas.errors(board, "leaderboard")
    if problems:
        raise RuntimeError(f"leaderboard does not match its schema: {problems[0]}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "leaderboard.json", board)
    (out / "leaderboard.md").write_text(to_markdown(board), encoding="utf-8")
    (out / "leaderboard.html").write_text(to_html(board, entries), encoding="utf-8")
    return board


def _groups(board: dict) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = defaultdict(list)
    for row in board["entries"]:
        groups[row["dataset"]["fingerprint"]].append(row)
    return groups


def _columns(rows: list[dict]) -> list[tuple[str, str]]:
    """(task, condition) columns: tasks in their usual order, conditions as they first appear;
    blind conditions appear under the image-bearing condition they pair with."""
    conditions = list(dict.fromkeys(c for r in rows for by_task in r["blind"]["tasks"].values() for c in by_task))
    pairs = {(t, c) for r in rows for t, by_condition in r["blind"]["tasks"].items() for c in by_condition}
    return sorted(pairs, key=lambda pair: (QUESTION_TYPES.index(pair[0]), conditions.index(pair[1])))


def _has_blind(rows: list[dict]) -> set[str]:
    """Image-bearing conditions some model of ``rows`` also ran blind."""
    return {c for r in rows for c, p in r["blind"]["average"].items() if p["blind"] is not None}


def _board_table(rows: list[dict], newline: str = " ") -> tuple[list[str], list[list[str]]]:
    """Header and cells of a dataset's main table: averages, then every task x condition, each
    followed by its blind score where some model ran that condition without images."""
    conditions = list(dict.fromkeys(c for r in rows for c in r["blind"]["average"]))
    columns, blind = _columns(rows), _has_blind(rows)
    header = ["rank", "model", "scoring"]
    for c in conditions:
        header += [f"avg {c}"] + ([f"avg {c}{newline}blind"] if c in blind else [])
    for t, c in columns:
        header += [f"{t}{newline}{c}"] + ([f"{t}{newline}{c} blind"] if c in blind else [])
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


HEADLINE = (
    "rank", "model", "scoring", "zero-shot", "process gain", "95% CI", "McNemar p", "one-shot gain", "expert gain",
    "blind", "visual gain",
)  # fmt: skip
"""What the benchmark exists for, per model: the zero-shot average, what the process context adds
(pooled over every task's questions, paired), what a reference image and an expert add, and the
score without the image."""


def _headline(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of a dataset's headline table (:data:`HEADLINE`); gains in points."""
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


MMAD_NOTE = (
    "MMAD's table by MMAD's rules, in %: per question type the mean over datasets (Anomaly Detection as "
    "balanced accuracy), and their average."
)


def _mmad_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """MMAD's published columns per model and condition (no rows when no run asked MMAD's questions)."""
    types = [t for t in mmad.TABLE_TYPES if any(t in c["types"] for r in rows for c in r.get("mmad", {}).values())]
    body = [
        [row["model"], row["scoring"], condition, *(_pct(table["types"].get(t)) for t in types), _pct(table["average"])]
        for row in rows
        for condition, table in row.get("mmad", {}).items()
    ]
    return ["model", "scoring", "condition", *types, "average"], body


TRAINED_MARK = " †"
"""After a model's name where it was trained on records the leaderboard scores."""


def _model(row: dict) -> str:
    """The model's name, marked when it was trained on any record it is scored on."""
    contaminated = row.get("training", {}).get("scored_records_trained_on", 0) > 0
    return row["model"] + (TRAINED_MARK if contaminated else "")


def _training_notes(rows: list[dict]) -> list[str]:
    """One sentence per fine-tuned model: what it was trained on, and whether this table scores
    any of those records."""
    notes = []
    for row in rows:
        training = row.get("training")
        if not training:
            continue
        held = ", ".join(training["held_out"]) or "none"
        seen = training["scored_records_trained_on"]
        said = (
            f"{_model(row)}: trained on {seen} of the {training['scored_records']} records scored here (split "
            f"{training['split']} of {', '.join(training['categories'])}); its scores measure recall of its training "
            "data, not inspection"
            if seen
            else f"{row['model']}: fine-tuned on split {training['split']} (held out: {held}); none of the "
            f"{training['scored_records']} records scored here"
        )
        notes.append(said)
    return notes


def _minus(value: float | None, base: float | None) -> float | None:
    return None if value is None or base is None else value - base


def _visual_gains(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Visual gain (real minus blind, points) per model and paired condition, per task and on
    average; ``-`` where the model has no blind run. No rows when no model ran blind."""
    blind = _has_blind(rows)
    conditions = [c for c in dict.fromkeys(c for r in rows for c in r["blind"]["average"]) if c in blind]
    tasks = [t for t in QUESTION_TYPES if any(t in r["blind"]["tasks"] for r in rows)]
    header = ["model", "scoring", "condition", *tasks, "average"]
    body = []
    for row in rows:
        for c in conditions:
            if c not in row["blind"]["average"]:
                continue
            pairs = [row["blind"]["tasks"].get(t, {}).get(c, {}) for t in tasks] + [row["blind"]["average"][c]]
            body.append([row["model"], row["scoring"], c, *(_points(p.get("visual_gain")) for p in pairs)])
    return header, body


def _title(dataset: dict, fingerprint: str) -> str:
    return (
        f"{dataset['source']} · config {dataset['config']} · split {dataset['split']} · fingerprint {fingerprint[:12]}"
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def to_markdown(board: dict) -> str:
    """Per dataset: the headline table, then every task x condition, visual and process gains."""
    lines = ["# InstructIAD leaderboard", ""]
    for fingerprint, rows in _groups(board).items():
        dataset = rows[0]["dataset"]
        lines += [f"## {_title(dataset, fingerprint)}", ""]
        lines += _markdown_table(*_headline(rows))
        notes = _training_notes(rows)
        if notes:
            lines += ["", "Fine-tuned models (`triad train`; † marks one trained on records scored here):", ""]
            lines += [f"- {note}" for note in notes]
        lines += ["", "### Every task and condition", ""]
        lines += _markdown_table(*_board_table(rows))
        header, body = _visual_gains(rows)
        if body:
            lines += ["", "Visual gain: real minus blind (no_image), in points.", ""]
            lines += _markdown_table(header, body)
        header, body = _mmad_table(rows)
        if body:
            lines += ["", MMAD_NOTE, ""]
            lines += _markdown_table(header, body)
        gains = [
            (row["model"], t, n, g) for row in rows for t, gs in row["process_gain"].items() for n, g in gs.items()
        ]
        if gains:
            lines += [
                "",
                "| model | task | comparison | gain (points) | 95% CI | McNemar p | pairs |",
                "|---|---|---|---|---|---|---|",
            ]
            for model, task, name, g in gains:
                lines.append(
                    f"| {model} | {task} | {name} | {100 * g['delta']:+.1f} | {100 * g['ci95'][0]:+.1f} to "
                    f"{100 * g['ci95'][1]:+.1f} | {g['mcnemar_p']:.3g} | {g['n_pairs']} |"
                )
        lines.append("")
    lines.append(NOTE)
    return "\n".join(lines) + "\n"


NOTE = (
    "Discrimination is ranked by balanced accuracy (MMAD), other tasks by accuracy; averages are unweighted over "
    'tasks. The process gain pools every task\'s questions (task "all"), paired, with a bootstrap 95% CI and '
    "McNemar's exact test; one-shot and expert gains are differences of averages. Blind is the zero-shot prompt "
    "with every image removed (no_image); blind runs are not ranked. Failed requests are never scored; unparsed "
    "answers count as wrong."
)


def _markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(c) + " |" for c in body]


def to_html(board: dict, entries: list[dict]) -> str:
    """A self-contained page: per dataset a table and three plots, as inline PNG."""
    import matplotlib

    matplotlib.use("Agg")
    sections = []
    for fingerprint, rows in _groups(board).items():
        dataset = rows[0]["dataset"]
        mine = [e for e in entries if e["config"]["dataset"]["fingerprint"] == fingerprint]
        title = _title(dataset, fingerprint)
        plots = [_task_bars(rows), _process_by_category(mine), _roc_curves(mine)]
        sections.append(
            f"<h2>{html.escape(title)}</h2>{_table(*_headline(rows), css='headline')}{_training_html(rows)}"
            f"<details><summary>Every task and condition</summary>{_table(*_board_table(rows, '<br>'))}"
            f"{_gain_table(rows)}{_mmad_html(rows)}</details>"
            + "".join(
                f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">' for alt, data in plots if data
            )
            + _samples(mine)
        )
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}"
        "td:nth-child(2),th:nth-child(2){text-align:left}img{max-width:100%;display:block;margin:1em 0}"
        ".sample{display:flex;gap:1em;align-items:flex-start;border-top:1px solid #ddd;padding:.5em 0}"
        ".sample img{margin:0}.sample table{margin:0;font-size:90%}.ok{color:#1a7f37}.wrong{color:#c62828}"
        ".none{color:#888}details{margin:1em 0}summary{cursor:pointer;font-weight:600}"
    )
    note = f"<p>{html.escape(NOTE)}</p>"
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>InstructIAD leaderboard</title><style>{style}</style>"
        f"</head><body><h1>InstructIAD leaderboard</h1>{note}{''.join(sections)}</body></html>\n"
    )


SAMPLES = 12
"""Samples the per-sample view shows per dataset: anomalous ones first, then normal ones."""


def _samples(entries: list[dict], count: int = SAMPLES) -> str:
    """Per sample: the image with the expert's regions of interest drawn on it, and every
    model's answer to each question (letter, right or wrong, unparsed or failed).

    Images come from the run's dataset folder; for a Hub dataset or a folder that moved, the
    view says so instead.
    """
    by_id: dict[str, list[tuple[dict, dict]]] = defaultdict(list)
    for entry in entries:
        for prediction in entry["predictions"]:
            by_id[prediction["id"]].append((entry["config"], prediction))
    if not by_id:
        return ""
    first = {i: min(p["record_index"] for _, p in rows) for i, rows in by_id.items()}
    anomalous = sorted((i for i, rows in by_id.items() if rows[0][1]["label"] == "anomaly"), key=first.get)
    normal = sorted((i for i, rows in by_id.items() if rows[0][1]["label"] != "anomaly"), key=first.get)
    chosen = anomalous[: count - min(len(normal), count // 3)]
    chosen += normal[: count - len(chosen)]
    dataset = entries[0]["config"]["dataset"]
    images = _record_images(dataset, set(chosen))
    if images is None:
        source = html.escape(dataset["source"])
        return f"<h3>Samples</h3><p>Images not shown: {source} is not a local dataset folder.</p>"
    parts = ["<h3>Samples</h3><p>Regions of interest the expert flagged are drawn in red.</p>"]
    for record_id in chosen:
        rows = by_id[record_id]
        boxes = next((p["notes"]["boxes"] for _, p in rows if p.get("notes", {}).get("boxes")), [])
        expert = next((p["notes"]["expert"] for _, p in rows if p.get("notes", {}).get("expert")), None)
        thumbnail = _thumbnail(images[record_id], boxes) if record_id in images else ""
        caption = f"{record_id} ({rows[0][1]['label']})" + (f"<br>expert: {html.escape(expert)}" if expert else "")
        parts.append(
            f'<div class="sample"><div>{thumbnail}<br><small>{html.escape(record_id)}</small></div>'
            f"<div><p>{caption}</p>{_answers(rows)}</div></div>"
        )
    return "".join(parts)


def _record_images(dataset: dict, ids: set[str]) -> dict[str, bytes] | None:
    """Image bytes of ``ids`` from a local dataset folder, or ``None`` when it is not local (or
    no longer a readable dataset)."""
    from instructiad.errors import InstructIADError
    from triad_eval.data import open_dataset

    if not Path(dataset["source"]).is_dir():
        return None
    try:
        data = open_dataset(dataset["source"], dataset["config"], dataset["split"])
    except InstructIADError:
        return None
    records = data.records
    return {i: records[n]["image"]["bytes"] for n, i in enumerate(records.column("id")) if i in ids}


def _thumbnail(image: bytes, boxes: list[list[int]], side: int = 192) -> str:
    """The image scaled to ``side`` pixels at most, boxes (x0, y0, x1, y1 in image pixels) in red."""
    from PIL import Image, ImageDraw

    with Image.open(io.BytesIO(image)) as pil:
        picture = pil.convert("RGB")
    scale = side / max(picture.size)
    picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))))
    draw = ImageDraw.Draw(picture)
    for x0, y0, x1, y1 in boxes:
        draw.rectangle([x0 * scale, y0 * scale, x1 * scale - 1, y1 * scale - 1], outline=(220, 0, 0), width=2)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    return f'<img alt="sample" src="data:image/png;base64,{data}">'


def _answers(rows: list[tuple[dict, dict]]) -> str:
    """A table: one row per model and condition, one column per question type."""
    tasks = [t for t in QUESTION_TYPES if any(p["task"] == t for _, p in rows)]
    cells: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for config, p in rows:
        if p["status"] == "failed":
            cell = '<span class="none">failed</span>'
        elif p["status"] == "unparsed":
            cell = '<span class="none">unparsed</span>'
        else:
            kind, mark = ("ok", "✓") if p["parsed"] == p["answer"] else ("wrong", "✗")
            option = html.escape(p["options"].get(p["parsed"], ""), quote=True)
            cell = f'<span class="{kind}" title="{option}">{p["parsed"]} {mark}</span>'
        cells[(f"{config['model']} ({config['scoring']})", p["condition"])][p["task"]] = cell
    head = "<tr><th>model</th><th>condition</th>" + "".join(f"<th>{t}</th>" for t in tasks) + "</tr>"
    body = "".join(
        f"<tr><td>{html.escape(model)}</td><td>{condition}</td>"
        + "".join(f"<td>{answers.get(t, '')}</td>" for t in tasks)
        + "</tr>"
        for (model, condition), answers in cells.items()
    )
    return f"<table>{head}{body}</table>"


def _training_html(rows: list[dict]) -> str:
    notes = _training_notes(rows)
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(note)}</li>" for note in notes)
    lead = "Fine-tuned models (<code>triad train</code>; † marks one trained on records scored here):"
    return f"<p>{lead}</p><ul>{items}</ul>"


def _table(header: list[str], body: list[list[str]], css: str = "") -> str:
    """An HTML table (``css``: its class); header cells may hold <br>, body cells are escaped."""
    head = "".join(f"<th>{h}</th>" for h in header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>" for cells in body)
    return f"<table{f' class={css!r}' if css else ''}><tr>{head}</tr>{rows}</table>"


def _mmad_html(rows: list[dict]) -> str:
    header, body = _mmad_table(rows)
    return f"<p>{html.escape(MMAD_NOTE)}</p>{_table(header, body)}" if body else ""


def _gain_table(rows: list[dict]) -> str:
    header, body = _visual_gains(rows)
    if not body:
        return ""
    return "<h3>Visual gain</h3><p>Real minus blind (no_image), in points.</p>" + _table(header, body)


def _png(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _task_bars(rows: list[dict]) -> tuple[str, str]:
    """Headline number per task, one bar per model, for each model's first image-bearing condition."""
    import matplotlib.pyplot as plt
    import numpy as np

    tasks = sorted({t for r in rows for t in r["tasks"]})
    figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(tasks)), 3.5))
    width = 0.8 / max(1, len(rows))
    for i, row in enumerate(rows):
        condition = next((c for c in row["average"] if not is_blind(c)), next(iter(row["average"])))
        values = [row["tasks"].get(t, {}).get(condition) or 0 for t in tasks]
        axes.bar(np.arange(len(tasks)) + i * width, values, width, label=f"{row['model']} ({condition})")
    axes.set_xticks(np.arange(len(tasks)) + width * (len(rows) - 1) / 2, tasks)
    axes.set_ylim(0, 1)
    axes.set_ylabel("balanced acc. / accuracy")
    axes.set_title("Per task")
    axes.legend(fontsize=8)
    return "per-task bars", _png(figure)


def _process_by_category(entries: list[dict]) -> tuple[str, str]:
    """Accuracy per category, zero_shot against process, one point per (model, category)."""
    points = []
    for entry in entries:
        tasks = entry["metrics"]["tasks"]
        for by_condition in tasks.values():
            if "zero_shot" in by_condition and "process" in by_condition:
                base, with_process = by_condition["zero_shot"]["per_category"], by_condition["process"]["per_category"]
                for category in sorted(base.keys() & with_process.keys()):
                    points.append(
                        (entry["config"]["model"], base[category]["accuracy"], with_process[category]["accuracy"])
                    )
    if not points:
        return "zero-shot vs process", ""
    figure, axes = _unit_square("Per category and task: zero-shot vs process", "zero_shot accuracy", "process accuracy")
    for model in sorted({p[0] for p in points}):
        xs, ys = zip(*[(p[1], p[2]) for p in points if p[0] == model], strict=True)
        axes.scatter(xs, ys, label=model, alpha=0.7)
    axes.legend(fontsize=8)
    return "zero-shot vs process per category", _png(figure)


def _unit_square(title: str, xlabel: str, ylabel: str):
    """A square plot over [0, 1] x [0, 1] with the diagonal drawn (the no-change or chance line)."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    axes.plot([0, 1], [0, 1], color="grey", linewidth=1, linestyle="--")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    return figure, axes


def _roc_curves(entries: list[dict]) -> tuple[str, str]:
    """ROC curves of discrimination, for runs whose model gave probabilities."""
    from sklearn.metrics import roc_curve

    curves = []
    for entry in entries:
        by_condition: dict[str, list[dict]] = defaultdict(list)
        for p in entry["predictions"]:
            if p["task"] == "discrimination" and p["status"] != "failed":
                by_condition[p["condition"]].append(p)
        for condition, items in sorted(by_condition.items()):
            scores = [anomaly_score(p) for p in items]
            truth = [p["label"] == "anomaly" for p in items]
            if all(s is not None for s in scores) and len(set(truth)) == 2:
                fpr, tpr, _ = roc_curve(truth, scores)
                curves.append((f"{entry['config']['model']} ({condition})", fpr, tpr))
    if not curves:
        return "ROC curves", ""
    figure, axes = _unit_square("Discrimination ROC", "false positive rate", "true positive rate")
    for label, fpr, tpr in curves:
        axes.plot(fpr, tpr, label=label)
    axes.legend(fontsize=8)
    return "ROC curves", _png(figure)
