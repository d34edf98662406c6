"""Widgets: each renders the Frame (and history) it is given; no I/O, no threads."""
