"""The columns a run keeps for its metrics give the same metrics as the predictions themselves."""

import random

from triad_eval.metrics import READS, PredictionTable, compute_metrics


def _predictions(count: int = 600) -> list[dict]:
    """Predictions of every kind the metrics see: two tasks under a base and a process condition
    (so the paired gain is computed), MMAD questions (raw read by MMAD's parser), option
    probabilities (also with a letter beyond E), failed and unparsed answers."""
    rng = random.Random(7)
    rows = []
    for index in range(count // 6):
        record = f"synthetic/tile/test/crack/{index:03d}.png"
        label = rng.choice(["anomaly", "normal"])
        for task in ("discrimination", "defect_type", "anomaly_detection"):
            if task == "discrimination" or task == "anomaly_detection":
                options = {"A": "Yes", "B": "No"} if index % 2 else {"A": "No", "B": "Yes"}
            else:
                options = {"A": "crack", "B": "stain", "C": "chip", "D": "hole"}
            answer = rng.choice(sorted(options))
            for condition in ("zero_shot", "process"):
                status = rng.choices(["ok", "unparsed", "failed"], [8, 1, 1])[0]
                parsed = rng.choice(sorted(options)) if status == "ok" else None
                probs = None
                if task == "discrimination" and status != "failed":
                    p = rng.random()
                    probs = {"A": p, "B": 1 - p} if index % 5 else {"A": p, "F": 1 - p}
                rows.append(
                    {
                        "id": f"mmad/tile/test/{record}" if task == "anomaly_detection" else record,
                        "record_index": index,
                        "task": task,
                        "condition": condition,
                        "category": rng.choice(["tile", "sheet"]),
                        "label": label,
                        "options": dict(options),
                        "answer": answer,
                        "parsed": parsed,
                        "status": status,
                        "probs": probs,
                        "raw": f"The answer is {parsed}." if parsed else "unsure",
                        "latency_s": 0.01,
                    }
                )
    return rows


def test_table_gives_the_metrics_of_the_predictions():
    predictions = _predictions()
    table = PredictionTable()
    for prediction in predictions:
        table.add(prediction)
    assert len(table) == len(predictions)
    expected = compute_metrics(predictions, seed=3)
    assert expected["process_gain"] and expected["mmad"]  # the paths that read ids and raw answers
    assert compute_metrics(table, seed=3) == expected


def test_table_rows_are_the_fields_the_metrics_read():
    predictions = _predictions(60)
    table = PredictionTable()
    for prediction in predictions:
        table.add(prediction)
    for prediction, row in zip(predictions, table, strict=True):
        kept = {k: prediction.get(k) for k in READS}
        if not prediction["task"].startswith("anomaly_detection"):
            kept["raw"] = None  # only MMAD's table reads raw answers
        assert row == kept
    cells = table.cells()
    assert list(cells)[:2] == [("discrimination", "zero_shot"), ("discrimination", "process")]
    assert [r["task"] for r in cells[("defect_type", "process")]] == ["defect_type"] * 10
