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
from brasyn.phantom.tissue import WM_T1_RANGE

FIELD_STRENGTHS = (1.5, 3.0)
FIELD_PROBABILITIES = (0.4, 0.6)
# T1 sequence mix per field strength: (SE, GRE, MPRAGE)
T1_KIND_PROBABILITIES: dict[float, tuple[float, float, float]] = {1.5: (0.6, 0.2, 0.2), 3.0: (0.3, 0.2, 0.5)}
THICK_SLICE_PROBABILITY = 0.5  # of a 2-D acquisition being reconstructed from 3–6 mm slices
SLICE_THICKNESS_RANGE = (3.0, 6.0)
SLICE_AXIS_PROBABILITIES = (0.15, 0.15, 0.70)  # sagittal (L-R), coronal (P-A), axial (S-I)
SNR_RANGE = (15.0, 45.0)
BIAS_AMPLITUDE_RANGE = (0.20, 0.30)
# Shared per-case gain, log-uniform: white matter lands at roughly 150–4000 scanner units.
CASE_GAIN_RANGE = (200.0, 3000.0)
# Nominal white matter (PD, T1 ms, T2 ms) the reconstruction scaling refers to
NOMINAL_WM: dict[float, tuple[float, float, float]] = {1.5: (0.69, 725.0, 75.0), 3.0: (0.69, 920.0, 75.0)}
MODALITY_GAIN_SIGMA = 0.2  # log-normal sigma of the per-modality factor


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


def _slices(rng: np.random.Generator) -> tuple[float | None, int | None]:
    if rng.random() >= THICK_SLICE_PROBABILITY:
        return None, None
    return float(rng.uniform(*SLICE_THICKNESS_RANGE)), int(rng.choice(3, p=SLICE_AXIS_PROBABILITIES))


def _t1_sequence(rng: np.random.Generator, field: float) -> sig.Sequence:
    kind = str(rng.choice((sig.SPIN_ECHO, sig.SPOILED_GRADIENT_ECHO, sig.MPRAGE), p=T1_KIND_PROBABILITIES[field]))
    if kind == sig.SPIN_ECHO:
        thickness, axis = _slices(rng)
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


def sample_protocol(rng: np.random.Generator) -> Protocol:
    """Draw one case's protocol. t1c repeats the t1n sequence (contrast changes T1, not the sequence)."""
    field = float(rng.choice(FIELD_STRENGTHS, p=FIELD_PROBABILITIES))
    t1 = _t1_sequence(rng, field)
    thickness, axis = _slices(rng)
    t2 = sig.Sequence(
        sig.FAST_SPIN_ECHO,
        tr=rng.uniform(5000, 6500),
        te=rng.uniform(95, 125),
        slice_thickness=thickness,
        slice_axis=axis,
    )
    tr = rng.uniform(8000, 11000)
    # the operator sets TI for a nominal CSF T1, not this patient's exact one: the null is imperfect
    ti = sig.flair_null_ti(tr, rng.uniform(4000, 4500))
    thickness, axis = _slices(rng)
    flair = sig.Sequence(sig.FLAIR, tr=tr, te=rng.uniform(80, 140), ti=ti, slice_thickness=thickness, slice_axis=axis)
    sequences = {Modality.T1N: t1, Modality.T1C: t1, Modality.T2W: t2, Modality.T2F: flair}
    snr = {m: float(rng.uniform(*SNR_RANGE)) for m in MODALITIES}
    bias = {m: float(rng.uniform(*BIAS_AMPLITUDE_RANGE)) for m in MODALITIES}
    case_gain = float(np.exp(rng.uniform(*np.log(CASE_GAIN_RANGE))))
    modality_gain = {m: float(np.exp(rng.normal(0.0, MODALITY_GAIN_SIGMA))) for m in MODALITIES}
    pd, t1, t2 = NOMINAL_WM[field]
    reference = {m: float(sequences[m].signal(pd, t1, t2)) for m in MODALITIES}
    return Protocol(field, sequences, snr, bias, case_gain, modality_gain, reference)
