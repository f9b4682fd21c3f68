"""The Hub's vocabulary for a dataset card's YAML metadata, and its rules.

The values are the Hub's own: licence ids from the Hub documentation's licence table
(huggingface/hub-docs ``docs/hub/repositories-licenses.md``), size categories and creator kinds
from ``datasets/utils/resources``, task categories and their sub-tasks (``task_ids``) from
huggingface.js ``packages/tasks/src/pipelines.ts``. :func:`metadata_problems` checks a card's
metadata the way the Hub reads it; :class:`Licence` is a source's licence as the card states it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

LICENSES = frozenset({
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m", "bigscience-bloom-rail-1.0",
    "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0", "bsd", "bsd-2-clause", "bsd-3-clause",
    "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0",
    "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0",
    "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
    "cdla-sharing-1.0", "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0",
    "etalab-2.0", "eupl-1.1", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl", "lgpl-2.1", "lgpl-3.0",
    "isc", "lppl-1.3c", "ms-pl", "mpl-2.0", "odc-by", "odbl", "openrail++", "osl-3.0", "postgresql", "ofl-1.1",
    "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license", "llama2", "gemma", "unknown", "other",
})  # fmt: skip
"""Every licence id the Hub knows (``license:``); ``other`` needs ``license_name`` and ``license_link``."""

SIZE_CATEGORIES = (
    "n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B", "1B<n<10B", "10B<n<100B",
    "100B<n<1T", "n>1T",
)  # fmt: skip
"""``size_categories``, smallest first: each a power of ten wide from 1K on."""

ANNOTATIONS_CREATORS = frozenset(
    {"found", "crowdsourced", "expert-generated", "machine-generated", "no-annotation", "other"}
)
LANGUAGE_CREATORS = frozenset({"found", "crowdsourced", "expert-generated", "machine-generated", "other"})
MULTILINGUALITY = frozenset({"monolingual", "multilingual", "translation", "other"})

TASKS: dict[str, tuple[str, ...]] = {
    "text-classification": (
        "acceptability-classification", "entity-linking-classification", "fact-checking", "intent-classification",
        "language-identification", "multi-class-classification", "multi-label-classification",
        "multi-input-text-classification", "natural-language-inference", "semantic-similarity-classification",
        "sentiment-classification", "topic-classification", "semantic-similarity-scoring", "sentiment-scoring",
        "sentiment-analysis", "hate-speech-detection", "text-scoring",
    ),
    "token-classification": (
        "named-entity-recognition", "part-of-speech", "parsing", "lemmatization", "word-sense-disambiguation",
        "coreference-resolution",
    ),
    "table-question-answering": (),
    "question-answering": ("extractive-qa", "open-domain-qa", "closed-domain-qa"),
    "zero-shot-classification": (),
    "translation": (),
    "summarization": ("news-articles-summarization", "news-articles-headline-generation"),
    "feature-extraction": (),
    "text-generation": ("dialogue-modeling", "dialogue-generation", "conversational", "language-modeling"),
    "text2text-generation": (
        "text-simplification", "explanation-generation", "abstractive-qa", "open-domain-abstractive-qa",
        "closed-domain-qa", "open-book-qa", "closed-book-qa",
    ),
    "fill-mask": ("slot-filling", "masked-language-modeling"),
    "sentence-similarity": (),
    "text-to-speech": (),
    "text-to-audio": (),
    "automatic-speech-recognition": (),
    "audio-to-audio": (),
    "audio-classification": (
        "keyword-spotting", "speaker-identification", "audio-intent-classification", "audio-emotion-recognition",
        "audio-language-identification",
    ),
    "voice-activity-detection": (),
    "depth-estimation": (),
    "image-classification": ("multi-label-image-classification", "multi-class-image-classification"),
    "object-detection": ("face-detection", "vehicle-detection"),
    "image-segmentation": ("instance-segmentation", "semantic-segmentation", "panoptic-segmentation"),
    "text-to-image": (),
    "image-to-text": ("image-captioning",),
    "image-to-image": ("image-inpainting", "image-colorization", "super-resolution"),
    "image-to-video": (),
    "unconditional-image-generation": (),
    "video-classification": (),
    "reinforcement-learning": (),
    "robotics": ("grasping", "task-planning"),
    "tabular-classification": ("tabular-multi-class-classification", "tabular-multi-label-classification"),
    "tabular-regression": ("tabular-single-column-regression",),
    "tabular-to-text": ("rdf-to-text",),
    "table-to-text": (),
    "multiple-choice": ("multiple-choice-qa", "multiple-choice-coreference-resolution"),
    "text-ranking": (),
    "text-retrieval": (
        "document-retrieval", "utterance-retrieval", "entity-linking-retrieval", "fact-checking-retrieval",
    ),
    "time-series-forecasting": ("univariate-time-series-forecasting", "multivariate-time-series-forecasting"),
    "text-to-video": (),
    "visual-question-answering": ("visual-question-answering",),
    "zero-shot-image-classification": (),
    "graph-ml": (),
    "mask-generation": (),
    "zero-shot-object-detection": (),
    "text-to-3d": (),
    "image-to-3d": (),
    "image-feature-extraction": (),
    "video-text-to-text": (),
}  # fmt: skip
"""The Hub's task categories a dataset can list (``task_categories``; those hidden from dataset
filters left out), each with its sub-tasks (``task_ids``)."""

_SLUG = re.compile(r"^[a-z0-9]+(?:[-.][a-z0-9]+)*$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


@dataclass(frozen=True)
class Licence:
    """A source's licence as the card states it: a Hub id, or ``other`` with a slug name and a link."""

    id: str
    name: str | None = None
    link: str | None = None

    @classmethod
    def of(cls, default: str, options: Mapping[str, str] | None = None) -> Licence:
        """The licence of a source whose reader states ``default``, unless its options
        (``--source-args NAME:license=...,license_name=...,license_link=...``) name another."""
        options = options or {}
        return cls(options.get("license", default), options.get("license_name"), options.get("license_link"))

    def problems(self) -> list[str]:
        """What the Hub would refuse in this licence (empty when it is fine)."""
        if self.id not in LICENSES:
            return [f"license {self.id!r} is not a Hub licence id (use one of the Hub's ids, or other)"]
        if self.id != "other":
            extra = self.name is not None or self.link is not None
            return [f"license_name and license_link go with license other, not {self.id}"] if extra else []
        found = []
        if not self.name or not _SLUG.match(self.name):
            found.append(f"license other needs license_name, a lower-case slug like my-license-1.0 (got {self.name!r})")
        if not self.link or not _link(self.link):
            found.append(f"license other needs license_link, an http(s) URL or LICENSE(.md) (got {self.link!r})")
        return found

    def __str__(self) -> str:
        return self.id if self.id != "other" else f"{self.name} ({self.link})"


