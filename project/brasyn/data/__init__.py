"""Data: case discovery, normalisation, slice datasets, synthetic phantoms."""
