"""Links out on screen: what the selection links to, drawn as terminal hyperlinks, and the key
that copies one to the clipboard (OSC 52, so it reaches the laptop over SSH)."""

from __future__ import annotations

from typing import Any

from rich.style import Style
from rich.text import Text

from vramtop import clean
from vramtop.links import Link, for_alert, for_gpu, for_model
from vramtop.tui.palette import Palette
from vramtop.tui.view import View


def links_text(links: list[Link], palette: Palette, label: str = "Links ") -> Text:
    """``Links grafana · logs`` with each name a hyperlink (Rich ``Style(link=...)``)."""
    out = Text()
    if not links:
        return out
    out.append(label, palette.dim)
    for i, link in enumerate(links):
        if i:
            out.append(" · ", palette.dim)
        out.append(clean.literal(link.name), palette.accent + Style(link=link.url, underline=True))
    return out


def selected_links(screen: Any, focused: Any) -> tuple[str, list[Link]]:
    """(what they belong to, its links): the highlighted alert where an alert list has the
    focus, else the drill-down's model or GPU, else the highlighted model or GPU row."""
    from vramtop.tui.screens.gpu import GpuScreen
    from vramtop.tui.screens.model import ModelScreen
    from vramtop.tui.widgets.alert_table import AlertTable
    from vramtop.tui.widgets.gpu_table import GpuTable, find_gpu
    from vramtop.tui.widgets.model_table import ModelTable

    view: View | None = getattr(screen, "view", None)
    if view is None:
        return "", []
    frame, here = view.frame, view.frame.host.hostname
    if isinstance(focused, AlertTable) and (key := focused.selected_key) is not None:
        alert = focused.by_key.get(key)
        if alert is not None:
            return f"alert {alert.name}", for_alert(view.links, alert)
    if isinstance(screen, ModelScreen):
        model = next((m for m in frame.models if m.name == screen.model_name), None)
        return f"model {screen.model_name}", for_model(view.links, model, here) if model else []
    if isinstance(screen, GpuScreen):
        gpu = find_gpu(frame.gpus, screen.index)
        return f"GPU {screen.index}", for_gpu(view.links, gpu, here) if gpu else []
    if isinstance(focused, ModelTable) and (key := focused.selected_key) is not None:
        model = next((m for m in frame.models if m.name == key), None)
        return f"model {key}", for_model(view.links, model, here) if model else []
    if isinstance(focused, GpuTable) and (key := focused.selected_key) is not None:
        gpu = focused.gpu_of(key)
        return f"GPU {key}", for_gpu(view.links, gpu, here) if gpu else []
    return "", []


def copy_selected_link(app: Any) -> None:
    subject, links = selected_links(app.screen, app.focused)
    if not links:
        where = f" for {subject}" if subject else ""
        app.notify(
            f"No link{where}: add URL templates under [links] in the config "
            "(alerts also link their runbook_url)",
            severity="warning",
            timeout=5,
            markup=False,
        )
        return
    last = getattr(app, "_vt_last_link", None)
    turn = 0
    if last is not None and last[0] == subject:
        turn = (last[1] + 1) % len(links)
    app._vt_last_link = (subject, turn)
    link = links[turn]
    app.copy_to_clipboard(link.url)
    app.notify(f"Copied {link.name} of {subject}: {link.url}", timeout=4, markup=False)
