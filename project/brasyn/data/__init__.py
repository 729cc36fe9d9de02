"""Data: case discovery, normalization, slice datasets."""
