"""The fleet in the one-shot exports: the Hosts and Replicas tables, hosts[] and by_instance[]."""

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from samples import frame as single_box

from vramtop.clean import width
from vramtop.demo.scenario import Gpu, Scenario
from vramtop.export import render
from vramtop.model import (
    AlertReading,
    Frame,
    GpuReading,
    HostReading,
    InstanceFigures,
    ModelReading,
    freeze,
)

SCHEMA = json.loads(
    (Path(__file__).parent.parent / "vramtop" / "schemas" / "vramtop-1.schema.json").read_text()
)
GIB = 2**30
NOW = 1795000000.0  # 2026-11-18T11:06:40Z
ESC = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202e\u2066\u200b]")


def gpu(host: str, index: int, used: int | None, util: float | None) -> GpuReading:
    return GpuReading(
        index,
        f"GPU-{index}",
        "H100",
        memory_used_bytes=used,
        memory_total_bytes=80 * GIB,
        utilization_percent=util,
        host=host,
    )


def fleet(down: str = "gpu-c", slow: str = "gpu-b", model: str = "llama") -> Frame:
    """gpu-a fine, gpu-b slow with a firing alert, gpu-c down (no GPUs), seen from a laptop."""
    llama = ModelReading(
        model,
        30 * GIB,
        instances=(f"{slow}:8000", "gpu-a:8000"),
        by_instance=(
            InstanceFigures("gpu-a", 10 * GIB, 0.05, 1, 4.0),
            InstanceFigures(slow, 20 * GIB, 0.30, 9, 2.0),
        ),
    )
    return Frame(
        time=NOW,
        host=HostReading("laptop", cpu_percent=3.0, cpu_count=8),
        hosts=(
            HostReading(
                "gpu-a:9100",
                cpu_percent=50.0,
                cpu_count=64,
                memory_used_bytes=100 * GIB,
                memory_total_bytes=512 * GIB,
                instance="gpu-a",
                up=True,
                last_seen=NOW,
            ),
            HostReading(
                f"{down}:19400", instance=down, up=False, last_seen=NOW - 90, detail="refused"
            ),
        ),
        gpus=(gpu("gpu-a", 0, 10 * GIB, 40.0), gpu(slow, 0, 79 * GIB, 90.0), gpu(slow, 1, 0, 10.0)),
        models=(llama,),
        alerts=(
            AlertReading("Slow", "warning", "firing", labels=freeze({"instance": f"{slow}:8000"})),
            AlertReading(
                "Hushed", "warning", "firing", labels=freeze({"instance": "gpu-a:1"}), silenced=True
            ),
        ),
    )


def section(out: str, title: str) -> list[str]:
    """The lines of one text table: its header, rows and notes."""
    return out.split(f"\n{title}\n", 1)[1].split("\n\n", 1)[0].splitlines()


def doc_of(f: Frame) -> dict:
    def refuse(name):
        raise AssertionError(f"{name} in JSON")

    doc = json.loads(render(f, "json"), parse_constant=refuse)
    jsonschema.validate(doc, SCHEMA)
    return doc


# -- text and Markdown ------------------------------------------------------------------------


def test_text_hosts_are_worst_first_with_state_figures_and_the_down_reason():
    out = render(fleet(), "text")
    assert "Hosts (Prometheus)" not in out
    head, c, b, a, reason = section(out, "Hosts")
    for column in ("Host", "State", "GPUs", "VRAM used / total", "Util mean/max", "Models"):
        assert column in head
    for column in ("Worst p95", "Longest queue", "Alerts firing", "CPU", "Memory"):
        assert column in head
    assert c.split()[:3] == ["gpu-c", "DOWN", "(last"] and "last seen 11:05:10Z)" in c
    assert reason.strip() == "gpu-c: refused"
    assert b.split()[:3] == ["gpu-b", "up", "2"]
    assert "79.0 / 160.0 GiB (49%)" in b and "50% / 90%" in b
    assert "llama 300 ms (3.0x target)" in b and "llama 9" in b
    assert a.split()[:3] == ["gpu-a", "up", "1"]
    assert "llama 50 ms" in a and "target" not in a
    assert "50.0% of 64 cores" in a and "100.0 / 512.0 GiB (20%)" in a
    # the silenced alert is not counted: gpu-a has none firing, gpu-b one
    assert re.search(r"llama 1\s+0\s", a) and re.search(r"llama 9\s+1\s", b)


