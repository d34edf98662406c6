"""Our own CPU per fleet refresh, without Prometheus: capture one fleet's answers once, then
replay them to PromSource (HTTP answered in process) and time or profile only our side.

    python bench/fleet_cpu.py capture --hosts 1000 --out /tmp/fleet1000   # real Prometheus
    python bench/fleet_cpu.py replay /tmp/fleet1000 [--refreshes 5] [--profile 5] [--tree DIR]

The capture is one JSON file per query (its expression and Prometheus's body as sent); the
replay keeps Prometheus's and the network's share out of the figure, so it does not move with
the machine's load as a live refresh does. ``--tree``: a directory holding another ``vramtop``
package to replay to (``git archive <commit> vramtop | tar -x -C DIR``), for a before/after.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import json
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))


def _source(url: str, hosts: int):
    from vramtop import wiring
    from vramtop.config import load

    env = {"XDG_CONFIG_HOME": "/nonexistent/vramtop-bench"}
    flags = {"prometheus_url": url, "instance": f"h{hosts}-[0-9]+", "timeout": 30}
    (src,) = [
        s
        for s in wiring.remote_sources(load(env=env, flags=flags), env, None)
        if s.name == "prometheus"
    ]
    return src


def _name(expr: str) -> str:
    return hashlib.sha1(expr.encode()).hexdigest()[:16] + ".json"


def capture(hosts: int, out: Path) -> None:
    import httpx

    sys.path.insert(0, str(BENCH))
    sys.path.insert(0, str(REPO / "tests"))
    from host import FakeHost, Serving

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vramtop-fleet-") as tmp:
        work = Path(tmp)
        serving = Serving(work, FakeHost(work / "host"), 15)
        serving.start()
        try:
            serving.add_fleet((), (hosts,))
            serving.wait_fleet()
            time.sleep(20)  # a rate() needs two scrapes of every target
            src = _source(serving.url, hosts)
            real = src._http._client()  # the httpx client behind vramtop's lazy one

            def record(request: httpx.Request) -> httpx.Response:
                form = dict(httpx.QueryParams(request.content.decode()))
                resp = real.send(real.build_request(request.method, request.url, data=form))
                expr = form.get("query", "")
                body = {"expr": expr, "hosts": hosts, "body": resp.text}
                (out / _name(expr)).write_text(json.dumps(body))
                ctype = {"content-type": resp.headers.get("content-type", "")}
                return httpx.Response(resp.status_code, headers=ctype, content=resp.content)

            src._http = httpx.Client(transport=httpx.MockTransport(record), base_url=serving.url)
            src.poll()
            time.sleep(1)
            r = src.poll()
            src._late._running and src._late._running[2].result()
            print(f"captured {len(list(out.glob('*.json')))} answers, {len(r.gpus)} GPUs")
        finally:
            serving.stop()


def _replayed(path: Path):
    import httpx

    answers, hosts = {}, 0
    for f in path.glob("*.json"):
        d = json.loads(f.read_text())
        answers[d["expr"]] = d["body"].encode()
        hosts = d["hosts"]

    def answer(request: httpx.Request) -> httpx.Response:
        expr = dict(httpx.QueryParams(request.content.decode())).get("query", "")
        ctype = {"content-type": "application/json"}
        if expr not in answers:
            return httpx.Response(400, headers=ctype, content=b'{"status":"error","error":"?"}')
        return httpx.Response(200, headers=ctype, content=answers[expr])

    src = _source("http://127.0.0.1:9", hosts)
    src._http = httpx.Client(transport=httpx.MockTransport(answer), base_url="http://127.0.0.1:9")
    return src, sum(len(b) for b in answers.values())


class _Inline:
    """DaemonPool's calls, run on the calling thread."""

    def map(self, fn, items):
        return [fn(x) for x in items]

    def submit(self, fn, item):
        from vramtop.futures import Future

        fut: Future = Future()
        fut.set_result(fn(item))
        return fut


def replay(path: Path, refreshes: int, profile: int) -> None:
    src, size = _replayed(path)
    first = src.poll()  # detection, and the histograms' first answer
    cpu = []
    for _ in range(refreshes):
        c = time.process_time()
        r = src.poll()
        cpu.append((time.process_time() - c) * 1000)
    print(
        f"{len(first.gpus)} GPUs, {len(r.models)} models, {len(r.hosts)} hosts; "
        f"{size / 1e6:.1f} MB of answers; requests per refresh {r.queries}"
    )
    import vramtop

    print(f"tree {Path(vramtop.__file__).parent.parent}")
    print(f"CPU per refresh: median {statistics.median(cpu):.0f} ms, min {min(cpu):.0f} ms")
    if profile:
        src._pool = src._late._pool = _Inline()  # so that cProfile sees the requests' work
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(profile):
            src.poll()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("capture")
    c.add_argument("--hosts", type=int, default=1000)
    c.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("replay")
    r.add_argument("dir", type=Path)
    r.add_argument("--refreshes", type=int, default=5)
    r.add_argument("--profile", type=int, default=0, help="refreshes to profile")
    r.add_argument("--tree", help="a directory with another vramtop package")
    a = ap.parse_args()
    if getattr(a, "tree", None):
        sys.path.insert(0, a.tree)
    if a.cmd == "capture":
        capture(a.hosts, a.out)
    else:
        replay(a.dir, a.refreshes, a.profile)


if __name__ == "__main__":
    main()
