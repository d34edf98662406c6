"""vramtop: a live terminal monitor for GPU inference hosts."""

__version__ = "0.1.0"
