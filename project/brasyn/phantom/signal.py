"""MR signal equations (magnitude, M0 ∝ PD), vectorised over voxels.

Times are in milliseconds, angles in degrees. Every function accepts scalars or arrays for the tissue
parameters (PD relative to CSF, T1, T2 or T2*) and returns the noise-free signal with the broadcast
shape. The equations are those of the project's physics notes (mri-physics.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ArrayLike = np.ndarray | float

SPIN_ECHO = "SE"  # 2-D T1 spin echo (t1n, t1c)
FAST_SPIN_ECHO = "FSE"  # 2-D T2 fast spin echo (t2w); same steady-state equation as SE
SPOILED_GRADIENT_ECHO = "GRE"  # 3-D spoiled gradient echo (FLASH / SPGR)
MPRAGE = "MPRAGE"  # 3-D inversion-prepared turbo-FLASH
FLAIR = "FLAIR"  # fluid-attenuated inversion recovery (t2f)
SEQUENCE_KINDS: tuple[str, ...] = (SPIN_ECHO, FAST_SPIN_ECHO, SPOILED_GRADIENT_ECHO, MPRAGE, FLAIR)
T2STAR_RATIO = 0.7  # T2* ≈ 0.7 · T2 for the gradient-echo read-outs (TE of a few ms: a small effect)


@dataclass(frozen=True)
class Sequence:
    """One acquisition: its kind and timing (ms, degrees). Unused fields stay None.

    `slice_thickness` (mm) and `slice_axis` (0, 1, 2 of the BraTS grid) describe 2-D acquisitions
    that are blurred along one axis; None for 3-D or thin-slice acquisitions. `post_contrast`: acquired
    after the gadolinium injection (its T1s are the shortened ones), None before. `acquisition`: "3D"
    for a 3-D variant of a sequence that is 2-D by default (FLAIR), else None.
    """

    kind: str
    tr: float
    te: float
    ti: float | None = None
    flip_deg: float | None = None
    echo_spacing: float | None = None
    n_readouts: int | None = None
    slice_thickness: float | None = None
    slice_axis: int | None = None
    post_contrast: bool | None = None
    acquisition: str | None = None

    def signal(self, pd: ArrayLike, t1: ArrayLike, t2: ArrayLike) -> np.ndarray:
        """Noise-free magnitude signal of tissue(s) with proton density `pd`, `t1` and `t2` (ms)."""
        if self.kind in (SPIN_ECHO, FAST_SPIN_ECHO):
            return spin_echo(pd, t1, t2, tr=self.tr, te=self.te)
        if self.kind == SPOILED_GRADIENT_ECHO:
            return spoiled_gradient_echo(
                pd, t1, np.multiply(t2, T2STAR_RATIO), tr=self.tr, te=self.te, flip_deg=self.flip_deg
            )
        if self.kind == MPRAGE:
            return mprage(
                pd,
                t1,
                np.multiply(t2, T2STAR_RATIO),
                tr=self.tr,
                ti=self.ti,
                te=self.te,
                flip_deg=self.flip_deg,
                echo_spacing=self.echo_spacing,
                n_readouts=self.n_readouts,
            )
        if self.kind == FLAIR:
            return flair(pd, t1, t2, tr=self.tr, te=self.te, ti=self.ti)
        raise ValueError(f"unknown sequence kind {self.kind!r}; expected one of {', '.join(SEQUENCE_KINDS)}")

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def spin_echo(pd: ArrayLike, t1: ArrayLike, t2: ArrayLike, *, tr: float, te: float) -> np.ndarray:
    """S = PD · (1 − exp(−TR/T1)) · exp(−TE/T2)  (T1 SE, and T2 FSE with long TR)."""
    return np.asarray(pd) * (1.0 - np.exp(-tr / np.asarray(t1))) * np.exp(-te / np.asarray(t2))


def spoiled_gradient_echo(
    pd: ArrayLike, t1: ArrayLike, t2star: ArrayLike, *, tr: float, te: float, flip_deg: float
) -> np.ndarray:
    """S = PD · sin α · (1 − E1) / (1 − cos α · E1) · exp(−TE/T2*),  E1 = exp(−TR/T1)."""
    alpha = np.deg2rad(flip_deg)
    e1 = np.exp(-tr / np.asarray(t1))
    return np.asarray(pd) * np.sin(alpha) * (1.0 - e1) / (1.0 - np.cos(alpha) * e1) * np.exp(-te / np.asarray(t2star))


def ernst_angle(tr: float, t1: float) -> float:
    """Flip angle (degrees) of maximal spoiled-GRE signal: arccos(exp(−TR/T1))."""
    return float(np.rad2deg(np.arccos(np.exp(-tr / t1))))


def mprage(
    pd: ArrayLike,
    t1: ArrayLike,
    t2star: ArrayLike,
    *,
    tr: float,
    ti: float,
    te: float,
    flip_deg: float,
    echo_spacing: float,
    n_readouts: int,
) -> np.ndarray:
    """Closed-form steady state of a 3-D MPRAGE, signal at the centre of k-space (read-out n/2).

    E = exp(−τ/T1), A = exp(−TA/T1), B = exp(−TB/T1), q = (cos α · E)^n, M_ss = (1 − E)/(1 − cos α · E),
    TA = TI − (n/2)τ, TB = TR − TA − nτ,
    M_b = [(1 − B) + B · M_ss · (1 − q) + B · q · (1 − A)] / (1 + A · B · q), M_A = (1 − A) − A · M_b,
    S = PD · sin α · |M_ss + (M_A − M_ss)(cos α · E)^(n/2)| · exp(−TE/T2*).
    """
    t1 = np.asarray(t1, dtype=np.float64)
    alpha = np.deg2rad(flip_deg)
    ta = ti - 0.5 * n_readouts * echo_spacing
    tb = tr - ta - n_readouts * echo_spacing
    if ta <= 0 or tb <= 0:
        raise ValueError(f"MPRAGE timing impossible: TA={ta:.0f} ms, TB={tb:.0f} ms (both must be > 0)")
    e = np.exp(-echo_spacing / t1)
    a = np.exp(-ta / t1)
    b = np.exp(-tb / t1)
    ce = np.cos(alpha) * e
    q = ce**n_readouts
    m_ss = (1.0 - e) / (1.0 - ce)
    m_b = ((1.0 - b) + b * m_ss * (1.0 - q) + b * q * (1.0 - a)) / (1.0 + a * b * q)
    m_a = (1.0 - a) - a * m_b
    magnitude = np.abs(m_ss + (m_a - m_ss) * ce ** (n_readouts / 2.0))
    return np.asarray(pd) * np.sin(alpha) * magnitude * np.exp(-te / np.asarray(t2star))


def flair(pd: ArrayLike, t1: ArrayLike, t2: ArrayLike, *, tr: float, te: float, ti: float) -> np.ndarray:
    """S = PD · |1 − 2 exp(−TI/T1) + exp(−TR/T1)| · exp(−TE/T2)."""
    t1 = np.asarray(t1)
    return np.asarray(pd) * np.abs(1.0 - 2.0 * np.exp(-ti / t1) + np.exp(-tr / t1)) * np.exp(-te / np.asarray(t2))


def flair_null_ti(tr: float, t1_csf: float) -> float:
    """Inversion time that nulls a tissue of `t1_csf`: T1 · [ln 2 − ln(1 + exp(−TR/T1))]."""
    return float(t1_csf * (np.log(2.0) - np.log1p(np.exp(-tr / t1_csf))))
