"""What the silence key is about, from where the user is: the selected alert (any Alerts
panel), else the model or GPU of a drill-down; and which silences belong to the current view."""

from __future__ import annotations

from collections.abc import Callable

from textual.screen import Screen
from textual.widget import Widget

from vramtop.model import AlertReading, SilenceMatcher, SilenceReading
from vramtop.silencing import (
    GPU_LABELS,
    MODEL_LABELS,
    about,
    alert_labels,
    author,
    for_alert,
    for_gpu,
    for_model,
    matches,
)
from vramtop.tui.screens.gpu import GpuScreen
from vramtop.tui.screens.model import ModelScreen
from vramtop.tui.widgets.alert_table import AlertTable
from vramtop.tui.widgets.gpu_table import find_gpu

__all__ = ["author", "silence_scope", "silence_target"]

Target = tuple[tuple[SilenceMatcher, ...], str]


def silence_target(screen: Screen, focused: Widget | None) -> Target | str:
    """(prefilled matchers, what they are about), or the sentence saying what to choose."""
    if isinstance(focused, AlertTable) and focused.selected_key is not None:
        alert = focused.by_key.get(focused.selected_key)
        if alert is not None:
            return for_alert(alert), f"alert {alert.name}"
    if isinstance(screen, ModelScreen):
        return for_model(screen.model_name), f"model {screen.model_name}"
    if isinstance(screen, GpuScreen):
        gpu = find_gpu(screen.view.frame.gpus, screen.index) if screen.view else None
        if gpu is None or not gpu.uuid:
            return f"GPU {screen.index} has no UUID to silence its alerts by"
        return for_gpu(gpu.uuid), f"GPU {screen.index} ({gpu.uuid})"
    return "Select an alert first: Tab to the Alerts panel, then press m"


def _alerts(screen: Screen) -> tuple[AlertReading, ...]:
    view = getattr(screen, "view", None)
    return view.frame.alerts if view is not None else ()


def silence_scope(screen: Screen) -> tuple[Callable[[SilenceReading], bool], str]:
    """A test for the silences of this view, and how to name the view."""
    alerts = _alerts(screen)

    def mutes(s: SilenceReading, among: tuple[AlertReading, ...] = alerts) -> bool:
        return any(matches(s, alert_labels(a)) for a in among)

    if isinstance(screen, ModelScreen):
        name = screen.model_name
        own = tuple(a for a in alerts if any(a.labels.get(k) == name for k in MODEL_LABELS))
        return (lambda s: about(s, MODEL_LABELS, name) or mutes(s, own)), f"model {name}"
    if isinstance(screen, GpuScreen):
        gpu = find_gpu(screen.view.frame.gpus, screen.index) if screen.view else None
        uuid = gpu.uuid if gpu is not None and gpu.uuid else None
        if uuid is None:
            return (lambda s: False), f"GPU {screen.index}"
        own = tuple(a for a in alerts if any(a.labels.get(k) == uuid for k in GPU_LABELS))
        return (lambda s: about(s, GPU_LABELS, uuid) or mutes(s, own)), f"GPU {screen.index}"
    return mutes, "the alerts on screen"
