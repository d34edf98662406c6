"""The few values both the flag parser and the settings need. Kept apart from config.py so that
``vramtop --help`` and ``--version`` build their parser without importing the settings."""

FORMATS = ("text", "markdown", "json")
# --serve-metrics: outside 9100-9999 (the exporters' range, all allocated) and far from 9090,
# 9093, 9100 (node), 9400 (DCGM) and 9835 (nvidia_gpu_exporter).
DEFAULT_SERVE_PORT = 19400
