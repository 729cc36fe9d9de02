"""Learning curves of training runs: validation scores of stage 2 against optimizer steps.

    python scripts/plot_learning_curves.py OUT.png RUN_DIR [RUN_DIR ...] [--label NAME ...]

Reads every `metrics_<target>.csv` of each run folder (what `brasyn train` writes) and draws one panel
per validation column (SSIM, SSIM inside the tumour, whole-tumour Dice, L1), one line per run and
target, against the optimizer step; the x-axis tick labels also give the wall time of the first
run. Pillow only (it comes with scikit-image), so it runs in the project's own environment.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from PIL import Image, ImageDraw

PANELS = (("val_ssim", "validation SSIM"), ("val_ssim_tumour", "SSIM inside the tumour"),
          ("val_dice_wt", "whole-tumour Dice"), ("val_l1", "validation L1 ([-1, 1] units)"))
COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127))
WIDTH, HEIGHT, MARGIN = 520, 300, 48


def read_curves(run: Path, label: str) -> dict[str, list[dict[str, float]]]:
    """{f"{label} {target}": stage-2 rows with numeric columns} for each metrics CSV in `run`."""
    curves = {}
    for path in sorted(run.glob("metrics_*.csv")):
        target = path.stem.removeprefix("metrics_")
        rows = []
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                if row["stage"] == "stage2":
                    rows.append({k: float(v) for k, v in row.items() if k != "stage" and v not in ("", None)})
        if rows:
            curves[f"{label} {target}".strip()] = rows
    return curves


def draw_panel(curves: dict[str, list[dict[str, float]]], column: str, title: str) -> Image.Image:
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    points = {name: [(r["step"], r[column]) for r in rows if column in r] for name, rows in curves.items()}
    values = [v for line in points.values() for _, v in line]
    steps = [s for line in points.values() for s, _ in line]
    draw.text((MARGIN, 8), title, fill="black")
    if not values:
        draw.text((MARGIN, HEIGHT // 2), "no data", fill="black")
        return image
    x_max, y_min, y_max = max(steps), min(values), max(values)
    if y_max - y_min < 1e-6:
        y_min, y_max = y_min - 0.5, y_max + 0.5
    box = (MARGIN, 28, WIDTH - 12, HEIGHT - 30)

    def xy(step: float, value: float) -> tuple[float, float]:
        x = box[0] + (box[2] - box[0]) * step / max(x_max, 1)
        y = box[3] - (box[3] - box[1]) * (value - y_min) / (y_max - y_min)
        return x, y

    draw.rectangle(box, outline=(160, 160, 160))
    for k in range(5):
        value = y_min + (y_max - y_min) * k / 4
        draw.text((4, xy(0, value)[1] - 6), f"{value:.3f}", fill="black")
        step = x_max * k / 4
        draw.text((xy(step, y_min)[0] - 10, box[3] + 4), f"{step:.0f}", fill="black")
    draw.text((box[2] - 70, HEIGHT - 14), "optimizer step", fill="black")
    for index, line in enumerate(points.values()):
        colour = COLOURS[index % len(COLOURS)]
        if len(line) > 1:
            draw.line([xy(s, v) for s, v in line], fill=colour, width=2)
        for s, v in line:
            x, y = xy(s, v)
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
    return image


def legend(curves: dict[str, list[dict[str, float]]]) -> Image.Image:
    image = Image.new("RGB", (2 * WIDTH, 18 * ((len(curves) + 3) // 4) + 8), "white")
    draw = ImageDraw.Draw(image)
    for index, (name, rows) in enumerate(curves.items()):
        x, y = 10 + (index % 4) * (WIDTH // 2), 4 + 18 * (index // 4)
        draw.rectangle((x, y + 3, x + 14, y + 11), fill=COLOURS[index % len(COLOURS)])
        minutes = rows[-1].get("elapsed", 0.0) / 60
        draw.text((x + 20, y), f"{name} ({rows[-1]['step']:.0f} steps, {minutes:.0f} min)", fill="black")
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("runs", type=Path, nargs="+")
    parser.add_argument("--label", action="append", default=[], help="one per run (default: the folder name)")
    args = parser.parse_args()
    labels = args.label + [run.name for run in args.runs[len(args.label):]]
    curves = {}
    for run, label in zip(args.runs, labels, strict=True):
        curves.update(read_curves(run, label))
    if not curves:
        raise SystemExit(f"no stage-2 rows in metrics_*.csv under {', '.join(map(str, args.runs))}")
    panels = [draw_panel(curves, column, title) for column, title in PANELS]
    key = legend(curves)
    sheet = Image.new("RGB", (2 * WIDTH, 2 * HEIGHT + key.height), "white")
    for index, panel in enumerate(panels):
        sheet.paste(panel, ((index % 2) * WIDTH, (index // 2) * HEIGHT))
    sheet.paste(key, (0, 2 * HEIGHT))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
