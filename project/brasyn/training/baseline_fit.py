"""Fitting the polynomial baseline (`brasyn.models.baseline`) on a BraTS training folder.

Reads and normalizes the complete cases once, samples brain voxels (a share inside the tumour),
solves one least-squares problem per target and returns checkpoint payloads. It lives on the
training side because it reads cases and writes checkpoints, which the model itself never does.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from tqdm import tqdm

from brasyn.checkpoint import Checkpoint
from brasyn.config import from_dict, to_dict
from brasyn.constants import MODALITIES, Modality, sources_for
from brasyn.data.cases import CaseStatus, discover_cases, load_case
from brasyn.data.normalization import BACKGROUND, IntensityModel, Normalization
from brasyn.data.slices import CachedCase
from brasyn.errors import ConfigError, InputError, IntensityError
from brasyn.models.baseline import MAX_DEGREE, BaselineConfig, PolynomialBaseline, monomial_exponents
from brasyn.models.polynomial import BACKGROUND_TOLERANCE

logger = logging.getLogger(__name__)


def design_matrix(sources: np.ndarray, exponents: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """(N, 3) source values → (N, T) monomials (float64)."""
    x = np.asarray(sources, dtype=np.float64)
    return np.stack([np.prod(x ** np.asarray(e, dtype=np.float64), axis=1) for e in exponents], axis=1)


def fit_coefficients(sources: np.ndarray, target: np.ndarray, degree: int, *, ridge: float = 1e-6) -> np.ndarray:
    """Least-squares coefficients (T,) of the degree-`degree` polynomial mapping sources (N, 3) to
    target (N,); `ridge` (relative to N) keeps the normal equations well posed on degenerate data."""
    return solve_least_squares(
        design_matrix(sources, monomial_exponents(degree, sources.shape[1])), target, ridge=ridge
    )


def solve_least_squares(phi: np.ndarray, target: np.ndarray, *, ridge: float = 1e-6) -> np.ndarray:
    """argmin_c |phi c - target|² + ridge·N·|c|² for a design matrix phi (N, T)."""
    gram = phi.T @ phi + ridge * len(phi) * np.eye(phi.shape[1])
    return np.linalg.solve(gram, phi.T @ np.asarray(target, dtype=np.float64))



@dataclass(frozen=True)
class BaselineFitConfig:
    """How `fit_baselines` samples voxels and solves (its `training_config` in checkpoints)."""

    degree: int = 2  # polynomial degree (1..3)
    voxels_per_case: int = 20000  # brain voxels sampled from each case
    tumour_fraction: float = 0.3  # share of a case's samples drawn inside the tumour (seg > 0), when present
    max_cases: int = 0  # use at most this many complete cases (seeded choice); 0 = all
    seed: int = 0
    normalization: Normalization = field(default_factory=Normalization)  # YAML keys percentile, headroom
    ridge: float = 1e-6  # relative ridge on the normal equations
    image_size: int = 256

    FLAT_FIELDS: ClassVar[tuple[str, ...]] = ("normalization",)

    def __post_init__(self) -> None:
        if not 1 <= self.degree <= MAX_DEGREE:
            raise ConfigError(f"degree: expected 1..{MAX_DEGREE}, found {self.degree}")
        if self.voxels_per_case < 1:
            raise ConfigError(f"voxels_per_case: expected a positive integer, found {self.voxels_per_case}")
        if not 0.0 <= self.tumour_fraction <= 1.0:
            raise ConfigError(f"tumour_fraction: expected a value in [0, 1], found {self.tumour_fraction}")


def _sample_voxels(
    brain: np.ndarray, tumour: np.ndarray | None, config: BaselineFitConfig, rng: np.random.Generator
) -> np.ndarray:
    """Flat indices of min(`voxels_per_case`, brain size) voxels: a `tumour_fraction` share drawn from
    `tumour` (flat indices inside the brain; None: no labels), the rest from `brain`."""
    wanted = min(config.voxels_per_case, brain.size)
    chosen = np.empty(0, dtype=np.int64)
    if tumour is not None and config.tumour_fraction > 0:
        n_tumour = min(int(round(config.tumour_fraction * wanted)), tumour.size)
        chosen = rng.choice(tumour, size=n_tumour, replace=False) if n_tumour else chosen
    rest = rng.choice(brain, size=wanted - chosen.size, replace=False)
    return np.concatenate([chosen, rest])


def _sample_case(
    volumes: dict[Modality, np.ndarray],
    seg: np.ndarray | None,
    config: BaselineFitConfig,
    rng: np.random.Generator,
    name: str,
) -> tuple[np.ndarray, dict[Modality, float]]:
    """Normalize one complete case and sample brain voxels → (n, 4) values in MODALITIES order, scales."""
    mask, scales, normalized = config.normalization.normalize_case({m: volumes[m] for m in MODALITIES}, name=name)
    tumour = np.flatnonzero(mask & (seg > 0)) if seg is not None else None
    index = _sample_voxels(np.flatnonzero(mask), tumour, config, rng)
    values = np.stack([normalized[m].ravel()[index] for m in MODALITIES], axis=1)  # (n, 4)
    return values.astype(np.float32), scales


def fit_baselines(
    data_path: Path,
    targets: tuple[Modality, ...] | list[Modality],
    config: BaselineFitConfig | None = None,
    *,
    progress: bool | None = None,
) -> dict[Modality, Checkpoint]:
    """Fit one polynomial per target on the complete cases under `data_path`, reading each case once.

    Returns {target: its `Checkpoint` (kind "polynomial")}. Cases that are
    not complete (4 modalities) are skipped; a case whose volumes cannot be normalized is skipped
    with a warning. Raises `InputError` when no usable case is left.
    """
    config = config or BaselineFitConfig()
    targets = tuple(Modality(t) for t in targets)
    cases = [c for c in discover_cases(Path(data_path)) if c.status is CaseStatus.COMPLETE]
    if not cases:
        raise InputError(f"{data_path}: expected training cases with all 4 modalities, found none")
    rng = np.random.default_rng(config.seed)
    if config.max_cases and len(cases) > config.max_cases:
        keep = np.sort(rng.choice(len(cases), size=config.max_cases, replace=False))
        cases = [cases[i] for i in keep]
    samples: list[np.ndarray] = []
    scales: list[dict[Modality, float]] = []
    used: list[str] = []
    for case in tqdm(
        cases, desc="baseline: sample voxels", unit="case", disable=not progress if progress is not None else None
    ):
        volumes = load_case(case, modalities=MODALITIES, with_labels=case.seg is not None)
        try:
            values, case_scales = _sample_case(volumes.images, volumes.seg, config, rng, case.case_id)
        except IntensityError as exc:
            logger.warning("skipping %s", exc)
            continue
        samples.append(values)
        scales.append(case_scales)
        used.append(case.case_id)
    if not samples:
        raise InputError(f"{data_path}: no case could be normalized (every modality needs brain voxels above 0)")
    data = np.concatenate(samples)  # (N, 4)
    column = {m: i for i, m in enumerate(MODALITIES)}
    model_config = to_dict(BaselineConfig(degree=config.degree, image_size=config.image_size))
    checkpoints = {}
    for target in targets:
        sources = sources_for(target)
        x = data[:, [column[m] for m in sources]]
        y = data[:, column[target]].astype(np.float64)
        phi = design_matrix(x, monomial_exponents(config.degree))  # (N, T), built once
        coefficients = solve_least_squares(phi, y, ridge=config.ridge)
        fitted = np.clip(phi @ coefficients, -1.0, 1.0)
        rmse = float(np.sqrt(np.mean((fitted - y) ** 2)))
        r2 = float(1.0 - np.sum((fitted - y) ** 2) / max(np.sum((y - y.mean()) ** 2), 1e-12))
        model = PolynomialBaseline.from_config(model_config)
        model.coefficients.copy_(torch.from_numpy(coefficients.astype(np.float32)))
        intensity = IntensityModel.fit(target, sources, scales)
        logger.info("baseline %s: %d cases, %d voxels, RMSE %.4f, R² %.3f", target, len(used), len(data), rmse, r2)
        checkpoints[target] = Checkpoint.of_model(
            kind="polynomial",
            target=target,
            model=model,
            model_config=model_config,
            intensity_model=intensity,
            normalization=config.normalization,
            training_config=to_dict(config),
            data_summary={"data_path": str(data_path), "cases": len(used), "voxels": int(len(data)), "case_ids": used},
            metrics={"train_rmse": rmse, "train_r2": r2, "intensity_residual_std": intensity.residual_std},
        )
    return checkpoints


def fit_prior(
    cases: Sequence[CachedCase],
    target: Modality,
    degree: int,
    config: BaselineFitConfig | None = None,
) -> torch.Tensor:
    """The coefficients (T,) of the generator's polynomial prior (`ModelConfig.prior_degree`) for
    `target`: the baseline's least squares, on voxels sampled from the slice cache of the training
    cases (those the network trains on, normalized alike; `config` gives the sampling and the ridge,
    its own degree is not used). Rounded to float16 precision, as a compact checkpoint stores them, so
    the network trains against exactly the prior that inference will add it to."""
    config = config or BaselineFitConfig()
    rng = np.random.default_rng(config.seed)
    column = {m: i for i, m in enumerate(MODALITIES)}
    samples = []
    for case in cases:
        images = np.asarray(case.images(), dtype=np.float32)  # (n, 4, h, w)
        values = images.transpose(1, 0, 2, 3).reshape(len(MODALITIES), -1)  # (4, n·h·w)
        inside = (values > BACKGROUND + BACKGROUND_TOLERANCE).any(axis=0)
        tumour = np.flatnonzero(inside & (np.asarray(case.seg()).ravel() > 0))
        samples.append(values[:, _sample_voxels(np.flatnonzero(inside), tumour, config, rng)].T)  # (n, 4)
    if not samples or not sum(len(s) for s in samples):
        raise InputError(f"polynomial prior for {target}: no brain voxels in the training cases' slices")
    data = np.concatenate(samples)
    x = data[:, [column[m] for m in sources_for(target)]]
    coefficients = fit_coefficients(x, data[:, column[target]], degree, ridge=config.ridge)
    return torch.from_numpy(coefficients.astype(np.float16).astype(np.float32))


def fit_baseline(
    data_path: Path, target: Modality, config: BaselineFitConfig | dict[str, Any] | None = None
) -> Checkpoint:
    """The checkpoint of the polynomial baseline for one `target` (see `fit_baselines`).

    `config` may be a plain dict of `BaselineFitConfig` fields (strict: unknown keys fail).
    """
    if isinstance(config, dict):
        config = from_dict(BaselineFitConfig, config)
    return fit_baselines(data_path, (Modality(target),), config)[Modality(target)]
