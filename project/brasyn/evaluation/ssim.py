"""The two SSIM conventions under which BraSyn synthesis was scored (see brasyn-contract.md).

Both use the Gaussian SSIM of Wang et al. (window 11, σ = 1.5, k1 = 0.01, k2 = 0.03, population
covariances), computed with separable `scipy.ndimage.correlate1d` filters in float64.

1. `container_ssim` — the 2023 MedPerf evaluation cube (GaNDLF `generate_metrics`, problem type
   "synthesis", torchmetrics 0.8.1):
   - GaNDLF loads each volume with torchio, whose NIfTI readers (nibabel and SimpleITK alike) return
     float32 (1, X, Y, Z) tensors in nibabel voxel order (so 254·gt below cannot overflow an int16);
     torchmetrics reads a 4-D
     tensor as (N, C, H, W), so it computes **2-D SSIM on each of the X first-axis slices** `a[i, :, :]`.
   - Normalization. GaNDLF builds an all-ones *uint8* mask (no mask column in the BraSyn CSV) and
     takes its percentiles from `reference = target * ~mask`. Bitwise NOT of uint8 1 is **254**, so the
     reference is 254·gt. Both images are clipped to [v_min, v_max] and divided by v_max − v_min, with
     v_min = max(P0.5(254·gt), 0) (0 for any BraTS volume: more than 0.5 % is background) and
     v_max = 254 · P99.5(gt), percentiles over the whole volume, background included. In effect both
     images are divided by the one constant `CONTAINER_MASK_FACTOR · P99.5(gt)` and negatives are
     clipped to 0 (values above 254× the ground truth's 99.5th percentile would clip at 1; none do).
     Because torchmetrics takes `data_range` from the data, a common factor cancels out of SSIM: the
     score depends on the prediction's scale *relative to the ground truth*, not on the constant.
   - torchmetrics pads each slice by 5 pixels with `reflect` (whole-sample symmetric: d c b | a b c d,
     scipy's "mirror"), convolves "valid", and GaNDLF averages the returned *full* map (the
     uncropped one, `return_full_image=True`) over all voxels, background included. (torchmetrics
     0.8.1 already reduces that map to its mean; GaNDLF's mask indexing then fails and falls back to
     that scalar. Later versions return the map and GaNDLF averages it under the all-ones mask: the
     same number.)
   - Check against the contract's figures: with the constant cancelling, a background of 50 scores
     f_brain + f_background · c1/(μ² + c1), c1 = (0.01·max gt)², μ = 50; for a T2 of maximum ~2500
     and 84 % background that is ≈ 0.16 + 0.84 · 0.2 ≈ 0.33 (the contract reports 0.34); ×0.001 leaves SSIM ≈ 0 in the
     brain and 1 in the empty background far from it, ≈ 0.8 (contract: 0.82).
   - data_range = max(pred.max() − pred.min(), gt.max() − gt.min()) over the whole normalized volume.

2. `percentile_scores` — the organizers' stand-alone script (BraSyn tutorial, later torchmetrics):
   each image clipped to its own [max(P0.5, 0), P99.5] (whole volume) and scaled to [0, 1]; 3-D SSIM
   with an 11³ window on (1, 1, X, Y, Z) tensors, reflect padding, mean of the map cropped by 5 voxels.
   `SSIM_tumor` compares pred·mask with gt·mask (mask = seg > 0) and `SSIM_healthy` the complements.
   The whole-map mean of `SSIM_tumor` is ~0.99 for any prediction (both masked images are 0 almost
   everywhere), so the mean of the same SSIM map *inside* the region is reported as well.

Edge handling versus `skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False)`: skimage filters with scipy's "reflect" (half-sample symmetric:
d c b a | a b c d) and averages the map cropped by 5 pixels; torchmetrics pads with "mirror". The maps
are identical (to float rounding) wherever the window does not reach the border, i.e. on the map
cropped by 5 pixels; they differ only in the 5-pixel border band.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

SIGMA = 1.5
TRUNCATE = 3.5  # torchmetrics: kernel size int(3.5·σ + 0.5)·2 + 1 = 11
K1, K2 = 0.01, 0.03
LOW_PERCENTILE, HIGH_PERCENTILE = 0.5, 99.5
CONTAINER_MASK_FACTOR = 254.0  # ~uint8(1): GaNDLF's percentile reference is 254 · ground truth
CONTAINER_CHUNK = 16  # first-axis slices filtered at once (bounds memory on 240×240×155 volumes)


def gaussian_kernel_1d(sigma: float = SIGMA) -> np.ndarray:
    """The normalized 1-D Gaussian of torchmetrics (and skimage): 11 taps for σ = 1.5, float64."""
    radius = int(TRUNCATE * sigma + 0.5)
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    return kernel / kernel.sum()


def ssim_map(
    pred: np.ndarray,
    target: np.ndarray,
    *,
    axes: tuple[int, ...],
    data_range: float,
    mode: str = "mirror",
    dtype: type = np.float64,
) -> np.ndarray:
    """Local SSIM of `pred` vs `target` (same shape), Gaussian window along `axes` only.

    `mode` is the scipy boundary mode ("mirror" = torch `reflect` padding). Returns a map of the
    input's shape in `dtype` (scipy accumulates each filtered value in double either way; float32
    halves the memory of whole 240×240×155 maps and changes SSIM by ~1e-7 on [0, 1] images).
    Variances are clamped at 0 (float cancellation), as recent torchmetrics does.
    """
    pred = np.asarray(pred, dtype=dtype)
    target = np.asarray(target, dtype=dtype)
    kernel = gaussian_kernel_1d()

    def blur(x: np.ndarray) -> np.ndarray:
        for axis in axes:
            x = ndimage.correlate1d(x, kernel, axis=axis, mode=mode)
        return x

    mu_p, mu_t = blur(pred), blur(target)
    var_p = np.maximum(blur(pred * pred) - mu_p**2, 0.0)
    var_t = np.maximum(blur(target * target) - mu_t**2, 0.0)
    cov = blur(pred * target) - mu_p * mu_t
    c1 = (K1 * data_range) ** 2
    c2 = (K2 * data_range) ** 2
    numerator = (2.0 * mu_p * mu_t + c1) * (2.0 * cov + c2)
    denominator = (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return numerator / denominator


def data_range_of(pred: np.ndarray, target: np.ndarray) -> float:
    """torchmetrics' default: max(pred.max() − pred.min(), target.max() − target.min())."""
    return float(max(np.ptp(pred), np.ptp(target)))


