"""The declared Features of an InstructIAD record (one row per image), with their meaning."""

from __future__ import annotations

from datasets import ClassLabel, Features, Image, List, Value

from instructiad.sample import LABELS

FEATURES = Features(
    {
        "id": Value("string"),
        "source": Value("string"),
        "category": Value("string"),
        "process_id": Value("string"),
        "image": Image(),
        "mask": Image(),
        "label": ClassLabel(names=list(LABELS)),
        "defect_type": Value("string"),
        "defect_types": List(Value("string")),
        "sub_types": List(Value("string")),
        "boxes": List(List(Value("int32"), length=4)),
        "location": Value("string"),
        "regions": List(Value("string")),
        "location_share": Value("float32"),
        "width": Value("int32"),
        "height": Value("int32"),
        "image_sha256": Value("string"),
        "questions": List(
            {
                "type": Value("string"),
                "question": Value("string"),
                "options": List({"letter": Value("string"), "text": Value("string")}),
                "answer": Value("string"),
                "facts": Value("string"),
            }
        ),
        "skipped": List({"type": Value("string"), "reason": Value("string")}),
        "conversation_llava": List({"from": Value("string"), "value": Value("string")}),
        "conversation_messages": List(
            {"role": Value("string"), "content": List({"type": Value("string"), "text": Value("string")})}
        ),
        "template_set": Value("string"),
        "template_version": Value("string"),
        "metadata": {
            "image_path": Value("string"),
            "mask_paths": List(Value("string")),
            "format": Value("string"),
            "mode": Value("string"),
            "original_size": List(Value("int32"), length=2),
            "extra": Value("string"),
        },
    }
)

FIELD_DOCS = {
    "id": "stable record id: `<source>/<category>/<split>/<path inside the split>`",
    "source": "source dataset (the config name)",
    "category": "product category, as the source names it",
    "process_id": "id of the category's manufacturing-process annotation (`processes/<process_id>.yaml`), if any",
    "image": "the image: original file bytes (PNG, JPEG, ...) unless built with --max-side",
    "mask": "0/255 single-channel PNG, 255 = anomalous; None for normal images and masks absent",
    "label": "0 normal, 1 anomaly",
    "defect_type": "the source's defect name (`good` when normal; `combined` for several)",
    "defect_types": "every defect type in the image",
    "sub_types": "finer defect names where the source has them (MVTec LOCO defects_config.json)",
    "boxes": "[x_min, y_min, x_max, y_max) in pixels, one per 8-connected mask region",
    "location": "the cell of a 3x3 grid holding most of the mask (`top left` ... `bottom right`)",
    "regions": "every 3x3 cell the mask touches, in reading order",
    "location_share": "fraction of the mask's pixels inside the `location` cell (0 when there is no mask)",
    "width": "stored image width in pixels",
    "height": "stored image height in pixels",
    "image_sha256": "sha256 of the stored image bytes",
    "questions": "multiple-choice questions: type (discrimination, defect_type, location, appearance, "
    "root_cause, anomaly_detection, defect_classification, defect_localization, defect_description, "
    "defect_analysis, object_classification, object_analysis, object_structure, object_details), question, "
    "lettered options, answer letter, facts (JSON: the ground truth it came from); CoT-M's first five types for "
    "every source but `mmad`, whose records keep MMAD's own questions and types (snake case; facts: MMAD's type)",
    "skipped": "question types (and `conversation`) that could not be made for this record, with the reason",
    "conversation_llava": "CoT-M conversation in LLaVA form: human turn with `<image>`, gpt turn reasoning from "
    "the process",
    "conversation_messages": "the same conversation as chat messages (role, content parts; the image part has no text)",
    "template_set": "CoT-M template set that rendered the questions and conversations",
    "template_version": "version of that template set",
    "metadata": "image_path and mask_paths relative to the source root, format, mode, original_size "
    "[width, height], extra (source facts as JSON: Real-IAD view, sample id, defect code)",
}
