"""The remote checks, one-shot and synchronous: Prometheus through prometheus-api-client
(reachable, version, targets down, which profile metrics exist, model-label cardinality),
Alertmanager, and a server's /metrics read directly. Every failure is one sentence; URLs are
shown without credentials, and secrets never leave the session's headers."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import requests

from vramtop.doctor import FAIL, PASS, WARN, Report
from vramtop.doctor.profiles import (
    MODEL_LABEL,
    check_profiles,
    known_namespaces,
    namespace,
    starter_from,
    starter_profile,
)
from vramtop.profiles import Profile
from vramtop.sources.http import Endpoint
from vramtop.sources.promql_syntax import counter_names, instance_selector, names_regex, quote


def _session(ep: Endpoint) -> requests.Session:
    s = requests.Session()
    s.headers.update(dict(ep.headers))
    if ep.bearer_token:
        s.headers["Authorization"] = f"Bearer {ep.bearer_token}"
    if ep.basic_auth:
        s.auth = ep.basic_auth
    s.verify = ep.ca_file or ep.verify_tls
    if not s.verify:  # --insecure was asked for: no warning per request on stderr
        import urllib3

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    return s


def _why(err: Exception, ep: Endpoint) -> str:
    """One sentence for a failed request, naming neither a secret nor the library's trace."""
    if isinstance(err, ValueError | AttributeError):  # JSON, but not the API's (or not JSON)
        return "answered, but not with the API's JSON (the wrong URL, or a proxy page)"
    if isinstance(err, requests.exceptions.SSLError):
        return "TLS verification failed (give --ca-file, or --insecure)"
    if isinstance(err, requests.exceptions.Timeout):
        return f"no answer within {ep.timeout:g} s (--timeout)"
    if isinstance(err, requests.exceptions.ChunkedEncodingError):
        return "the connection broke off in the middle of the answer"
    if isinstance(err, requests.exceptions.ContentDecodingError):
        return "sent a body that does not decompress"
    if isinstance(err, requests.exceptions.ConnectionError):
        return "cannot connect (nothing listening, or the host is unreachable)"
    status = getattr(getattr(err, "response", None), "status_code", None)
    if status in (401, 403):
        return f"refused access (HTTP {status}): check the token or password"
    if isinstance(err, _TooBig):
        return f"answered more than {ep.max_bytes} bytes (max_response_bytes in the config)"
    if status is not None:
        return f"answered HTTP {status}"
    return f"failed ({type(err).__name__})"


class _TooBig(requests.RequestException):
    pass


def _read1(resp: requests.Response) -> bytes:
    # Below requests, urllib3's own errors: as requests' own, for _why.
    from urllib3.exceptions import DecodeError, HTTPError, ReadTimeoutError

    try:
        return resp.raw.read1(65536, decode_content=True)
    except ReadTimeoutError:
        raise requests.exceptions.ReadTimeout() from None
    except DecodeError:
        raise requests.exceptions.ContentDecodingError() from None
    except HTTPError:
        raise requests.exceptions.ChunkedEncodingError() from None


def _get(session: requests.Session, ep: Endpoint, path: str) -> tuple[str, str]:
    """(body, content type) of a GET, whole within ep.timeout (requests bounds each read only,
    so a server dripping a byte a second would never time out) and at most ep.max_bytes."""
    deadline = time.monotonic() + ep.timeout
    with session.get(ep.url.rstrip("/") + path, timeout=ep.timeout, stream=True) as resp:
        resp.raise_for_status()
        body = bytearray()
        # read1: what has arrived, so the deadline is checked between the server's writes.
        while chunk := _read1(resp):
            body += chunk
            if time.monotonic() > deadline:
                raise requests.exceptions.ReadTimeout()
            if len(body) > ep.max_bytes:
                raise _TooBig()
        return body.decode(resp.encoding or "utf-8", "replace"), resp.headers.get(
            "content-type", ""
        )


def check_prometheus(
    report: Report,
    ep: Endpoint,
    profiles: Sequence[Profile],
    forced: bool,
    instance: str | None,
    match: tuple[tuple[str, str, str], ...] = (),
    alertmanager_given: bool = True,
) -> None:
    """``alertmanager_given``: --alertmanager was named and is checked on its own; otherwise
    the Alertmanagers Prometheus sends its alerts to are named."""
    from prometheus_api_client import PrometheusConnect
    from urllib3.util.retry import Retry

    session = _session(ep)
    # No retries: a down or slow server is one FAIL within --timeout, not three.
    prom = PrometheusConnect(
        ep.url.rstrip("/"), session=session, retry=Retry(0, read=False), timeout=ep.timeout
    )
    where = f"Prometheus at {ep.safe_url}"
    sel = instance_selector(instance, match)  # --match scopes the metrics checked, as in queries
    try:
        info = json.loads(_get(session, ep, "/api/v1/status/buildinfo")[0]).get("data", {})
    except (requests.RequestException, ValueError, AttributeError) as err:
        report.add(FAIL, "prometheus", f"{where}: {_why(err, ep)}.")
        return
    report.add(PASS, "prometheus", f"{where} answers, version {info.get('version', 'unknown')}.")
    if not alertmanager_given:
        _alertmanagers(report, session, ep, where)
    try:
        _targets(report, prom.get_targets(), instance)
        # Only the names the chosen instances export (--instance, anchored as in PromQL).
        match = {"match[]": f"{{{sel}}}"}
        names = set(prom.get_label_values("__name__", params=match))
    except Exception as err:  # the library raises its own exception for a refused query
        report.add(FAIL, "prometheus", f"{where}: a query {_why(err, ep)}.")
        return

    def cardinality(p: Profile, metric: str) -> int | None:
        names = names_regex((*counter_names(metric), metric + "_bucket", metric + "_count"))
        query = f"count(count by ({p.model_label}) ({{__name__=~{quote(names)},{sel}}}))"
        try:
            result = prom.custom_query(query)
        except Exception:
            return None
        return int(float(result[0]["value"][1])) if result else 0

    check_profiles(report, profiles, forced, names, where, cardinality)
    try:
        starter = _starter(prom, sel, profiles, where)
    except Exception as err:  # a refused query: the checks above stand
        report.add(WARN, "family", f"{where}: looking for unknown server families {_why(err, ep)}.")
        return
    if starter is not None:
        families, report.starter_profile = starter
        report.add(
            WARN,
            "family",
            f"no profile knows {', '.join(families)} on {where}: a starter profile built from "
            "its metrics follows.",
        )


