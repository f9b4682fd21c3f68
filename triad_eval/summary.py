"""The readable summary of a run (summary.txt)."""

from __future__ import annotations

from triad_eval.metrics import headline
from triad_eval.mmad import format_table


def _pct(value: float | None) -> str:
    return "   -  " if value is None else f"{100 * value:5.1f}%"


def format_summary(config: dict, metrics: dict) -> str:
    """A plain-text table: per task and condition the headline number, unparsed and failed."""
    counts = metrics["counts"]
    dataset = config["dataset"]
    lines = [
        f"model      {config['model']} ({config['scoring']})",
        f"dataset    {dataset['source']} config {dataset['config']} split {dataset['split']}"
        f" (fingerprint {dataset['fingerprint'][:16]})",
        f"requests   {counts['requests']}: {counts['ok']} answered, {counts['unparsed']} unparsed, "
        f"{counts['failed']} failed",
    ]
    if counts["failed"]:
        lines.append(f"WARNING    {counts['failed']} request(s) failed; they are not scored (see predictions.jsonl)")
    for reason, n in (config.get("unavailable") or {}).items():
        lines.append(f"not asked  {n} x {reason}")
    conditions = list(metrics["average"])
    width = max([16, *(len(t) + 2 for t in metrics["tasks"])])
    lines += ["", f"{'task':<{width}}" + "".join(f"{c:>22}" for c in conditions)]
    for task, by_condition in metrics["tasks"].items():
        cells = []
        for condition in conditions:
            m = by_condition.get(condition)
            cells.append(
                f"{'':>22}" if m is None else f"{_pct(headline(m, task)):>12} ({m['unparsed']}u/{m['failed']}f)"
            )
        lines.append(f"{task:<{width}}" + "".join(f"{c:>22}" for c in cells))
    lines.append(f"{'average':<{width}}" + "".join(f"{_pct(metrics['average'][c]):>22}" for c in conditions))
    for task, gains in metrics["process_gain"].items():
        for comparison, gain in gains.items():
            low, high = gain["ci95"]
            lines.append(
                f"process gain  {task}, {comparison}: {100 * gain['delta']:+.1f} points "
                f"(95% CI {100 * low:+.1f} to {100 * high:+.1f}, McNemar p={gain['mcnemar_p']:.3g}, "
                f"n={gain['n_pairs']})"
            )
    for condition, table in metrics.get("mmad", {}).items():
        lines += ["", f"MMAD's table, {condition}, in % ({table['dropped']} answer(s) left out by MMAD's rules):"]
        lines += format_table(table)
    lines.append("")
    lines.append(
        "discrimination is ranked by balanced accuracy (MMAD); other tasks by accuracy; u = unparsed, f = failed"
    )
    return "\n".join(lines) + "\n"
