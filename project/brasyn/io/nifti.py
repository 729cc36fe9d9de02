"""NIfTI reading and atomic writing. Geometry travels with the data (TorchIO's lesson)."""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from brasyn.errors import ContractError, GeometryError, IntensityError, ReadError
from brasyn.io.atomic import atomic_path

AFFINE_TOLERANCE = 1e-3  # mm; BraTS affines are integer-valued, so this only absorbs float noise


@dataclass(frozen=True)
class Geometry:
    """Where a volume lies in space: shape, affine and the header to copy onto outputs."""

    shape: tuple[int, int, int]
    affine: np.ndarray
    header: nib.Nifti1Header

    def matches(self, other: Geometry, tolerance: float = AFFINE_TOLERANCE) -> bool:
        return self.shape == other.shape and bool(np.allclose(self.affine, other.affine, atol=tolerance))


def load_volume(path: Path, *, case_id: str = "", check_finite: bool = True) -> tuple[np.ndarray, Geometry]:
    """Load a 3-D NIfTI as float32 plus its geometry.

    Raises `ReadError` (unreadable or corrupt file), `GeometryError` (not 3-D) or `IntensityError`
    (NaN or infinite voxels); each message names the case and the file.
    """
    path = Path(path)
    where = f"{case_id}: {path.name}" if case_id else str(path)
    try:
        image = nib.load(str(path))
        data = np.asarray(image.dataobj, dtype=np.float32)
    except (OSError, EOFError, ValueError, zlib.error, gzip.BadGzipFile, nib.filebasedimages.ImageFileError) as exc:
        raise ReadError(f"{where}: cannot read NIfTI ({type(exc).__name__}: {exc})") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise GeometryError(f"{where}: expected a 3-D volume, found shape {data.shape}")
    if check_finite and not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).sum())
        raise IntensityError(f"{where}: expected finite values, found {bad} NaN/infinite voxels")
    header = image.header.copy()
    geometry = Geometry(
        shape=tuple(int(s) for s in data.shape), affine=np.asarray(image.affine, dtype=np.float64), header=header
    )
    return data, geometry


def write_volume(
    data: np.ndarray,
    path: Path,
    geometry: Geometry,
    *,
    dtype: np.dtype | type = np.int16,
) -> Path:
    """Write `data` with `geometry` to `path` atomically (temporary file in the same folder, then rename).

    Integer dtypes are rounded and clipped to their range. Nothing is left at `path` or beside it
    if writing fails.
    """
    path = Path(path)
    data = np.asarray(data)
    if tuple(data.shape) != geometry.shape:
        raise ContractError(f"{path.name}: expected shape {geometry.shape}, found {tuple(data.shape)}")
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        data = np.clip(np.rint(data), info.min, info.max)
    data = data.astype(dtype)

    header = geometry.header.copy()
    header.set_data_dtype(dtype)
    image = nib.Nifti1Image(data, geometry.affine, header)
    image.header.set_slope_inter(1.0, 0.0)
    image.set_sform(geometry.affine, code=int(geometry.header["sform_code"]) or 1)
    image.set_qform(geometry.affine, code=int(geometry.header["qform_code"]) or 1)

    with atomic_path(path) as tmp:
        nib.save(image, tmp)
    return path


def new_geometry(shape: tuple[int, int, int], affine: np.ndarray) -> Geometry:
    """A fresh geometry (sform = qform code 1), e.g. for synthetic volumes."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_zooms(tuple(float(z) for z in np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))))
    header["sform_code"] = 1
    header["qform_code"] = 1
    return Geometry(shape=tuple(int(s) for s in shape), affine=np.asarray(affine, dtype=np.float64), header=header)
