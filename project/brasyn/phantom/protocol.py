"""Per-case acquisition protocol: field strength, sequence type and timing of each modality, SNR,
bias amplitude and the correlated receive gains (one scanner: shared factor × smaller per-modality one).

Scanners scale each reconstructed series so that its numbers are of a usable size whatever the
sequence's absolute signal (an MPRAGE's is ten times smaller than a spin echo's). This is modelled as
a division by the sequence's signal of nominal white matter (`reference_signal`, a function of the
protocol only), so white matter lands near `case_gain × modality_gain` scanner units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brasyn.constants import MODALITIES, Modality
from brasyn.phantom import signal as sig
from brasyn.phantom.site import DEFAULT, SiteProfile
from brasyn.phantom.tissue import WM_T1_RANGE

FIELD_STRENGTHS = (1.5, 3.0)
# The ranges (field mix, sequence mix, slices, SNR, bias, gains) are those of a site profile
# (`brasyn.phantom.site`); the default site's are the ones every training cohort was made with.
# Nominal white matter (PD, T1 ms, T2 ms) the reconstruction scaling refers to
NOMINAL_WM: dict[float, tuple[float, float, float]] = {1.5: (0.69, 725.0, 75.0), 3.0: (0.69, 920.0, 75.0)}
FLAIR_3D_TR_RANGE = (4800.0, 6000.0)  # 3-D (SPACE / CUBE-type) FLAIR: short TR, isotropic


@dataclass(frozen=True)
class Protocol:
    """Everything about how one case was acquired."""

    field_strength: float
    sequences: dict[Modality, sig.Sequence]
    snr: dict[Modality, float]
    bias_amplitude: dict[Modality, float]
    case_gain: float
    modality_gain: dict[Modality, float]
    reference_signal: dict[Modality, float]

    def gain(self, modality: Modality) -> float:
        """Scanner units per unit of ideal signal: case gain × modality gain / reference signal."""
        return self.case_gain * self.modality_gain[modality] / self.reference_signal[modality]

    def to_dict(self) -> dict:
        return {
            "field_strength": self.field_strength,
            "sequences": {str(m): s.to_dict() for m, s in self.sequences.items()},
            "snr": {str(m): v for m, v in self.snr.items()},
            "bias_amplitude": {str(m): v for m, v in self.bias_amplitude.items()},
            "case_gain": self.case_gain,
            "modality_gain": {str(m): v for m, v in self.modality_gain.items()},
            "reference_signal": {str(m): v for m, v in self.reference_signal.items()},
        }


def _slices(rng: np.random.Generator, site: SiteProfile) -> tuple[float | None, int | None]:
    if rng.random() >= site.thick_slice_probability:
        return None, None
    return float(rng.uniform(*site.slice_thickness_range)), int(rng.choice(3, p=site.slice_axis_probabilities))


def _t1_sequence(rng: np.random.Generator, field: float, site: SiteProfile) -> sig.Sequence:
    kinds = (sig.SPIN_ECHO, sig.SPOILED_GRADIENT_ECHO, sig.MPRAGE)
    kind = str(rng.choice(kinds, p=site.t1_kind_probabilities[field]))
    if kind == sig.SPIN_ECHO:
        thickness, axis = _slices(rng, site)
        return sig.Sequence(
            sig.SPIN_ECHO, tr=rng.uniform(400, 600), te=rng.uniform(8, 15), slice_thickness=thickness, slice_axis=axis
        )
    if kind == sig.SPOILED_GRADIENT_ECHO:
        tr = rng.uniform(15, 25)
        # T1-weighted only well above the Ernst angle of white matter (else GM turns brighter than WM)
        flip = rng.uniform(2.5, 3.5) * sig.ernst_angle(tr, float(np.mean(WM_T1_RANGE[field])))
        return sig.Sequence(sig.SPOILED_GRADIENT_ECHO, tr=tr, te=rng.uniform(3, 6), flip_deg=float(min(flip, 60.0)))
    tr, ti = (
        (rng.uniform(2000, 2300), rng.uniform(900, 1100))
        if field == 3.0
        else (rng.uniform(1900, 2200), rng.uniform(1000, 1100))
    )
    echo_spacing = rng.uniform(6.0, 9.0)
    n_readouts = int(rng.integers(128, 193))
    # keep TA = TI − (n/2)τ and TB = TR − TI − (n/2)τ at least 100 ms
    n_readouts = min(n_readouts, int(2 * (ti - 100.0) / echo_spacing), int(2 * (tr - ti - 100.0) / echo_spacing))
    return sig.Sequence(
        sig.MPRAGE,
        tr=tr,
        te=rng.uniform(2.5, 4.5),
        ti=ti,
        flip_deg=rng.uniform(8, 12),
        echo_spacing=echo_spacing,
        n_readouts=n_readouts,
    )


def _flair(rng: np.random.Generator, site: SiteProfile) -> sig.Sequence:
    """A 2-D FLAIR (the default site's only kind) or, at a site that uses them, a 3-D one, possibly
    acquired after the contrast injection. The variant draws happen only at such a site, so the
    default site's random streams are untouched."""
    flair_3d = site.p_flair_3d > 0 and rng.random() < site.p_flair_3d
    post_contrast = (site.p_post_contrast_flair > 0 and rng.random() < site.p_post_contrast_flair) or None
    tr = rng.uniform(*(FLAIR_3D_TR_RANGE if flair_3d else (8000, 11000)))
    # the operator sets TI for a nominal CSF T1, not this patient's exact one: the null is imperfect
    ti = sig.flair_null_ti(tr, rng.uniform(4000, 4500))
    thickness, axis = (None, None) if flair_3d else _slices(rng, site)
    return sig.Sequence(
        sig.FLAIR,
        tr=tr,
        te=rng.uniform(80, 140),
        ti=ti,
        slice_thickness=thickness,
        slice_axis=axis,
        post_contrast=post_contrast,
        acquisition="3D" if flair_3d else None,
    )


def sample_protocol(rng: np.random.Generator, site: SiteProfile = DEFAULT) -> Protocol:
    """Draw one case's protocol at `site`. t1c repeats the t1n sequence (contrast changes T1, not the sequence)."""
    field = float(rng.choice(FIELD_STRENGTHS, p=site.field_probabilities))
    t1 = _t1_sequence(rng, field, site)
    thickness, axis = _slices(rng, site)
    t2 = sig.Sequence(
        sig.FAST_SPIN_ECHO,
        tr=rng.uniform(*site.t2_tr_range),
        te=rng.uniform(*site.t2_te_range),
        slice_thickness=thickness,
        slice_axis=axis,
    )
    flair = _flair(rng, site)
    sequences = {Modality.T1N: t1, Modality.T1C: t1, Modality.T2W: t2, Modality.T2F: flair}
    snr = {m: float(rng.uniform(*site.snr_range)) for m in MODALITIES}
    bias = {m: float(rng.uniform(*site.bias_amplitude_range)) for m in MODALITIES}
    case_gain = float(np.exp(rng.uniform(*np.log(site.case_gain_range))))
    modality_gain = {
        m: float(site.modality_gain_offset[m] * np.exp(rng.normal(0.0, site.modality_gain_sigma))) for m in MODALITIES
    }
    pd, t1, t2 = NOMINAL_WM[field]
    reference = {m: float(sequences[m].signal(pd, t1, t2)) for m in MODALITIES}
    return Protocol(field, sequences, snr, bias, case_gain, modality_gain, reference)