def test_a_host_without_gpus_says_so_with_not_available_figures():
    out = render(fleet(), "text")
    down = section(out, "Hosts")[1]
    assert re.search(r"DOWN \(last seen [0-9:]+Z\)\s+0\s+n/a\s+n/a\s+-\s+-\s+-\s+0\s+n/a", down)


def test_past_its_target_is_painted_bad_and_up_good():
    out = render(fleet(), "text", color=True)
    assert "\x1b[31;1mllama 300 ms (3.0x target)" in out
    assert "\x1b[31;1mDOWN (last seen 11:05:10Z)" in out
    assert "\x1b[32mup" in out
    assert "\x1b[31;1m300 ms" in out  # the slow replica, in the Replicas table


def test_replicas_table_lists_each_host_of_a_replicated_model():
    out = render(fleet(), "text")
    head, a, b = section(out, "Replicas")
    assert head.split() == ["Model", "Host", "VRAM", "p95", "Queue", "Req/s"]
    assert a.split() == ["llama", "gpu-a", "10.0", "GiB", "50", "ms", "1", "4.0"]
    assert b.split() == ["llama", "gpu-b", "20.0", "GiB", "300", "ms", "9", "2.0"]


def test_missing_replica_figures_are_na_with_the_models_reason():
    f = fleet()
    llama = replace(
        f.models[0],
        by_instance=(InstanceFigures("gpu-a", 10 * GIB), InstanceFigures("gpu-b", None, 0.2)),
        unavailable=freeze({"latency_p95_seconds": "no latency histogram", "vram_bytes": "x"}),
    )
    f = replace(f, models=(llama,))
    _, a, b, *notes = section(render(f, "text"), "Replicas")
    assert a.split() == ["llama", "gpu-a", "10.0", "GiB", "n/a", "n/a", "n/a"]
    assert b.split() == ["llama", "gpu-b", "n/a", "200", "ms", "n/a", "n/a"]
    assert [n.strip() for n in notes] == ["llama VRAM: x", "llama p95: no latency histogram"]
    replicas = doc_of(f)["models"][0]["by_instance"]
    assert replicas[0] == {
        "instance": "gpu-a",
        "vram_bytes": 10 * GIB,
        "latency_p95_seconds": None,
        "queue_length": None,
        "requests_per_second": None,
        "unavailable": {"latency_p95_seconds": "no latency histogram"},
    }
    assert replicas[1]["vram_bytes"] is None and replicas[1]["unavailable"] == {"vram_bytes": "x"}


def test_one_replica_is_no_replicas_table():
    f = fleet()
    one = replace(f.models[0], by_instance=f.models[0].by_instance[:1])
    out = render(replace(f, models=(one,)), "text")
    assert "\nHosts\n" in out and "\nReplicas\n" not in out


def test_markdown_hosts_and_replicas_escape_what_could_reshape_a_table():
    evil = "gpu|x](y)*b*"
    out = render(fleet(down=evil, slow=evil + "2", model="m|`x`<b>"), "markdown")
    hosts = out.split("### Hosts\n", 1)[1].split("###", 1)[0]
    assert "### Replicas" in out
    rows = [line for line in hosts.splitlines() if line.startswith("| gpu\\|x\\](y)\\*b\\*")]
    assert len(rows) == 2, out  # each host is one row, however its name reads
    for line in rows:
        assert len(re.split(r"(?<!\\)\|", line)) == 11 + 2
    replicas = out.split("### Replicas\n", 1)[1].split("###", 1)[0]
    replica = [r for r in replicas.splitlines() if r.startswith("| m\\|\\`x\\`\\<b\\>")]
    assert len(replica) == 2 and all(len(re.split(r"(?<!\\)\|", r)) == 6 + 2 for r in replica)
    assert "- gpu\\|x\\](y)\\*b\\*: refused" in out


