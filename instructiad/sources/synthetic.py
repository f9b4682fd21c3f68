"""The synthetic source: a procedural generator of industrial images with exact defect masks.

It draws three product categories with numpy and Pillow only:

* ``steel_sheet`` (grayscale): cold-rolled steel with rolling streaks along x; defects
  ``scratch`` (handling scratch at an angle to the rolling direction), ``pit`` (small
  round pits with a bright rim) and ``inclusion`` (a dark non-metallic inclusion
  stretched along the rolling direction).
* ``woven_fabric`` (RGB): plain weave of warp and weft yarns; defects ``hole``,
  ``stain`` and ``broken_yarn`` (one warp yarn missing over a stretch).
* ``glazed_tile`` (RGB): glazed ceramic tile with a bevelled edge; defects ``crack``
  (a thin meandering crack through the glaze), ``glaze_drip`` (a teardrop of excess
  glaze) and ``chip`` (glaze and body broken off at the edge).

Every defect is drawn from its mask, so the mask is exact. Each image is generated from a
seed derived from its record id, so a tree is byte-identical wherever it is generated.

:func:`generate` writes an MVTec-AD-like tree (plus ``synthetic.json``), which the
``synthetic`` reader reads like any other source. The demo builds it, tests use it as their
fixture factory, and the benchmark scales it up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from instructiad.errors import InstructIADError, OnBadFile, raise_bad_file
from instructiad.jsonio import write_json
from instructiad.sample import Sample
from instructiad.seeds import seed_for
from instructiad.sources import mvtec_like
from instructiad.sources.registry import Reader

GENERATOR_VERSION = "1.0.0"
MARKER = "synthetic.json"
MIN_SIZE = 32


@dataclass(frozen=True)
class SyntheticCategory:
    """A product the generator can draw: its image mode and its defect types."""

    name: str
    mode: str
    defects: tuple[str, ...]


CATEGORIES: dict[str, SyntheticCategory] = {
    c.name: c
    for c in (
        SyntheticCategory("steel_sheet", "L", ("scratch", "pit", "inclusion")),
        SyntheticCategory("woven_fabric", "RGB", ("hole", "stain", "broken_yarn")),
        SyntheticCategory("glazed_tile", "RGB", ("crack", "glaze_drip", "chip")),
    )
}


def render(category: str, defect: str | None, seed: int, size: int = 256) -> tuple[Image.Image, np.ndarray | None]:
    """Draw one image.

    Args:
        category: a key of :data:`CATEGORIES`.
        defect: one of the category's defects, or ``None`` for a normal image.
        seed: the random seed (see :func:`seed_for`).
        size: image side in pixels (images are square).

    Returns:
        ``(image, mask)``: a PIL image of mode ``L`` or ``RGB``, and a boolean array of
        shape ``(size, size)`` marking the defect (``None`` for normal images).
    """
    if size < MIN_SIZE:
        raise ValueError(f"size {size}: synthetic images need at least {MIN_SIZE} pixels a side")
    spec = CATEGORIES[category]
    if defect is not None and defect not in spec.defects:
        raise ValueError(f"{category} has no defect {defect!r} (known: {', '.join(spec.defects)})")
    rng = np.random.default_rng(seed)
    surface = _SURFACES[category](rng, size)
    mask = None
    if defect is not None:
        mask = _DEFECTS[(category, defect)](surface, rng, size)
    pixels = np.clip(np.rint(surface), 0, 255).astype(np.uint8)
    if spec.mode == "L":
        pixels = pixels[..., 0]
    return Image.fromarray(pixels, spec.mode), mask


def generate(
    root: str | Path,
    *,
    categories: tuple[str, ...] | None = None,
    n_train: int = 6,
    n_test_good: int = 3,
    n_per_defect: int = 2,
    size: int = 256,
) -> Path:
    """Write a synthetic source tree in the MVTec AD layout and return its root.

    ``<root>/<category>/{train/good, test/good, test/<defect>, ground_truth/<defect>}`` with
    ``000.png``-style images and ``000_mask.png`` masks (0/255), plus ``<root>/synthetic.json``
    recording the generator version and settings.
    """
    root = Path(root)
    if size < MIN_SIZE:
        raise InstructIADError(f"--size {size}: synthetic images need at least {MIN_SIZE} pixels a side")
    names = categories or tuple(CATEGORIES)
    unknown = [n for n in names if n not in CATEGORIES]
    if unknown:
        raise InstructIADError(f"unknown synthetic category {unknown[0]!r} (known: {', '.join(CATEGORIES)})")
    counts = {"train": n_train, "test_good": n_test_good, "per_defect": n_per_defect}
    for name in names:
        spec = CATEGORIES[name]
        folders = [("train", "good", None, n_train), ("test", "good", None, n_test_good)]
        folders += [("test", d, d, n_per_defect) for d in spec.defects]
        for split, folder, defect, count in folders:
            out = root / name / split / folder
            out.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                stem = f"{i:03d}"
                image, mask = render(name, defect, seed_for(f"synthetic/{name}/{split}/{folder}/{stem}"), size)
                image.save(out / f"{stem}.png")
                if mask is not None:
                    mask_dir = root / name / "ground_truth" / folder
                    mask_dir.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(mask.astype(np.uint8) * 255, "L").save(mask_dir / f"{stem}_mask.png")
    marker = {"generator": "instructiad.sources.synthetic", "version": GENERATOR_VERSION, "size": size}
    marker |= {"categories": list(names), "counts": counts}
    write_json(root / MARKER, marker, sort_keys=True)
    return root


# --- surfaces: arrays of shape (size, size, 3), float, 0..255 ------------------------------


def _smooth(noise: np.ndarray, window: int, axis: int) -> np.ndarray:
    """Moving average of ``noise`` over ``window`` samples along ``axis`` (wrapping around)."""
    x = np.moveaxis(noise, axis, 0)
    padded = np.concatenate([x[x.shape[0] - window + 1 :], x]) if window > 1 else x
    totals = np.concatenate([np.zeros_like(padded[:1]), np.cumsum(padded, axis=0)])
    return np.moveaxis((totals[window:] - totals[:-window]) / window, 0, axis)


def _steel(rng: np.random.Generator, size: int) -> np.ndarray:
    # Rolling leaves fine streaks parallel to the rolling direction (x): noise smoothed along x.
    streaks = _smooth(rng.normal(0, 1, (size, size)), max(4, size // 16), axis=1)
    rows = _smooth(rng.normal(0, 1, (size, 1)), 3, axis=0)
    base = rng.uniform(125, 150)
    shade = np.linspace(-6, 6, size)[None, :]  # uneven lighting across the sheet
    gray = base + 14 * streaks + 5 * rows + shade + rng.normal(0, 1.5, (size, size))
    return np.repeat(gray[..., None], 3, axis=2)


def _fabric(rng: np.random.Generator, size: int) -> np.ndarray:
    period = max(6, size // 32)
    y, x = np.mgrid[0:size, 0:size]
    warp_on_top = ((x // period + y // period) % 2) == 0  # plain weave: over one, under one
    across_warp = np.sin(np.pi * (x % period) / period)
    across_weft = np.sin(np.pi * (y % period) / period)
    shading = np.where(warp_on_top, across_warp, across_weft)
    colour = np.array([55, 75, 125]) + rng.uniform(-10, 10, 3)  # dyed cotton
    fabric = colour * (0.55 + 0.45 * shading)[..., None]
    return fabric + rng.normal(0, 3, (size, size, 1))


def _tile(rng: np.random.Generator, size: int) -> np.ndarray:
    colour = np.array([228, 218, 196]) + rng.uniform(-8, 8, 3)  # cream glaze
    mottling = _smooth(_smooth(rng.normal(0, 1, (size, size)), size // 8, 0), size // 8, 1)
    y, x = np.mgrid[0:size, 0:size]
    edge = np.minimum(np.minimum(x, y), np.minimum(size - 1 - x, size - 1 - y))
    bevel = np.clip(edge / (size * 0.04), 0, 1)  # the rounded edge of the tile reads darker
    highlight = 10 * np.exp(-(((x - size * 0.3) ** 2 + (y - size * 0.25) ** 2) / (2 * (size * 0.3) ** 2)))
    glaze = colour * (0.75 + 0.25 * bevel)[..., None] + (40 * mottling + highlight)[..., None]
    speckles = rng.random((size, size)) < 0.002
    glaze[speckles] -= 35
    return glaze


_SURFACES = {"steel_sheet": _steel, "woven_fabric": _fabric, "glazed_tile": _tile}


# --- defects: each draws its mask, changes the surface inside it, returns the mask ----------


def _draw(size: int, shape: str, *args, **kwargs) -> np.ndarray:
    canvas = Image.new("L", (size, size), 0)
    getattr(ImageDraw.Draw(canvas), shape)(*args, fill=255, **kwargs)
    return np.asarray(canvas) > 0


def _point(rng: np.random.Generator, size: int, margin: float = 0.15) -> np.ndarray:
    return rng.uniform(size * margin, size * (1 - margin), 2)


def _scratch(surface: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    start = _point(rng, size)
    angle = rng.uniform(np.pi / 8, np.pi / 2)  # across, never along, the rolling direction
    end = start + rng.uniform(0.25, 0.5) * size * np.array([np.cos(angle), np.sin(angle)]) * rng.choice([-1, 1], 2)
    end = np.clip(end, 2, size - 3)
    mask = _draw(size, "line", [tuple(start), tuple(end)], width=max(2, size // 128))
    surface[mask] += 55  # bright: the scratch exposes fresh metal
    return mask


def _pits(surface: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    core = np.zeros((size, size), bool)
    for _ in range(rng.integers(1, 4)):
        cx, cy = _point(rng, size)
        r = rng.uniform(size / 80, size / 40) + 1.5
        mask |= _draw(size, "ellipse", [cx - r, cy - r, cx + r, cy + r])
        core |= _draw(size, "ellipse", [cx - r / 2, cy - r / 2, cx + r / 2, cy + r / 2])
    surface[mask & ~core] += 30  # the raised rim catches the light
    surface[core] -= 80  # the pit floor lies in shadow
    return mask


def _inclusion(surface: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    cx, cy = _point(rng, size)
    half_length, half_width = rng.uniform(size / 12, size / 5), rng.uniform(size / 120, size / 60) + 1
    mask = _draw(size, "ellipse", [cx - half_length, cy - half_width, cx + half_length, cy + half_width])
    surface[mask] -= 45 + rng.normal(0, 6, mask.sum())[:, None]
    return mask


def _blob(rng: np.random.Generator, size: int, radius: float) -> np.ndarray:
    """An irregular closed region: a polygon whose radius wobbles around ``radius``."""
    angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    radii = radius * (1 + 0.25 * np.sin(3 * angles + rng.uniform(0, 6)) + rng.uniform(-0.1, 0.1, 24))
    return _polygon(tuple(_point(rng, size, margin=0.25)), radii, size)


def _polygon(centre: tuple[float, float], radii: np.ndarray, size: int) -> np.ndarray:
    """Mask of the polygon with vertices at ``radii`` around ``centre``, evenly spaced in angle."""
    angles = np.linspace(0, 2 * np.pi, len(radii), endpoint=False)
    xs, ys = centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)
    return _draw(size, "polygon", list(zip(xs.tolist(), ys.tolist(), strict=True)))


def _hole(surface: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    mask = _blob(rng, size, rng.uniform(size / 30, size / 14))
    surface[mask] = 18 + rng.normal(0, 4, (mask.sum(), 1))  # the dark table shows through
    return mask


def _stain(surface: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    mask = _blob(rng, size, rng.uniform(size / 14, size / 7))
    surface[mask] = surface[mask] * np.array([1.05, 0.85, 0.55]) + np.array([45, 25, 0])  # oily brown
    return mask


def _broken_yarn(surface: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    period = max(6, size // 32)
    columns = size // period
    column = int(rng.integers(min(4, columns // 4), columns - min(4, columns // 4))) * period
    top = int(rng.uniform(0.1, 0.5) * size)
    length = int(rng.uniform(0.2, 0.4) * size)
    mask = np.zeros((size, size), bool)
    mask[top : top + length, column : column + period] = True
    surface[mask] *= 0.45  # the missing warp leaves a dark gap between the weft yarns
    return mask


def _crack(surface: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    point = _point(rng, size, margin=0.2)
    heading = rng.uniform(0, 2 * np.pi)
    points = [tuple(point)]
    for _ in range(12):
        heading += rng.normal(0, 0.5)
        point = np.clip(point + size / 30 * np.array([np.cos(heading), np.sin(heading)]), 3, size - 4)
        points.append(tuple(point))
    mask = _draw(size, "line", points, width=max(2, size // 170), joint="curve")
    surface[mask] -= 95
    return mask


def _glaze_drip(surface: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    cx, cy = _point(rng, size, margin=0.25)
    r = rng.uniform(size / 40, size / 22)
    tail = rng.uniform(3, 6) * r
    drop = [(cx - r, cy), (cx, cy - tail), (cx + r, cy)]  # the drip runs down from above
    mask = _draw(size, "ellipse", [cx - r, cy - r, cx + r, cy + r]) | _draw(size, "polygon", drop)
    surface[mask] = surface[mask] * 0.82 + np.array([10, 4, -6])  # thicker glaze: deeper colour
    return mask


def _chip(surface: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    r = rng.uniform(size / 20, size / 10)
    along = rng.uniform(0.2, 0.8) * size
    side = int(rng.integers(4))
    centre = [(along, 0), (size - 1, along), (along, size - 1), (0, along)][side]
    mask = _polygon(centre, r * (1 + rng.uniform(-0.2, 0.2, 20)), size)
    surface[mask] = np.array([176, 112, 82]) + rng.normal(0, 8, (mask.sum(), 1))  # red clay body
    return mask


_DEFECTS = {
    ("steel_sheet", "scratch"): _scratch,
    ("steel_sheet", "pit"): _pits,
    ("steel_sheet", "inclusion"): _inclusion,
    ("woven_fabric", "hole"): _hole,
    ("woven_fabric", "stain"): _stain,
    ("woven_fabric", "broken_yarn"): _broken_yarn,
    ("glazed_tile", "crack"): _crack,
    ("glazed_tile", "glaze_drip"): _glaze_drip,
    ("glazed_tile", "chip"): _chip,
}


# --- the reader -----------------------------------------------------------------------------


def looks_like(root: Path) -> bool:
    """A synthetic tree carries its marker file."""
    return (root / MARKER).is_file()


def iter_samples(root: Path, on_bad: OnBadFile = raise_bad_file) -> Iterator[Sample]:
    """Samples of a tree written by :func:`generate` (the MVTec AD layout)."""
    yield from mvtec_like.iter_samples(root, "synthetic", on_bad=on_bad, require_masks=True)


READER = Reader(
    name="synthetic",
    description="Procedurally generated steel sheet, woven fabric and glazed tile (shipped in the package)",
    license="cc-by-4.0",
    homepage="",
    expected=f"{MARKER} and <category>/train/good, <category>/test/<defect>, <category>/ground_truth/<defect>",
    looks_like=looks_like,
    iter_samples=iter_samples,
    defects={name: spec.defects for name, spec in CATEGORIES.items()},
)