# Series Prometheus makes itself, which may carry a model label from an alert's labels.
_PROMETHEUS_OWN = {"ALERTS", "ALERTS_FOR_STATE", "up", "scrape"}


def _starter(
    prom: Any, sel: str, profiles: Sequence[Profile], where: str
) -> tuple[list[str], str] | None:
    """(the unknown families, a starter profile) from the metrics in Prometheus that carry a
    model-like label and belong to no profile's family (vLLM's metrics outside its profile
    are still vLLM's); None when there are none."""
    from vramtop.profiles import load_all

    known = known_namespaces([*load_all().values(), *profiles]) | _PROMETHEUS_OWN
    labels = list(prom.get_label_names(params={"match[]": f"{{{sel}}}"}))
    labelled: dict[str, set[str]] = {}
    for label in sorted(n for n in labels if MODEL_LABEL.search(n)):
        match = {"match[]": f'{{{label}!="",{sel}}}'}
        for name in prom.get_label_values("__name__", params=match):
            if namespace(name) not in known:
                labelled.setdefault(name, set()).add(label)
    if not labelled:
        return None
    types = {m["metric_name"]: m["type"] for m in prom.get_metric_metadata(None)}
    starter = starter_from(types, dict(sorted(labelled.items())), where)
    if starter is None:
        return None
    return sorted({namespace(n) for n in labelled}), starter


def _targets(report: Report, data: Any, instance: str | None) -> None:
    import re

    active = data.get("activeTargets", []) if isinstance(data, dict) else []
    if instance:
        pick = re.compile(instance)
        active = [t for t in active if pick.fullmatch(t.get("labels", {}).get("instance", ""))]
    down = [t for t in active if t.get("health") == "down"]
    for t in down:
        labels = t.get("labels", {})
        error = (t.get("lastError") or "no error given").splitlines()[0][:160]
        report.add(
            FAIL,
            "target",
            f"{labels.get('job', '?')} {labels.get('instance', '?')} is down: {error}.",
        )
    if not down:
        report.add(PASS, "targets", f"all {len(active)} scrape target(s) are up.")


def _alertmanagers(report: Report, session: requests.Session, ep: Endpoint, where: str) -> None:
    try:
        data = json.loads(_get(session, ep, "/api/v1/alertmanagers")[0]).get("data") or {}
        active = [a.get("url", "?") for a in data.get("activeAlertmanagers") or []]
    except (requests.RequestException, ValueError, AttributeError) as err:
        report.add(WARN, "alertmanager", f"{where}: its Alertmanagers {_why(err, ep)}.")
        return
    if not active:
        report.add(
            WARN,
            "alertmanager",
            f"{where} sends its alerts to no Alertmanager: alerts fire but notify nobody, and "
            "vramtop shows no silences.",
        )
        return
    bases = sorted({Endpoint(u).safe_url.split("/api/", 1)[0] for u in active})
    report.add(
        PASS,
        "alertmanager",
        f"{where} sends its alerts to {', '.join(bases)}: give --alertmanager URL to check it "
        "and to see silences.",
    )


def check_alertmanager(report: Report, ep: Endpoint) -> None:
    where = f"Alertmanager at {ep.safe_url}"
    try:
        info = json.loads(_get(_session(ep), ep, "/api/v2/status")[0])
        version = (info.get("versionInfo") or {}).get("version", "unknown")
    except (requests.RequestException, ValueError, AttributeError) as err:
        report.add(FAIL, "alertmanager", f"{where}: {_why(err, ep)}.")
        return
    report.add(PASS, "alertmanager", f"{where} answers, version {version}.")


def check_scrape(report: Report, ep: Endpoint, profiles: Sequence[Profile], forced: bool) -> None:
    from vramtop.sources.exposition import read

    where = f"/metrics at {ep.safe_url}"
    try:
        text, content_type = _get(_session(ep), ep, "")
    except requests.RequestException as err:
        report.add(FAIL, "scrape", f"{where}: {_why(err, ep)}.")
        return
    exposition = read(text, content_type)
    samples = exposition.samples
    note = f" ({exposition.skipped} malformed line(s) skipped)" if exposition.skipped else ""
    status = WARN if exposition.skipped else PASS
    report.add(status, "scrape", f"{where} answers with {len(samples)} sample names{note}.")

    def cardinality(p: Profile, metric: str) -> int:
        names = (*counter_names(metric), metric + "_bucket", metric + "_count", metric)
        values = {dict(k).get(p.model_label) for n in names for k in samples.get(n, {})}
        return len(values - {None})

    known = check_profiles(report, profiles, forced, set(samples), where, cardinality, True)
    if known:
        return
    starter = starter_profile(text, samples, ep.safe_url)
    if starter is None:
        report.add(WARN, "family", f"no profile knows {where}, and no metric has a model label.")
        return
    report.add(
        WARN,
        "family",
        f"no profile knows {where}: a starter profile built from its metrics follows.",
    )
    report.starter_profile = starter