# -- one machine: unchanged --------------------------------------------------------------------


def test_a_plain_local_box_has_no_hosts_table_and_no_hosts_in_json():
    f = single_box()
    assert "\nHosts\n" not in render(f, "text") and "\nReplicas\n" not in render(f, "text")
    assert "### Hosts" not in render(f, "markdown")
    doc = doc_of(f)
    assert doc["hosts"] == [] and all(m["by_instance"] == [] for m in doc["models"])


def test_one_remote_host_is_listed_as_before():
    f = Frame(
        time=NOW,
        host=HostReading("laptop"),
        hosts=(HostReading("node:9100", cpu_percent=7.0, instance="node", up=True),),
    )
    (row,) = section(render(f, "text"), "Hosts")[1:]
    assert row.split()[:3] == ["node", "up", "0"]
    (h,) = doc_of(f)["hosts"]
    assert h["name"] == "node:9100" and h["instance"] == "node" and h["cpu_percent"] == 7.0


def test_this_machine_is_a_row_of_the_fleet_with_its_own_cpu_and_memory():
    f = fleet()
    here = GpuReading(0, "GPU-here", "L4", memory_used_bytes=GIB, memory_total_bytes=24 * GIB)
    f = replace(f, gpus=(*f.gpus, here))
    rows = section(render(f, "text"), "Hosts")
    laptop = next(r for r in rows if r.strip().startswith("laptop"))
    assert "3.0% of 8 cores" in laptop and "1.0 / 24.0 GiB (4%)" in laptop
    local = next(h for h in doc_of(f)["hosts"] if h["instance"] == "laptop")
    assert local["name"] == "laptop" and local["up"] and local["gpu_count"] == 1


# -- JSON -------------------------------------------------------------------------------------


def test_json_hosts_carry_the_fleet_figures_worst_first():
    doc = doc_of(fleet())
    c, b, a = doc["hosts"]
    assert [h["instance"] for h in (c, b, a)] == ["gpu-c", "gpu-b", "gpu-a"]
    assert c["up"] is False and c["detail"] == "refused" and c["gpu_count"] == 0
    assert c["last_seen"] == "2026-11-18T11:05:10Z" and c["name"] == "gpu-c:19400"
    assert c["gpu_memory_used_bytes"] is None and c["utilization_mean_percent"] is None
    assert c["models"] == [] and c["alerts_firing"] == 0
    assert b["up"] is True and b["last_seen"] == "2026-11-18T11:06:40Z" and b["detail"] == ""
    assert b["gpu_memory_used_bytes"] == 79 * GIB and b["gpu_memory_total_bytes"] == 160 * GIB
    assert b["utilization_mean_percent"] == 50.0 and b["utilization_max_percent"] == 90.0
    assert b["models"] == ["llama"] and b["alerts_firing"] == 1
    assert a["cpu_count"] == 64 and a["memory_total_bytes"] == 512 * GIB
    assert a["alerts_firing"] == 0  # its one alert is silenced
    (llama,) = doc["models"]
    assert [r["instance"] for r in llama["by_instance"]] == ["gpu-a", "gpu-b"]
    assert llama["by_instance"][1]["latency_p95_seconds"] == 0.30
    assert llama["by_instance"][1]["queue_length"] == 9
    assert llama["by_instance"][1]["requests_per_second"] == 2.0


NEW_HOST_FIELDS = (
    "instance",
    "up",
    "last_seen",
    "detail",
    "gpu_count",
    "gpu_memory_used_bytes",
    "gpu_memory_total_bytes",
    "utilization_mean_percent",
    "utilization_max_percent",
    "models",
    "alerts_firing",
)