def _link(text: str) -> bool:
    return text in ("LICENSE", "LICENSE.md") or bool(re.match(r"^https?://[^\s/]+\.[^\s]+$", text))


def size_category(examples: int) -> str:
    """The Hub's ``size_categories`` value for a dataset of ``examples`` rows."""
    for index, category in enumerate(SIZE_CATEGORIES[:-1]):
        if examples < 1000 * 10**index:
            return category
    return SIZE_CATEGORIES[-1]


def metadata_problems(data: Mapping) -> list[str]:
    """What the Hub would flag in a dataset card's YAML ``data``: values outside its
    vocabulary, ``task_ids`` that belong to no listed task category, a licence ``other``
    without its slug name and link. Empty when the metadata is valid."""
    found: list[str] = []
    licenses = _as_list(data.get("license"))
    if not licenses:
        found.append("license: missing")
    for license_id in licenses:
        link_name = {"license_name": data.get("license_name"), "license_link": data.get("license_link")}
        licence = Licence(license_id, *link_name.values()) if license_id == "other" else Licence(license_id)
        found += [f"license: {p}" for p in licence.problems()]
    if "other" not in licenses and (data.get("license_name") or data.get("license_link")):
        found.append("license_name / license_link: only with license other")
    found += _within(data, "size_categories", set(SIZE_CATEGORIES))
    found += _within(data, "annotations_creators", ANNOTATIONS_CREATORS)
    found += _within(data, "language_creators", LANGUAGE_CREATORS)
    found += _within(data, "multilinguality", MULTILINGUALITY)
    found += _within(data, "task_categories", set(TASKS))
    allowed_ids = {sub for task in _as_list(data.get("task_categories")) for sub in TASKS.get(task, ())}
    found += [
        f"task_ids: {sub!r} is no sub-task of the listed task_categories"
        for sub in _as_list(data.get("task_ids"))
        if sub not in allowed_ids
    ]
    found += [
        f"language: {code!r} is not an ISO 639 code"
        for code in _as_list(data.get("language"))
        if not _LANGUAGE.match(str(code))
    ]
    sources = _as_list(data.get("source_datasets"))
    found += [f"source_datasets: {s!r} is not a name" for s in sources if not isinstance(s, str) or not s.strip()]
    return found


def _as_list(value: object) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _within(data: Mapping, key: str, allowed: set[str] | frozenset[str]) -> list[str]:
    return [
        f"{key}: {value!r} is not one of the Hub's values" for value in _as_list(data.get(key)) if value not in allowed
    ]
