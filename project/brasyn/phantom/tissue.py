"""Per-case tissue parameters (PD, T1, T2) and gadolinium uptake rates, sampled within literature ranges.

T1 values are drawn relative to the case's white-matter T1 so that the documented contrast order
(T1: WM > GM > ED > ET > NCR > CSF; T2: CSF > NCR > ED > ET ≈ GM > WM; FLAIR: ED brightest) holds
for every sampled case and protocol; `tests/test_phantom.py` checks this over many draws.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class Tissue(str, enum.Enum):
    WM = "wm"
    GM = "gm"
    CSF = "csf"
    ED = "ed"  # edema (label 2)
    ET = "et"  # enhancing tumour (label 3), before contrast
    NCR = "ncr"  # necrosis / non-enhancing core (label 1)

    def __str__(self) -> str:
        return self.value


HEALTHY: tuple[Tissue, ...] = (Tissue.WM, Tissue.GM, Tissue.CSF)
TUMOUR: tuple[Tissue, ...] = (Tissue.ED, Tissue.ET, Tissue.NCR)
TISSUES: tuple[Tissue, ...] = HEALTHY + TUMOUR
TISSUE_CODES: dict[Tissue, int] = {t: k + 1 for k, t in enumerate(TISSUES)}  # PhantomCase.pure_tissue values

# Field-strength dependent white-matter T1 range (ms); the other T1s are ratios of it.
WM_T1_RANGE: dict[float, tuple[float, float]] = {1.5: (650.0, 800.0), 3.0: (840.0, 1000.0)}
GM_T1_RATIO = (1.50, 1.65)
ED_OVER_GM_T1 = (1.16, 1.26)  # ED T1 ≈ 1.75–2.1 × WM
ET_OVER_ED_T1 = (1.05, 1.12)  # ET T1 ≈ 1.8–2.3 × WM
NCR_T1_RATIO = (3.0, 3.5)
CSF_T1_RANGE = (4100.0, 4400.0)
T2_RANGES: dict[Tissue, tuple[float, float]] = {
    Tissue.WM: (70.0, 80.0),
    Tissue.GM: (95.0, 110.0),
    Tissue.CSF: (1500.0, 2300.0),
    Tissue.ED: (160.0, 170.0),
    Tissue.ET: (120.0, 130.0),
    Tissue.NCR: (320.0, 350.0),
}
PROTON_DENSITY: dict[Tissue, float] = {
    Tissue.WM: 0.69,
    Tissue.GM: 0.84,
    Tissue.CSF: 1.00,
    Tissue.ED: 0.86,
    Tissue.ET: 0.84,
    Tissue.NCR: 0.95,
}
PD_JITTER = 0.02  # relative, per case and tissue

# Gadolinium: ΔR1 = r1 · [Gd] (1/s). Normal tissue leaks a little, enhancing tumour a lot.
UPTAKE_RANGES: dict[Tissue, tuple[float, float]] = {
    Tissue.WM: (0.02, 0.04),
    Tissue.GM: (0.02, 0.04),
    Tissue.CSF: (0.0, 0.005),
    Tissue.ED: (0.03, 0.08),
    Tissue.ET: (0.5, 1.0),
    Tissue.NCR: (0.0, 0.02),
}
VESSEL_UPTAKE_RANGE = (2.0, 5.0)  # 1/s, partial volume of blood in sulcal / choroidal vessels


@dataclass(frozen=True)
class TissueParams:
    """Relaxation parameters of one tissue: proton density (relative to CSF), T1 and T2 in ms."""

    pd: float
    t1: float
    t2: float


def sample_tissues(rng: np.random.Generator, field_strength: float) -> dict[Tissue, TissueParams]:
    """Per-case tissue parameters at `field_strength` (1.5 or 3.0 tesla)."""
    if field_strength not in WM_T1_RANGE:
        raise ValueError(f"field strength {field_strength} T not supported; expected one of {sorted(WM_T1_RANGE)}")
    t1_wm = rng.uniform(*WM_T1_RANGE[field_strength])
    t1_gm = t1_wm * rng.uniform(*GM_T1_RATIO)
    t1_ed = t1_gm * rng.uniform(*ED_OVER_GM_T1)
    t1_et = t1_ed * rng.uniform(*ET_OVER_ED_T1)
    t1_ncr = t1_wm * rng.uniform(*NCR_T1_RATIO)
    t1_csf = rng.uniform(*CSF_T1_RANGE)
    t1 = {
        Tissue.WM: t1_wm,
        Tissue.GM: t1_gm,
        Tissue.CSF: t1_csf,
        Tissue.ED: t1_ed,
        Tissue.ET: t1_et,
        Tissue.NCR: t1_ncr,
    }
    out = {}
    for tissue in TISSUES:
        pd = PROTON_DENSITY[tissue] * (1.0 + rng.uniform(-PD_JITTER, PD_JITTER))
        out[tissue] = TissueParams(pd=float(pd), t1=float(t1[tissue]), t2=float(rng.uniform(*T2_RANGES[tissue])))
    return out


def sample_uptake(rng: np.random.Generator) -> dict[Tissue, float]:
    """Per-case mean gadolinium relaxation-rate change ΔR1 (1/s) of each tissue."""
    return {tissue: float(rng.uniform(*UPTAKE_RANGES[tissue])) for tissue in TISSUES}


def post_contrast_t1(t1_ms: np.ndarray | float, delta_r1_per_s: np.ndarray | float) -> np.ndarray:
    """1/T1_post = 1/T1_pre + ΔR1 (T1 in ms, ΔR1 in 1/s)."""
    return 1.0 / (1.0 / np.asarray(t1_ms) + np.asarray(delta_r1_per_s) * 1e-3)