# ---------------------------------------------------------------------------------------------
# 1. MedPerf 2023 container
# ---------------------------------------------------------------------------------------------


def container_normalize(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GaNDLF's (buggy) percentile clip of both images with the reference 254·gt (see module doc)."""
    reference = CONTAINER_MASK_FACTOR * np.asarray(gt, dtype=np.float64)
    v_min, v_max = np.percentile(reference, [LOW_PERCENTILE, HIGH_PERCENTILE])
    v_min = max(float(v_min), 0.0)
    span = float(v_max) - v_min
    if not span > 0:
        span = 1.0  # constant ground truth: keep the clipping, skip the scaling (GaNDLF would give NaN)

    def clip(x: np.ndarray) -> np.ndarray:
        return (np.clip(np.asarray(x, dtype=np.float64), v_min, float(v_max)) - v_min) / span

    return clip(pred), clip(gt)


def container_ssim_map(
    pred: np.ndarray, gt: np.ndarray, *, normalize: bool = True, data_range: float | None = None
) -> np.ndarray:
    """Full (uncropped) 2-D SSIM map of every first-axis slice `a[i, :, :]` of 3-D volumes (or of one
    2-D image). `normalize=False` skips the container normalization (for comparisons with skimage)."""
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape:
        raise ValueError(f"SSIM needs equal shapes, found {pred.shape} and {gt.shape}")
    if normalize:
        pred, gt = container_normalize(pred, gt)
    if data_range is None:
        data_range = data_range_of(pred, gt)
    if pred.ndim == 2:
        return ssim_map(pred, gt, axes=(0, 1), data_range=data_range)
    out = np.empty(pred.shape, dtype=np.float64)
    for start in range(0, pred.shape[0], CONTAINER_CHUNK):
        stop = start + CONTAINER_CHUNK
        out[start:stop] = ssim_map(pred[start:stop], gt[start:stop], axes=(1, 2), data_range=data_range)
    return out


def container_ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    """The 2023 MedPerf cube's SSIM of a prediction volume (scanner units) against the ground truth."""
    return float(np.mean(container_ssim_map(pred, gt)))


# ---------------------------------------------------------------------------------------------
# 2. The organizers' stand-alone script
# ---------------------------------------------------------------------------------------------


def percentile_normalize(volume: np.ndarray) -> np.ndarray:
    """Clip to the volume's own [max(P0.5, 0), P99.5] (whole volume) and scale to [0, 1] (float64)."""
    volume = np.asarray(volume, dtype=np.float64)
    v_min, v_max = np.percentile(volume, [LOW_PERCENTILE, HIGH_PERCENTILE])
    v_min = max(float(v_min), 0.0)
    span = float(v_max) - v_min
    clipped = np.clip(volume, v_min, float(v_max)) - v_min
    return clipped / span if span > 0 else clipped


def ssim3d_map(
    pred: np.ndarray, gt: np.ndarray, *, data_range: float | None = None, dtype: type = np.float64
) -> np.ndarray:
    """Full 3-D SSIM map (11³ Gaussian window, reflect padding) of two normalized volumes."""
    if data_range is None:
        data_range = data_range_of(pred, gt)
    return ssim_map(pred, gt, axes=tuple(range(np.ndim(pred))), data_range=data_range, dtype=dtype)


def cropped_mean(ssim_full: np.ndarray, crop: int | None = None) -> float:
    """Mean of the map without its `crop`-voxel border (torchmetrics' reduction; default: 5)."""
    crop = int(TRUNCATE * SIGMA + 0.5) if crop is None else crop
    inner = ssim_full[tuple(slice(crop, -crop) for _ in range(ssim_full.ndim))]
    return float(np.mean(inner, dtype=np.float64)) if inner.size else float("nan")


def region_mean(ssim_full: np.ndarray, region: np.ndarray) -> float:
    """Mean of the map inside `region` (NaN for an empty region)."""
    return float(np.mean(ssim_full[region], dtype=np.float64)) if region.any() else float("nan")


class PercentileScores(NamedTuple):
    """The organizers' script's scores on [0, 1]-normalized volumes (NaN where a region is empty)."""

    ssim_full: float  # whole volume, map cropped by 5
    ssim_tumour: float  # pred·mask vs gt·mask, map cropped by 5 (≈ 0.99 for anything)
    ssim_tumour_region: float  # same map, mean inside the tumour
    ssim_healthy: float  # complements, map cropped by 5
    ssim_healthy_region: float  # same map, mean inside the healthy brain
    psnr_brain: float  # dB, data range 1, inside the brain
    mse_brain: float
    psnr_tumour: float
    mse_tumour: float
    psnr_healthy: float
    mse_healthy: float


def _mse_psnr(pred: np.ndarray, gt: np.ndarray, region: np.ndarray) -> tuple[float, float]:
    if not region.any():
        return float("nan"), float("nan")
    mse = float(np.mean((pred[region].astype(np.float64) - gt[region]) ** 2))
    psnr = float("inf") if mse == 0 else float(10.0 * np.log10(1.0 / mse))
    return mse, psnr


def percentile_scores(pred: np.ndarray, gt: np.ndarray, tumour: np.ndarray, brain: np.ndarray) -> PercentileScores:
    """All scores of the stand-alone script for one case.

    pred, gt: volumes in scanner units (X, Y, Z); tumour = seg > 0; brain = voxels non-zero in any
    ground-truth image. The healthy region for the in-region mean and PSNR is brain & ~tumour.
    """
    p = percentile_normalize(pred).astype(np.float32)
    g = percentile_normalize(gt).astype(np.float32)
    tumour = np.asarray(tumour, dtype=bool)
    healthy = ~tumour
    healthy_brain = np.asarray(brain, dtype=bool) & healthy

    full = ssim3d_map(p, g, dtype=np.float32)
    ssim_full = cropped_mean(full)
    del full
    tumour_map = ssim3d_map(p * tumour, g * tumour, dtype=np.float32)
    ssim_tumour, ssim_tumour_region = cropped_mean(tumour_map), region_mean(tumour_map, tumour)
    del tumour_map
    healthy_map = ssim3d_map(p * healthy, g * healthy, dtype=np.float32)
    ssim_healthy, ssim_healthy_region = cropped_mean(healthy_map), region_mean(healthy_map, healthy_brain)
    del healthy_map

    mse_brain, psnr_brain = _mse_psnr(p, g, np.asarray(brain, dtype=bool))
    mse_tumour, psnr_tumour = _mse_psnr(p, g, tumour)
    mse_healthy, psnr_healthy = _mse_psnr(p, g, healthy_brain)
    return PercentileScores(
        ssim_full=ssim_full,
        ssim_tumour=ssim_tumour,
        ssim_tumour_region=ssim_tumour_region,
        ssim_healthy=ssim_healthy,
        ssim_healthy_region=ssim_healthy_region,
        psnr_brain=psnr_brain,
        mse_brain=mse_brain,
        psnr_tumour=psnr_tumour,
        mse_tumour=mse_tumour,
        psnr_healthy=psnr_healthy,
        mse_healthy=mse_healthy,
    )
