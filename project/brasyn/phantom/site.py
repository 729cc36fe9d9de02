"""Acquisition sites: how a cohort's scanners, protocols and patients differ from another cohort's.

`DEFAULT` holds the ranges every training and validation cohort of this project was made with (the
module constants of `protocol` and `deformation`); `SHIFTED` is a second, held-out site that differs
the way real BraTS institutions differ from each other:

- scanners and protocols: mostly 1.5 T (about 70 % of the cases after the contrast-order check of
  `contrast.sample_physics`), mostly gradient-echo T1, shorter-TR T2, FLAIR as a 3-D
  (isotropic, short-TR) acquisition in half of the cases and after contrast in half of them;
- resolution: most 2-D series acquired as 4–7 mm slices (often coronal / sagittal) and resampled
  back to the 1 mm grid by linear interpolation (`acquisition.thick_slices`), instead of a blur;
- noise and receive chain: lower SNR, stronger bias fields, a wider gain range and a different,
  systematic relation between the four series' gains (another vendor's reconstruction scaling);
- anatomy: global head-size scaling, stronger rotation and elastic deformation, cortical atrophy,
  enlarged lateral ventricles and hemispheric asymmetry. The nilearn wheel ships no second anatomy
  (its other volume is a 3 mm statistical map), so the anatomy shift is made by these variations of
  the MNI152 maps.

The shifted site is for measuring generalisation only: never train or tune on it.

`VARIED` is a training site: domain randomisation in the spirit of nnU-Net's augmentation and of
SynthSeg, wider ranges than the default site of the same kinds of variation real sites show (field
strength and T1 sequence mix, T2 timing, 3-D and post-contrast FLAIR, slice thickness, SNR, bias,
the four series' gain relation, anatomy). Its ranges are generic, not the shifted site's values, and
two of the shifted site's choices no training site draws: thick slices linearly resampled to the
grid and a systematic per-series gain offset (its slices up to 7 mm, atrophy up to 35 % and
ventricle expansion up to 0.45 also reach beyond the varied ranges).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from brasyn.constants import MODALITIES, Modality
from brasyn.errors import ConfigError

DEFAULT_NAME = "default"
SHIFTED_NAME = "shifted"
VARIED_NAME = "varied"
TRAINING_SITES = (DEFAULT_NAME, VARIED_NAME)
"""Sites a training cohort may come from (the shifted one is held out)."""
# Lateral-ventricle bodies of the MNI152 2009a template (RAS mm; centroids of CSF > 0.7 near the midline)
VENTRICLE_CENTRES_MM = ((-12.0, -10.0, 16.0), (12.0, -10.0, 16.0))


@dataclass(frozen=True)
class AnatomyVariation:
    """Per-case anatomical variation beyond the default template deformation (0 / 1 = none)."""

    scale_range: tuple[float, float] = (0.94, 1.06)
    rotation_deg: float = 6.0
    elastic_rms_mm: tuple[float, float] = (1.0, 2.5)
    elastic_sigma_mm: tuple[float, float] = (12.0, 20.0)
    atrophy_range: tuple[float, float] = (0.0, 0.0)
    """Fraction of grey matter (and a third of it of white matter) turned into CSF."""
    ventricle_range: tuple[float, float] = (0.0, 0.0)
    """Amplitude of the expansion around the lateral ventricles (the mass-effect form, 0 = none)."""
    ventricle_radius_mm: float = 22.0
    asymmetry_range: tuple[float, float] = (0.0, 0.0)
    """Left-right size difference: one hemisphere scaled by 1 + a, the other by 1 − a (sign random)."""

    @property
    def extra(self) -> bool:
        """Whether any variation beyond the default deformation is drawn."""
        return max(self.atrophy_range[1], self.ventricle_range[1], self.asymmetry_range[1]) > 0


@dataclass(frozen=True)
class SiteProfile:
    """The ranges a site's cases are drawn from. See the module docstring."""

    name: str
    field_probabilities: tuple[float, float] = (0.4, 0.6)  # 1.5 T, 3 T
    t1_kind_probabilities: dict[float, tuple[float, float, float]] = field(
        default_factory=lambda: {1.5: (0.6, 0.2, 0.2), 3.0: (0.3, 0.2, 0.5)}
    )  # SE, GRE, MPRAGE
    thick_slice_probability: float = 0.5
    slice_thickness_range: tuple[float, float] = (3.0, 6.0)
    slice_axis_probabilities: tuple[float, float, float] = (0.15, 0.15, 0.70)
    resample_slices: bool = False
    """Thick slices acquired and linearly resampled to the grid (True), or a Gaussian blur (False)."""
    t2_tr_range: tuple[float, float] = (5000.0, 6500.0)
    t2_te_range: tuple[float, float] = (95.0, 125.0)
    p_flair_3d: float = 0.0
    """Probability of a 3-D FLAIR (isotropic, TR 4800–6000 ms) instead of the 2-D one."""
    p_post_contrast_flair: float = 0.0
    """Probability that the FLAIR was acquired after the contrast injection (gadolinium shortens T1)."""
    snr_range: tuple[float, float] = (15.0, 45.0)
    bias_amplitude_range: tuple[float, float] = (0.20, 0.30)
    case_gain_range: tuple[float, float] = (200.0, 3000.0)
    modality_gain_sigma: float = 0.2
    modality_gain_offset: dict[Modality, float] = field(default_factory=lambda: {m: 1.0 for m in MODALITIES})
    """Systematic factor of each series' gain (the vendor's reconstruction scaling)."""
    anatomy: AnatomyVariation = AnatomyVariation()

    def to_dict(self) -> dict:
        """The ranges as plain JSON data (recorded in phantom.json for a non-default site)."""
        return {
            "name": self.name,
            "field_probabilities": list(self.field_probabilities),
            "t1_kind_probabilities": {str(k): list(v) for k, v in self.t1_kind_probabilities.items()},
            "thick_slice_probability": self.thick_slice_probability,
            "slice_thickness_range": list(self.slice_thickness_range),
            "slice_axis_probabilities": list(self.slice_axis_probabilities),
            "resample_slices": self.resample_slices,
            "t2_tr_range": list(self.t2_tr_range),
            "t2_te_range": list(self.t2_te_range),
            "p_flair_3d": self.p_flair_3d,
            "p_post_contrast_flair": self.p_post_contrast_flair,
            "snr_range": list(self.snr_range),
            "bias_amplitude_range": list(self.bias_amplitude_range),
            "case_gain_range": list(self.case_gain_range),
            "modality_gain_sigma": self.modality_gain_sigma,
            "modality_gain_offset": {str(m): v for m, v in self.modality_gain_offset.items()},
            "anatomy": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.anatomy.__dict__.items()},
        }