def test_the_schema_documents_each_new_field_and_rejects_undocumented_ones():
    host = SCHEMA["properties"]["hosts"]["items"]["properties"]
    replica = SCHEMA["properties"]["models"]["items"]["properties"]["by_instance"]["items"]
    documented = {n: host[n]["description"] for n in NEW_HOST_FIELDS}
    documented |= {n: spec["description"] for n, spec in replica["properties"].items()}
    assert all(documented.values())
    assert (
        "bytes" in documented["gpu_memory_used_bytes"]
        and "percent" in documented["utilization_max_percent"]
    )
    assert "bytes" in documented["vram_bytes"] and "seconds" in documented["latency_p95_seconds"]
    doc = doc_of(fleet())
    doc["models"][0]["by_instance"][0]["p99"] = 1.0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)
    doc = doc_of(fleet())
    doc["hosts"][0]["up"] = "no"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


@pytest.mark.parametrize("v", [math.nan, math.inf, 1e300, -5.0], ids=str)
def test_odd_fleet_figures_are_null_with_a_reason(v):
    f = fleet()
    big = int(v) if math.isfinite(v) else None
    gpus = (gpu("gpu-b", 0, big, v),)
    hosts = (replace(f.hosts[1], last_seen=v),)
    llama = replace(f.models[0], by_instance=(InstanceFigures("gpu-b", big, v, v, v),) * 2)
    f = replace(f, gpus=gpus, hosts=hosts, models=(llama,))
    for fmt_name in ("text", "markdown"):
        out = render(f, fmt_name)
        assert not re.search(r"\b(nan|inf|infinity)\b", out, re.IGNORECASE), out
        assert not re.search(r"\d{19}", out)
    doc = doc_of(f)
    down = next(h for h in doc["hosts"] if h["instance"] == "gpu-c")
    assert down["last_seen"] is None or v == -5.0
    b = next(h for h in doc["hosts"] if h["instance"] == "gpu-b")
    replica = doc["models"][0]["by_instance"][0]
    if not math.isfinite(v):
        assert b["utilization_mean_percent"] is None
        assert "utilization_mean_percent" in b["unavailable"]
        assert replica["latency_p95_seconds"] is None
        assert "latency_p95_seconds" in replica["unavailable"]
    else:
        assert b["gpu_memory_used_bytes"] is None and "gpu_memory_used_bytes" in b["unavailable"]
        assert replica["vram_bytes"] is None and "vram_bytes" in replica["unavailable"]


# -- hostile host names ------------------------------------------------------------------------

HOSTILE_HOSTS = [
    "h" * 10_000,
    "evil\x1b[2J\x1b]0;pwned\x07\x9b31m",
    "bidi\u202eevil\u2066x\u200b" * 300,
    "tab\there|pipe|[bold]" * 500,
]


@pytest.mark.parametrize("name", HOSTILE_HOSTS, ids=range(len(HOSTILE_HOSTS)))
def test_hostile_host_names_are_cut_escaped_and_kept_whole_in_json(name):
    f = fleet(down=name, slow=name + "2", model=name)
    f = replace(f, hosts=(replace(f.hosts[1], detail=name),))
    for fmt_name in ("text", "markdown"):
        out = render(f, fmt_name)
        assert not ESC.search(out), (fmt_name, "a raw control or bidi character")
        assert "\t" not in out
        widest = max(width(line) for line in out.splitlines())
        assert widest < 1500, (fmt_name, widest)
    out = render(f, "text")
    assert "\nHosts\n" in out and "\nReplicas\n" in out
    if "\x1b" in name:
        assert "evil\\x1b[2J" in out
    doc = doc_of(f)
    instances = [h["instance"] for h in doc["hosts"]]
    assert name in instances and name + "2" in instances
    down = next(h for h in doc["hosts"] if h["instance"] == name)
    assert down["detail"] == name and down["up"] is False
    assert doc["models"][0]["name"] == name
    assert {r["instance"] for r in doc["models"][0]["by_instance"]} == {"gpu-a", name + "2"}


