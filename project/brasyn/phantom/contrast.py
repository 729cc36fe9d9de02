"""The documented tissue contrast order of each modality, and per-case physics drawn to respect it.

Literature ranges of T1/T2 and of sequence timings overlap enough that a few percent of independent
draws would invert a textbook contrast (e.g. GM brighter than WM on a long-TR spin echo). Cases are
drawn jointly (protocol, tissues, uptake) and redrawn until every ordered pair below holds with a
`CONTRAST_MARGIN` relative margin; about 2 % of draws are rejected (checked in the tests).
"""

from __future__ import annotations

import itertools

import numpy as np

from brasyn.constants import Modality
from brasyn.phantom.protocol import Protocol, sample_protocol
from brasyn.phantom.site import DEFAULT, SiteProfile
from brasyn.phantom.tissue import (
    TISSUES,
    TUMOUR,
    Tissue,
    TissueParams,
    post_contrast_t1,
    sample_tissues,
    sample_uptake,
)
from brasyn.phantom.uptake import HEALTHY_SPREAD, TUMOUR_SPREAD

T = Tissue
# Chains read "brighter than": each tissue is brighter than the next one.
EXPECTED_ORDER: dict[Modality, tuple[tuple[Tissue, ...], ...]] = {
    Modality.T1N: ((T.WM, T.GM, T.ED, T.ET, T.NCR, T.CSF),),
    Modality.T1C: tuple((T.ET, other) for other in (T.WM, T.GM, T.ED, T.NCR, T.CSF)),
    Modality.T2W: ((T.CSF, T.NCR, T.ED, T.ET, T.WM), (T.GM, T.WM)),
    Modality.T2F: ((T.ED, T.GM, T.WM, T.CSF), (T.ED, T.ET)),
}
# A FLAIR acquired after contrast: gadolinium brightens the enhancing tumour up to the edema's level
POST_CONTRAST_FLAIR_ORDER: tuple[tuple[Tissue, ...], ...] = ((T.ED, T.GM, T.WM, T.CSF),)
CONTRAST_MARGIN = 1.03
MAX_DRAWS = 1000


def tissue_signals(
    protocol: Protocol, tissues: dict[Tissue, TissueParams], uptake: dict[Tissue, float]
) -> dict[Modality, dict[Tissue, float]]:
    """Noise-free signal of each pure tissue in each modality.

    t1c uses the median of the tissue's uptake field (mean uptake × the log-normal median factor),
    so that the order holds for the median over a tissue's voxels.
    """
    out: dict[Modality, dict[Tissue, float]] = {}
    for modality, sequence in protocol.sequences.items():
        values = {}
        for tissue in TISSUES:
            p = tissues[tissue]
            median_uptake = uptake[tissue] * median_uptake_factor(tissue)
            post = modality is Modality.T1C or bool(sequence.post_contrast)
            t1 = post_contrast_t1(p.t1, median_uptake) if post else p.t1
            values[tissue] = float(sequence.signal(p.pd, t1, p.t2))
        out[modality] = values
    return out


def median_uptake_factor(tissue: Tissue) -> float:
    """Median / mean of the log-normal uptake field of `tissue`: exp(−spread²/2)."""
    spread = TUMOUR_SPREAD if tissue in TUMOUR else HEALTHY_SPREAD
    return float(np.exp(-0.5 * spread * spread))


def expected_order(protocol: Protocol | None = None) -> dict[Modality, tuple[tuple[Tissue, ...], ...]]:
    """`EXPECTED_ORDER`, with the post-contrast FLAIR chains when `protocol`'s FLAIR came after contrast."""
    if protocol is not None and protocol.sequences[Modality.T2F].post_contrast:
        return {**EXPECTED_ORDER, Modality.T2F: POST_CONTRAST_FLAIR_ORDER}
    return EXPECTED_ORDER


def order_violations(
    signals: dict[Modality, dict[Tissue, float]],
    margin: float = CONTRAST_MARGIN,
    order: dict[Modality, tuple[tuple[Tissue, ...], ...]] = EXPECTED_ORDER,
) -> list[str]:
    """Pairs of the expected `order` that do not hold with `margin`, as "t1n: gm !> ed"."""
    bad = []
    for modality, chains in order.items():
        for chain in chains:
            for brighter, darker in itertools.pairwise(chain):
                if not signals[modality][brighter] >= margin * signals[modality][darker]:
                    bad.append(f"{modality}: {brighter} !> {darker}")
    return bad


def sample_physics(
    rng: np.random.Generator, site: SiteProfile = DEFAULT
) -> tuple[Protocol, dict[Tissue, TissueParams], dict[Tissue, float], int]:
    """Draw (protocol, tissues, uptake) at `site` until the expected contrast order holds; also
    returns the draw count."""
    for draw in range(1, MAX_DRAWS + 1):
        protocol = sample_protocol(rng, site)
        tissues = sample_tissues(rng, protocol.field_strength)
        uptake = sample_uptake(rng)
        if not order_violations(tissue_signals(protocol, tissues, uptake), order=expected_order(protocol)):
            return protocol, tissues, uptake, draw
    raise RuntimeError(
        f"no physics draw out of {MAX_DRAWS} follows the expected contrast order; the parameter ranges are inconsistent"
    )
