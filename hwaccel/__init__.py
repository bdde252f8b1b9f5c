"""hwaccel: deep-learning accelerator generators in Amaranth, verified against PyTorch."""

__version__ = "0.1.0"