DEFAULT = SiteProfile(name=DEFAULT_NAME)

SHIFTED = SiteProfile(
    name=SHIFTED_NAME,
    field_probabilities=(0.75, 0.25),
    t1_kind_probabilities={1.5: (0.2, 0.5, 0.3), 3.0: (0.1, 0.6, 0.3)},
    thick_slice_probability=0.85,
    slice_thickness_range=(4.0, 7.0),
    slice_axis_probabilities=(0.25, 0.35, 0.40),
    resample_slices=True,
    t2_tr_range=(3500.0, 5000.0),  # shorter still lets 1.5 T cases fail the T2 order (CSF above necrosis)
    t2_te_range=(100.0, 130.0),
    p_flair_3d=0.5,
    p_post_contrast_flair=0.5,
    snr_range=(8.0, 25.0),
    bias_amplitude_range=(0.30, 0.50),
    case_gain_range=(80.0, 8000.0),
    modality_gain_sigma=0.35,
    modality_gain_offset={Modality.T1N: 1.0, Modality.T1C: 1.3, Modality.T2W: 0.6, Modality.T2F: 1.6},
    anatomy=AnatomyVariation(
        scale_range=(0.86, 1.04),
        rotation_deg=12.0,
        elastic_rms_mm=(2.5, 4.5),
        elastic_sigma_mm=(9.0, 15.0),
        atrophy_range=(0.05, 0.35),
        ventricle_range=(0.15, 0.45),
        asymmetry_range=(0.02, 0.06),
    ),
)

VARIED = SiteProfile(
    name=VARIED_NAME,
    field_probabilities=(0.5, 0.5),
    t1_kind_probabilities={1.5: (0.4, 0.3, 0.3), 3.0: (0.2, 0.4, 0.4)},
    thick_slice_probability=0.6,
    slice_thickness_range=(2.0, 6.0),
    slice_axis_probabilities=(0.2, 0.2, 0.6),
    t2_tr_range=(3000.0, 7000.0),
    t2_te_range=(85.0, 135.0),
    p_flair_3d=0.3,
    p_post_contrast_flair=0.3,
    snr_range=(10.0, 50.0),
    bias_amplitude_range=(0.10, 0.45),
    case_gain_range=(100.0, 5000.0),
    modality_gain_sigma=0.3,
    anatomy=AnatomyVariation(
        scale_range=(0.90, 1.08),
        rotation_deg=10.0,
        elastic_rms_mm=(1.0, 4.0),
        elastic_sigma_mm=(10.0, 20.0),
        atrophy_range=(0.0, 0.25),
        ventricle_range=(0.0, 0.30),
        asymmetry_range=(0.0, 0.04),
    ),
)

SITES: dict[str, SiteProfile] = {DEFAULT_NAME: DEFAULT, SHIFTED_NAME: SHIFTED, VARIED_NAME: VARIED}


def site_profile(name: str) -> SiteProfile:
    """The profile of site `name`; a `ConfigError` naming the valid sites otherwise."""
    try:
        return SITES[name]
    except KeyError:
        raise ConfigError(f"phantom site {name!r}: expected one of {', '.join(SITES)}") from None


def training_site(name: str) -> SiteProfile:
    """`site_profile` for a training cohort: the held-out shifted site is refused with a `ConfigError`."""
    profile = site_profile(name)
    if name not in TRAINING_SITES:
        raise ConfigError(
            f"phantom site {name!r} is held out for measuring generalisation: "
            f"a training cohort comes from {' or '.join(TRAINING_SITES)}"
        )
    return profile
