#!/usr/bin/env python3
"""Print the enhancement recovered per case, run and variant from scripts/ab_probe.py's --json.

python docs/study/se-counterfactual/summary.py runs/se-cf/ab_t1c.json > docs/study/se-counterfactual/summary.txt
"""

from __future__ import annotations

import json
import statistics
import sys

data = json.loads(open(sys.argv[1]).read())
variants = list(data)
runs = list(data[variants[0]])
print("enhancement recovered (T1-ce target, every case; mean last)")
print(
    f"{'run':<12} {'variant':<12} " + " ".join(f"{r['case'][10:15]:>6}" for r in data[variants[0]][runs[0]]) + "   mean"
)
for run in runs:
    for variant in variants:
        values = [r["enhancement_recovered"] for r in data[variant][run]]
        print(f"{run:<12} {variant:<12} " + " ".join(f"{v:6.2f}" for v in values) + f" {statistics.fmean(values):6.2f}")
print("\nhealthy-brain SSIM / PSNR brain (dB), mean over the cases")
for run in runs:
    for variant in variants:
        rows = data[variant][run]
        ssim = statistics.fmean(r["ssim_healthy_region"] for r in rows)
        psnr = statistics.fmean(r["psnr_brain"] for r in rows)
        print(f"{run:<12} {variant:<12} {ssim:.4f} / {psnr:.2f}")
