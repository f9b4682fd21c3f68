"""The MVTec-AD-style layout, shared by several readers.

``<root>/<category>/<split>/<defect or good>/<image>`` with masks in
``<root>/<category>/ground_truth/<defect>/<image stem>_mask.png`` (or ``<stem>.png``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from instructiad.errors import BadFileError, InstructIADError, OnBadFile, raise_bad_file
from instructiad.sample import ANOMALY, GOOD, NORMAL, Sample
from instructiad.sources.files import SPLITS, images_in, inside, relative, subfolders

MASK_NAMES = ("{stem}_mask.png", "{stem}.png")


def category_folders(root: Path) -> list[Path]:
    """Sub-folders of ``root`` that hold a ``train`` or ``test`` folder."""
    return [c for c in subfolders(root) if (c / "train").is_dir() or (c / "test").is_dir()]


def find_mask(mask_folder: Path, stem: str) -> Path | None:
    """The mask of image ``stem`` in ``mask_folder``, trying each of :data:`MASK_NAMES`."""
    for pattern in MASK_NAMES:
        candidate = mask_folder / pattern.format(stem=stem)
        if candidate.is_file():
            return candidate
    return None


def iter_samples(
    root: Path,
    source: str,
    *,
    on_bad: OnBadFile = raise_bad_file,
    require_masks: bool | None = True,
    normal_folders: tuple[str, ...] = (GOOD,),
    categories: list[Path] | None = None,
    source_root: Path | None = None,
) -> Iterator[Sample]:
    """Samples of an MVTec-style tree, category by category, split by split, in name order.

    Args:
        root: the source root.
        source: the reader name written into each sample.
        on_bad: what to do with a bad file (raise, or record and skip).
        require_masks: ``True`` when the layout promises a mask for every anomalous image;
            ``None`` to require them only in categories that have a ``ground_truth`` folder.
        normal_folders: folder names (lower case) that hold normal images.
        categories: category folders to read (default: every sub-folder of ``root``; one
            without images stops the build as an empty category).
        source_root: the folder no image or mask may leave through a symlink (default: ``root``).
    """
    confine = source_root or root
    for category_dir in categories if categories is not None else subfolders(root):
        yield from _iter_category(root, confine, category_dir, source, on_bad, require_masks, normal_folders)


def _iter_category(
    root: Path,
    confine: Path,
    category_dir: Path,
    source: str,
    on_bad: OnBadFile,
    require_masks: bool | None,
    normal_folders: tuple[str, ...],
) -> Iterator[Sample]:
    ground_truth = category_dir / "ground_truth"
    masks_promised = ground_truth.is_dir() if require_masks is None else require_masks
    found = 0
    for split in SPLITS:
        if not (category_dir / split).is_dir():
            continue
        for defect_dir in subfolders(category_dir / split):
            normal = defect_dir.name.lower() in normal_folders
            for image in images_in(defect_dir):
                found += 1
                mask_paths: tuple[str, ...] = ()
                try:
                    inside(confine, image, "image")
                    mask = None if normal else find_mask(ground_truth / defect_dir.name, image.stem)
                    if mask is not None:
                        mask_paths = (relative(root, inside(confine, mask, "mask")),)
                except BadFileError as error:
                    on_bad(error)
                    continue
                if not normal and mask is None and masks_promised:
                    expected = relative(root, ground_truth / defect_dir.name / f"{image.stem}_mask.png")
                    on_bad(BadFileError(image, f"anomalous image has no mask (expected {expected})"))
                    continue
                yield Sample(
                    source=source,
                    category=category_dir.name,
                    split=split,
                    root=root,
                    image_path=relative(root, image),
                    key=f"{defect_dir.name}/{image.name}",
                    label=NORMAL if normal else ANOMALY,
                    defect_type=GOOD if normal else defect_dir.name,
                    defect_types=() if normal else (defect_dir.name,),
                    mask_paths=mask_paths,
                )
    if found == 0:
        raise InstructIADError(f"{category_dir}: empty category (no images under {'/, '.join(SPLITS)}/)")
