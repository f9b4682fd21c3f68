"""Vision experts for the ``expert`` condition: the anomaly maps whose regions of interest the
prompt shows as zoomed crops (Triad's expert guidance).

A map source is a :class:`~triad_eval.api.ExpertSource`: a folder of precomputed maps
(``--expert maps:<folder>``, :mod:`.maps`) or an anomalib model fitted per category on the
dataset's normal training images (``--expert padim``, :mod:`.anomalib_models`, registered in
:mod:`triad_eval.registry`). The regions follow Triad's procedure
(:func:`instructiad.roi.regions_of_interest`), whose knobs (:data:`ROI_SETTINGS`)
``--expert-args`` sets together with the expert's own settings
(:meth:`FittedExpert.setting_types`, the same table ``--model expert:<name> --model-args`` reads).
"""

from __future__ import annotations

from pathlib import Path

from instructiad.errors import InstructIADError
from triad_eval.api import ExpertSource
from triad_eval.experts.fitted import FittedExpert
from triad_eval.experts.maps import MapFolder, crop
from triad_eval.registry import EXPERTS, load_object
from triad_eval.settings import convert

__all__ = ["ROI_SETTINGS", "ExpertSource", "FittedExpert", "MapFolder", "crop", "expert_class", "parse_expert"]

ROI_SETTINGS = {"threshold": float, "crop": int, "max_regions": int, "order": str}
"""The knobs of the regions of interest (see :func:`instructiad.roi.regions_of_interest`)."""


def expert_class(name: str) -> type[FittedExpert]:
    """The fitted expert called ``name`` (:data:`triad_eval.registry.EXPERTS`).

    Raises:
        InstructIADError: no expert has that name.
    """
    if name not in EXPERTS:
        known = ", ".join([*EXPERTS, "maps:<folder of .npy or .png maps>"])
        raise InstructIADError(f"unknown expert {name!r} (known: {known})")
    return load_object(EXPERTS[name])


def parse_expert(spec: str | None, args: dict[str, str]) -> ExpertSource | None:
    """``maps:<folder>`` or a fitted expert's name, with ``--expert-args``;
    ``None`` when no expert is given.

    Raises:
        InstructIADError: an unknown expert spec or setting, or a missing folder.
    """
    if spec is None:
        if args:
            raise InstructIADError("--expert-args needs --expert")
        return None
    kind, _, value = spec.partition(":")
    if kind != "maps" or not value:
        expert = expert_class(spec)
        typed = convert(args, expert.setting_types() | ROI_SETTINGS, f"--expert-args: expert {spec}")
        own = {k: v for k, v in typed.items() if k not in ROI_SETTINGS}
        return expert(own, {k: v for k, v in typed.items() if k in ROI_SETTINGS})
    folder = Path(value).expanduser().absolute()
    roi_args = convert(args, ROI_SETTINGS, f"--expert-args: {spec}")
    if not folder.is_dir():
        raise InstructIADError(f"{folder}: anomaly map folder does not exist")
    return MapFolder(folder, roi_args)
