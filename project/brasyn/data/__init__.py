"""Data: case discovery, normalisation, slice datasets."""
