"""The live view (Textual): the only package that imports textual.

Entry point: :func:`vramtop.tui.app.build_app`.
"""