def test_alerts_on_a_host_count_by_its_key_whatever_the_port():
    f = fleet()
    extra = AlertReading("Hot", "critical", "firing", labels=freeze({"instance": "gpu-b"}))
    doc = doc_of(replace(f, alerts=(*f.alerts, extra)))
    b = next(h for h in doc["hosts"] if h["instance"] == "gpu-b")
    assert b["alerts_firing"] == 2


# -- end to end: a real node_exporter through a real Prometheus, this box through fake NVML ----


def test_once_lists_this_box_and_a_node_exporter_host(run_vramtop, prometheus, node_exporter):
    # A Prometheus on this machine scraping 127.0.0.1 scrapes this machine: the node_exporter is
    # scraped once more under another host's name (the host's key drops the port).
    node = "node-1:9100"
    target = prometheus.add_target(node_exporter.url, job="node-e2e", labels={"instance": node})
    try:
        prometheus.wait_for(f'up{{instance="{node}"}} == 1', timeout=40)
        _once_lists_this_box_and_a_node_exporter_host(run_vramtop, prometheus, node)
    finally:
        target.remove()


def _once_lists_this_box_and_a_node_exporter_host(run_vramtop, prometheus, node: str) -> None:
    args = ("--prometheus", prometheus.url, "--profile", "node_exporter", "--instance", node)
    box = Scenario(gpus=(Gpu(uuid="GPU-aaaa-1111", memory_used=40 * GIB),))
    out = run_vramtop("--once", *args, scenario=box)
    assert out.returncode == 0, out.stderr
    rows = section(out.stdout, "Hosts")[1:]
    assert len(rows) == 2, out.stdout
    remote = next(r for r in rows if r.split()[0] == "node-1")
    assert remote.split()[1:3] == ["up", "0"] and re.search(r"\d+\.\d / \d+\.\d GiB", remote)
    here = next(r for r in rows if r is not remote)
    assert "40.0 / 80.0 GiB (50%)" in here and here.split()[1:3] == ["up", "1"]
    doc = json.loads(run_vramtop("--json", *args, scenario=box).stdout)
    jsonschema.validate(doc, SCHEMA)
    by_key = {h["instance"]: h for h in doc["hosts"]}
    assert set(by_key) == {"node-1", doc["host"]["name"]}
    assert by_key["node-1"]["name"] == node and by_key["node-1"]["memory_total_bytes"] > 0
    assert by_key[doc["host"]["name"]]["gpu_memory_used_bytes"] == 40 * GIB


def test_the_users_p95_target_shapes_the_hosts_table():
    from vramtop.export import render
    from vramtop.fleet import Rules

    default = render(fleet(), "text")
    relaxed = render(fleet(), "text", rules=Rules(p95_target=60.0))
    assert "x target)" in default and "x target)" not in relaxed
    assert json.loads(render(fleet(), "json", rules=Rules(p95_target=60.0)))["hosts"]


def test_a_reason_many_gpus_share_is_one_line_naming_them():
    """A fleet whose exporters lack the same fields says so once, not once per GPU; a GPU's
    own reason still names it, host included."""
    no_health = freeze({"health": "the exporter sends no GPU health metrics"})
    alike = [
        replace(gpu(host, i, 40 * GIB, 50.0), unavailable=no_health)
        for host in ("gpu-a", "gpu-b")
        for i in range(8)
    ]
    own = replace(gpu("gpu-c", 0, None, None), unavailable=freeze({"temperature_c": "absent"}))
    gpus = (*alike, own)
    frame = Frame(time=NOW, host=HostReading("laptop", cpu_percent=3.0, cpu_count=8), gpus=gpus)
    for fmt in ("text", "markdown"):
        out = render(frame, fmt).replace("\\_", "_")  # Markdown escapes the underscores
        lines = [line for line in out.splitlines() if "no GPU health metrics" in line]
        assert len(lines) == 1, lines
        assert "16 GPUs (gpu-a/0 … gpu-b/7) health:" in lines[0]
        assert "GPU gpu-c/0 temperature_c: absent" in out
