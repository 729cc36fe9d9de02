"""Reading and writing NIfTI volumes with their geometry."""

from brasyn.io.nifti import Geometry, load_volume, new_geometry, write_volume

__all__ = ["Geometry", "load_volume", "new_geometry", "write_volume"]
