"""Quality-control pictures (Pillow only): a labelled montage per case and one overview of all cases.

Axial slices `volume[:, :, z]` are shown transposed (rows = the second voxel axis, anterior at the top
for BraTS' L,P,S orientation; columns = the first axis, patient right on the image left). The
prediction and its error are shown on the ground truth's intensity window, so a wrong intensity
scale is visible at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from brasyn.io.atomic import atomic_path

LABEL_HEIGHT = 16
MIN_PANEL = 160  # tiny volumes are upscaled (nearest) to at least this many pixels
OVERVIEW_PANEL = 128  # overview panels are resized to this many pixels (long side): 219 cases stay light
GAP = 2
OUTLINE_COLOURS = {"WT": (255, 220, 0), "ET": (255, 40, 40)}
BACKGROUND = (0, 0, 0)
TEXT = (255, 255, 255)


def tumour_slice(seg: np.ndarray | None, brain: np.ndarray) -> int:
    """Axial index z with the most tumour voxels (seg > 0); without tumour, the one with most brain."""
    if seg is not None and np.any(seg > 0):
        return int(np.argmax((seg > 0).sum(axis=(0, 1))))
    if np.any(brain):
        return int(np.argmax(brain.sum(axis=(0, 1))))
    return brain.shape[2] // 2


def window(image: np.ndarray, reference: np.ndarray | None = None) -> float:
    """Display maximum: the 99.5th percentile of the non-zero values of `reference` (or `image`)."""
    source = image if reference is None else reference
    values = source[np.isfinite(source) & (source != 0)]
    top = float(np.percentile(values, 99.5)) if values.size else 0.0
    return top if top > 0 else 1.0


def grey(image: np.ndarray, top: float) -> np.ndarray:
    """(H, W) → (H, W, 3) uint8, 0..top mapped to black..white (NaN shown black)."""
    scaled = np.nan_to_num(np.clip(image / top, 0.0, 1.0), nan=0.0)
    return np.repeat((scaled * 255.0 + 0.5).astype(np.uint8)[..., None], 3, axis=2)


def heat(image: np.ndarray, top: float) -> np.ndarray:
    """A black → red → yellow → white colour map for errors."""
    t = np.nan_to_num(np.clip(image / top, 0.0, 1.0), nan=0.0)
    rgb = np.stack([np.clip(3 * t, 0, 1), np.clip(3 * t - 1, 0, 1), np.clip(3 * t - 2, 0, 1)], axis=-1)
    return (rgb * 255.0 + 0.5).astype(np.uint8)


def outline(rgb: np.ndarray, seg2d: np.ndarray | None) -> np.ndarray:
    """Draw the whole-tumour (yellow) and enhancing-tumour (red) boundaries onto an RGB slice."""
    rgb = rgb.copy()
    if seg2d is None:
        return rgb
    for region, labels in (("WT", (1, 2, 3)), ("ET", (3,))):
        mask = np.isin(seg2d, labels)
        edge = mask & ~ndimage.binary_erosion(mask)
        rgb[edge] = OUTLINE_COLOURS[region]
    return rgb


def display(slice2d: np.ndarray) -> np.ndarray:
    """Voxel slice (X, Y[, 3]) → screen orientation (rows = Y, columns = X)."""
    return np.swapaxes(slice2d, 0, 1)


def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default()


def panel(rgb: np.ndarray, label: str, scale: int, *, size: int | None = None) -> Image.Image:
    """One labelled panel: the label strip on top of the image, upscaled by the integer `scale`, or
    resized so that its long side is `size` pixels (nearest when enlarging, bilinear when shrinking)."""
    image = Image.fromarray(np.ascontiguousarray(rgb), "RGB")
    if size is not None:
        factor = size / max(image.width, image.height)
        resample = Image.NEAREST if factor >= 1 else Image.BILINEAR
        image = image.resize((max(1, round(image.width * factor)), max(1, round(image.height * factor))), resample)
    elif scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    out = Image.new("RGB", (image.width, image.height + LABEL_HEIGHT), BACKGROUND)
    out.paste(image, (0, LABEL_HEIGHT))
    ImageDraw.Draw(out).text((3, 2), label, fill=TEXT, font=_font())
    return out


def row(panels: list[Image.Image], title: str | None = None) -> Image.Image:
    """Panels side by side, with an optional title line above."""
    width = sum(p.width for p in panels) + GAP * (len(panels) - 1)
    height = max(p.height for p in panels)
    top = LABEL_HEIGHT if title else 0
    out = Image.new("RGB", (width, height + top), BACKGROUND)
    x = 0
    for p in panels:
        out.paste(p, (x, top))
        x += p.width + GAP
    if title:
        ImageDraw.Draw(out).text((3, 2), title, fill=TEXT, font=_font())
    return out


def stack(rows: list[Image.Image]) -> Image.Image:
    width = max(r.width for r in rows)
    out = Image.new("RGB", (width, sum(r.height for r in rows) + GAP * (len(rows) - 1)), BACKGROUND)
    y = 0
    for r in rows:
        out.paste(r, (0, y))
        y += r.height + GAP
    return out


@dataclass(frozen=True)
class CaseSlices:
    """The axial slices a case's pictures are made of (voxel orientation, scanner units)."""

    case_id: str
    missing: str
    z: int
    sources: dict[str, np.ndarray]  # modality name → (X, Y)
    prediction: np.ndarray
    truth: np.ndarray
    seg: np.ndarray | None
    caption: str = ""  # e.g. "SSIM 0.912"
    segmentations: dict[str, np.ndarray] = field(default_factory=dict)
    """An independent segmenter's label maps (X, Y): "real set" and "completed set" when it ran."""

    @property
    def scale(self) -> int:
        return max(1, MIN_PANEL // max(self.truth.shape))


def case_slices(
    case_id: str,
    missing: str,
    sources: dict[str, np.ndarray],
    prediction: np.ndarray,
    truth: np.ndarray,
    seg: np.ndarray | None,
    caption: str = "",
    segmentations: dict[str, np.ndarray] | None = None,
) -> CaseSlices:
    """Pick the axial slice with the most tumour and keep only that slice of every volume (the
    `segmentations`, an independent segmenter's label maps by set name, included)."""
    brain = truth != 0
    for volume in sources.values():
        brain = brain | (volume != 0)
    z = tumour_slice(seg, brain)
    return CaseSlices(
        case_id=case_id,
        missing=missing,
        z=z,
        sources={name: np.asarray(v[:, :, z], dtype=np.float32) for name, v in sources.items()},
        prediction=np.asarray(prediction[:, :, z], dtype=np.float32),
        truth=np.asarray(truth[:, :, z], dtype=np.float32),
        seg=None if seg is None else np.asarray(seg[:, :, z]).astype(np.uint8),
        caption=caption,
        segmentations={name: np.asarray(v[:, :, z]).astype(np.uint8) for name, v in (segmentations or {}).items()},
    )


def _truth_panels(s: CaseSlices, size: int | None = None) -> list[Image.Image]:
    top = window(s.truth)
    error = np.abs(np.nan_to_num(s.prediction) - s.truth)
    return [
        panel(display(grey(s.prediction, top)), f"prediction {s.missing}", s.scale, size=size),
        panel(display(grey(s.truth, top)), f"truth {s.missing}", s.scale, size=size),
        panel(display(heat(error, top * 0.5)), "|error|" if size else "|error| (0..half window)", s.scale, size=size),
    ]


def montage(s: CaseSlices) -> Image.Image:
    """Sources, prediction, ground truth, |error| and the tumour outline (on the truth) of one case."""
    panels = [panel(display(grey(img, window(img))), f"source {name}", s.scale) for name, img in s.sources.items()]
    panels += _truth_panels(s)
    panels.append(panel(display(outline(grey(s.truth, window(s.truth)), s.seg)), "tumour WT/ET", s.scale))
    # the independent segmenter: on the real set over the real image, on the completed set over the prediction
    backgrounds = {"real set": s.truth, "completed set": s.prediction}
    for name, labels in s.segmentations.items():
        image = backgrounds.get(name, s.truth)
        panels.append(panel(display(outline(grey(image, window(s.truth)), labels)), f"segmenter, {name}", s.scale))
    title = f"{s.case_id}  missing {s.missing}  axial z={s.z}" + (f"  {s.caption}" if s.caption else "")
    return row(panels, title)


def overview(slices: list[CaseSlices]) -> Image.Image:
    """One row per case: prediction, truth, |error| and the tumour outline, titled with the caption."""
    rows = []
    for s in slices:
        panels = _truth_panels(s, OVERVIEW_PANEL)
        outlined = outline(grey(s.prediction, window(s.truth)), s.seg)
        panels.append(panel(display(outlined), "pred + tumour", s.scale, size=OVERVIEW_PANEL))
        rows.append(row(panels, f"{s.case_id}  missing {s.missing}  z={s.z}" + (f"  {s.caption}" if s.caption else "")))
    if not rows:
        return Image.new("RGB", (OVERVIEW_PANEL, LABEL_HEIGHT), BACKGROUND)
    return stack(rows)


def save_png(image: Image.Image, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path
