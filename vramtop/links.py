"""Links out: ``[links]`` URL templates (a dashboard, a logs search) filled for one model, GPU
or alert, and an alert's own ``runbook_url``. Only http and https are ever made links.

A template applies where every placeholder it names has a value: a ``{gpu_uuid}`` dashboard
on a GPU, a ``{model}`` one on a model or an alert about a model. Values are percent-encoded
whole (``/``, ``&``, ``#``, quotes and spaces included), so a hostile label cannot change
where a link goes.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from vramtop.model import AlertReading, Frame, GpuReading, ModelReading
from vramtop.records import record

PLACEHOLDERS = ("model", "instance", "gpu_uuid", "alertname")
MODEL_LABELS = ("model", "model_name", "served_model_name", "model_id")
RUNBOOK = "runbook"


class LinkError(ValueError):
    """One sentence naming the link and what is wrong with it."""


@record
class Link:
    """A named URL template, filled for a model, GPU or alert."""

    name: str
    url: str


def parse_links(value: Any) -> tuple[tuple[str, str], ...]:
    """``[links]``: a table of name -> URL template; LinkError names the bad entry."""
    if not isinstance(value, dict):
        raise LinkError("must be a table of names to URL templates ([links])")
    out = []
    for name, template in value.items():
        where = f"link {name!r}"
        if not isinstance(template, str):
            raise LinkError(f"{where} must be a URL template (text), got {type(template).__name__}")
        try:
            parts = list(string.Formatter().parse(template))
        except ValueError as err:
            raise LinkError(
                f"{where} is not a valid template ({err}; write a literal brace as {{{{ or }}}})"
            ) from None
        for _, field, spec, conversion in parts:
            if field is not None and (field not in PLACEHOLDERS or spec or conversion):
                raise LinkError(
                    f"{where} has an unknown placeholder {{{field}}} "
                    f"(known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
                )
        # The scheme is the template's own: a placeholder cannot make it file: or javascript:.
        head = parts[0][0] if parts else ""
        bad = any(c.isspace() or not c.isprintable() for c in template)
        if bad or not head.lower().startswith(("http://", "https://")):
            raise LinkError(
                f"{where} must be an http:// or https:// URL without spaces, got {_cut(template)!r}"
            )
        out.append((str(name), template))
    return tuple(out)


def _cut(text: str) -> str:
    return text if len(text) <= 120 else text[:119] + "…"


def is_web(url: Any) -> bool:
    """An http or https URL with a host and no space, control or format character (a C1 or
    bidi control in a hyperlink could reach the terminal)."""
    if not isinstance(url, str) or any(c.isspace() or not c.isprintable() for c in url):
        return False
    from urllib.parse import urlsplit  # where a link is drawn: urllib costs a start ~3 ms

    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def expand(templates: tuple[tuple[str, str], ...], values: Mapping[str, str]) -> list[Link]:
    """Each template whose placeholders all have a (non-empty) value, filled."""
    from urllib.parse import quote

    out = []
    for name, template in templates:
        url = []
        for literal, field, _, _ in string.Formatter().parse(template):
            url.append(literal)
            if field is None:
                continue
            value = values.get(field)
            if not value:
                break
            # surrogateescape: a name read from a command line keeps its undecodable bytes.
            url.append(quote(value, safe="", errors="surrogateescape"))
        else:
            if is_web(filled := "".join(url)):
                out.append(Link(name, filled))
    return out


def for_model(
    templates: tuple[tuple[str, str], ...], m: ModelReading, here: str | None = None
) -> list[Link]:
    """A model's links; a template naming {instance} once per host serving it."""
    instances = m.instances or ((here,) if here else ())
    links = expand(templates, {"model": m.name})
    for inst in instances:
        for link in expand(templates, {"model": m.name, "instance": inst}):
            if link not in links:
                name = link.name if len(instances) == 1 else f"{link.name} ({inst})"
                links.append(Link(name, link.url))
    return links


def for_gpu(
    templates: tuple[tuple[str, str], ...], g: GpuReading, here: str | None = None
) -> list[Link]:
    values = {"gpu_uuid": g.uuid or "", "instance": g.host or here or ""}
    return expand(templates, values)


def for_alert(templates: tuple[tuple[str, str], ...], a: AlertReading) -> list[Link]:
    """The runbook first (an annotation from the alert's rule), then the templates filled
    from its name and labels."""
    labels = a.labels
    values = {
        "alertname": a.name,
        "model": next((labels[k] for k in MODEL_LABELS if labels.get(k)), ""),
        "instance": labels.get("instance", ""),
        "gpu_uuid": labels.get("uuid") or labels.get("UUID") or "",
    }
    out = [Link(RUNBOOK, a.runbook_url)] if is_web(a.runbook_url) else []
    return out + expand(templates, values)


def frame_links(
    templates: tuple[tuple[str, str], ...], frame: Frame
) -> list[tuple[str, list[Link]]]:
    """Per model and per alert, what it links to: the Markdown export's Links section."""
    here = frame.host.hostname
    out: list[tuple[str, list[Link]]] = []
    for m in frame.models:
        if links := for_model(templates, m, here):
            out.append((f"model {m.name}", links))
    for g in frame.gpus:
        if links := for_gpu(templates, g, here):
            out.append((f"GPU {g.index}" + (f" on {g.host}" if g.host else ""), links))
    for a in frame.alerts:
        if links := for_alert(templates, a):
            subject = next((a.labels[k] for k in MODEL_LABELS if a.labels.get(k)), "")
            out.append((f"alert {a.name}" + (f" ({subject})" if subject else ""), links))
    return out
