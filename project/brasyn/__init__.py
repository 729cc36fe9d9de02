"""brasyn: synthesize the missing brain MRI sequence (BraSyn challenge), PLAVE model."""

__version__ = "0.1.0"
