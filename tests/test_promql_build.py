"""PromQL building, profile files, and the exposition maths the scrape source relies on."""

from __future__ import annotations

import math
import re

import pytest

from vramtop.profiles import ProfileError, load, load_all
from vramtop.sources.base import SourceError
from vramtop.sources.exposition import ExpositionError, histogram_quantile, increase, parse
from vramtop.sources.promql import normalise_uuid
from vramtop.sources.promql_syntax import counter_names, instance_selector, quote, regex_literal
from vramtop.sources.queries import (
    INSTANCE_P95,
    detect_query,
    field_queries,
    last_up_query,
    model_queries,
    up_query,
)


@pytest.mark.parametrize(
    ("value", "literal"),
    [('we"ird\\name.v1', '"we\\"ird\\\\name.v1"'), ("a\nb", '"a\\nb"'), ("plain", '"plain"')],
)
def test_quote_escapes_quotes_backslashes_newlines(value, literal):
    assert quote(value) == literal


def test_regex_literal_escapes_metacharacters_then_the_string():
    assert regex_literal("llama-3.1+x") == '"llama-3\\\\.1\\\\+x"'
    assert re.fullmatch(re.escape("a.b"), "a.b") and regex_literal("a.b") == '"a\\\\.b"'
    assert instance_selector(None) == 'instance=~".+"'
    assert instance_selector("gpu-0[1-3]:9100") == 'instance=~"gpu-0[1-3]:9100"'


def test_every_builtin_profile_loads_and_generates_queries():
    profiles = load_all()
    assert set(profiles) >= {
        "facesocial",
        "vllm",
        "triton",
        "tgi",
        "sglang",
        "dcgm",
        "nvidia_gpu_exporter",
        "node_exporter",
    }
    sel = instance_selector(None)
    for p in profiles.values():
        queries = model_queries(p, sel, "2m") if p.kind == "model" else field_queries(p, sel, "2m")
        assert queries, p.name
        for q in queries:
            assert q.expr.count("(") == q.expr.count(")"), q.expr
            assert "$" not in q.expr and "{," not in q.expr and ",}" not in q.expr
    assert "vllm:num_requests_running" in detect_query(list(profiles.values()), sel)


def test_counters_accept_both_suffixes_and_fallbacks_use_or():
    assert counter_names("model_errors") == ("model_errors_total", "model_errors")
    assert counter_names("x_total") == ("x_total", "x")
    vllm = load_all()["vllm"]
    kv = next(q for q in model_queries(vllm, "s", "2m") if q.key == "extras.kv_cache_usage_ratio")
    assert "vllm:kv_cache_usage_perc" in kv.expr and " or " in kv.expr
    assert "vllm:gpu_cache_usage_perc" in kv.expr


def test_query_count_is_fixed_per_profile():
    vllm = load_all()["vllm"]
    # 17 fleet-wide figures and one p95 per replica: none grows with models or hosts (and
    # they all go in one request: see PromSource._batch)
    assert len(model_queries(vllm, "s", "2m")) == 18


def test_each_replica_has_its_p95_and_the_host_label_joins_every_instance_grouping():
    profiles = load_all()
    (p95,) = [q for q in model_queries(profiles["vllm"], "s", "2m") if q.key == INSTANCE_P95]
    assert p95.expr == (
        "histogram_quantile(0.95, sum by (le, model_name, instance) "
        "(rate(vllm:e2e_request_latency_seconds_bucket{s}[2m])))"
    )
    (summary,) = [q for q in model_queries(profiles["triton"], "s", "2m") if q.key == INSTANCE_P95]
    assert summary.expr == (
        'max by (model, instance) (nv_inference_request_summary_us{quantile="0.95",s})'
    )
    assert summary.scale == 1e-6
    # llama.cpp has no latency at all: no p95 of a replica either
    assert not [q for q in model_queries(profiles["llamacpp"], "s", "2m") if q.key == INSTANCE_P95]
    queries = model_queries(profiles["vllm"], "s", "2m", host_label="node")
    by_instance = [q.expr for q in queries if "instance" in q.expr]
    assert len(by_instance) == 9 and all("instance, node)" in e for e in by_instance)
    # the tgi profile names the model by job: the grouping holds each label once
    tgi = model_queries(profiles["tgi"], "s", "2m")
    assert "sum by (job, instance) (tgi_queue_size{s})" in [q.expr for q in tgi]


def test_match_joins_the_instance_selector_quoted():
    sel = instance_selector("gpu-.*", (("cluster", "=~", "eu-.*"), ("team", "!=", 'a"b')))
    assert sel == 'instance=~"gpu-.*",cluster=~"eu-.*",team!="a\\"b"'
    assert up_query(sel).expr == f"up{{{sel}}}"
    up = f'up{{instance=~"a:1|b\\\\.c:2",{sel}}}'
    assert last_up_query(["a:1", "b.c:2"], sel) == (
        f"max_over_time((timestamp({up}) and {up} == 1)[1h:10s])"
    )


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('name = "x"\nkind = "model"\nbogus = 1', "unknown key 'bogus'"),
        ('name = "x"\nkind = "other"', "key 'kind' must be one of"),
        (
            'name = "x"\nkind = "model"\n[latency]\nhistogram = "m"',
            "latency.histogram must be a list",
        ),
        ('name = "x"\nkind = "model"\n[queue]\ngauge = ["q"]\ncounter = ["c"]', "exactly one of"),
        (
            'name = "x"\nkind = "model"\n[extras.a]\ngauge = ["q"]\nagg = "avg"',
            "agg must be sum or max",
        ),
        ("name = ", "not valid TOML"),
    ],
)
def test_bad_profile_names_file_and_key(tmp_path, text, needle):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(ProfileError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}: ") and needle in str(err.value)


def test_user_profile_dir_adds_and_overrides(tmp_path):
    (tmp_path / "vllm.toml").write_text('name = "vllm"\nkind = "model"\nmodel_label = "m"\n')
    (tmp_path / "llamacpp.toml").write_text(
        'name = "llamacpp"\nkind = "model"\ndetect = ["llamacpp:requests_processing"]\n'
        '[queue]\ngauge = ["llamacpp:requests_deferred"]\n'
    )
    profiles = load_all([tmp_path])
    assert profiles["vllm"].model_label == "m" and "llamacpp" in profiles


def test_exposition_parse_with_escapes():
    text = (
        "# HELP x y\n# TYPE m counter\n"
        'm_total{model="we\\"ird\\\\name",le="0.5"} 3 1700000000000\n'
        'up 1\nnan_metric{a="b"} NaN\ninf_metric +Inf\n'
    )
    samples = parse(text)
    ((labels, value),) = samples["m_total"].items()
    assert dict(labels) == {"model": 'we"ird\\name', "le": "0.5"} and value == 3.0
    assert math.isnan(samples["nan_metric"][(("a", "b"),)]) and samples["up"][()] == 1.0
    assert math.isinf(samples["inf_metric"][()])
    with pytest.raises(ExpositionError, match="line 1"):
        parse('bad{a="b" 1\n')


def test_histogram_quantile_matches_prometheus():
    buckets = [(0.05, 50.0), (0.2, 95.0), (0.5, 99.0), (math.inf, 100.0)]
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.05)
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.2)
    assert histogram_quantile(0.99, buckets) == pytest.approx(0.5)
    assert histogram_quantile(0.75, buckets) == pytest.approx(0.05 + 0.15 * 25 / 45)
    assert histogram_quantile(0.999, buckets) == 0.5  # in +Inf: the last finite bound
    assert histogram_quantile(0.5, [(math.inf, 0.0)]) is None
    assert increase(5, 3) == 2 and increase(1, 10) == 1 and increase(4, None) == 0


@pytest.mark.parametrize(
    ("raw", "uuid"),
    [
        ("GPU-8A7F-11", "GPU-8a7f-11"),
        ("gpu-8a7f-11", "GPU-8a7f-11"),
        ("8a7f-11", "GPU-8a7f-11"),
        ("MIG-ab", "MIG-ab"),
        ("", None),
    ],
)
def test_uuid_forms_normalise(raw, uuid):
    assert normalise_uuid(raw) == uuid


def test_a_series_names_its_host_by_label_instance_or_as_this_machine():
    from vramtop.sources.promreadings import Naming
    from vramtop.wiring import prometheus_here

    series = {"instance": "10.0.0.5:8000", "node": "gpu-a"}
    assert Naming().of(series) == "10.0.0.5"
    assert Naming("node").of(series) == "gpu-a"
    assert Naming("rack").of(series) == "10.0.0.5", "a series without the label keeps its key"
    # loopback is this machine only when Prometheus itself runs here
    assert Naming(None, "box").of({"instance": "127.0.0.1:8000"}) == "box"
    assert Naming(None, "box").of({"instance": "[::1]:9100"}) == "box"
    assert Naming().of({"instance": "127.0.0.1:8000"}) == "127.0.0.1"
    assert prometheus_here("http://127.0.0.1:9090", "box") == "box"
    assert prometheus_here("http://box:9090/prom", "box") == "box"
    assert prometheus_here("https://prom.example:9090", "box") is None


def test_a_gpus_every_refresh_fields_keep_only_the_labels_read():
    """dcgm-exporter's device, PCI bus and driver labels are a third of a fleet's answer."""
    own, fast, slow = field_queries(load_all()["dcgm"], "s", "2m", host_label="node")[:3]
    assert fast.expr.startswith(
        'max by (__name__, instance, GPU_I_ID, UUID, node) ({__name__=~"DCGM_FI_DEV_FB_USED|'
    )
    # a GPU's name, index and host once per GPU, from its memory series
    labels = "instance, GPU_I_ID, UUID, modelName, gpu, hostname, Hostname, node"
    memory = "DCGM_FI_DEV_FB_USED|DCGM_FI_DEV_FB_FREE|DCGM_FI_DEV_FB_RESERVED"
    assert own.expr == f'group by ({labels}) ({{__name__=~"{memory}",s}})'
    # the slow health fields whole: NVLink's one series per link are summed per GPU
    assert slow.every and slow.expr.startswith('{__name__=~"DCGM_FI_DEV_ECC_CURRENT|')
    host = field_queries(load_all()["node_exporter"], "s", "2m")[0]
    assert host.expr.startswith('{__name__=~"node_memory_MemTotal_bytes|')


def test_a_gpus_kept_health_follows_its_counters_across_refreshes():
    from vramtop.sources.promreadings import Answer, HealthMemo, gpus_and_xids
    from vramtop.sources.queries import Query

    dcgm = load_all()["dcgm"]
    memo = HealthMemo()

    def refresh(ecc: str) -> object:
        labels = {"UUID": "GPU-1", "instance": "h1:9400", "gpu": "0"}
        samples = [
            ({**labels, "__name__": "DCGM_FI_DEV_FB_USED"}, 5.0),
            ({**labels, "__name__": "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL"}, float(ecc)),
        ]
        (gpu,), _ = gpus_and_xids(
            [Answer(Query("dcgm", "gpu", "x"), samples)], {"dcgm": dcgm}, memo=memo
        )
        return gpu.health

    assert refresh("0").ecc_uncorrected_volatile == 0
    assert refresh("3").ecc_uncorrected_volatile == 3, "a changed counter is read anew"
    assert refresh("0").ecc_uncorrected_volatile == 0


def test_a_gpus_name_index_and_host_come_from_its_own_labels_series():
    """The figures' series carry only what tells them apart; a GPU's name, index and host
    labels come once per GPU (queries._gpu_labels), whichever answer is read first, and also
    where a series has no instance (the host from the exporter's own label)."""
    from vramtop.sources.promreadings import Answer, gpus_and_xids
    from vramtop.sources.queries import Query

    dcgm = load_all()["dcgm"]
    own = {"UUID": "GPU-1", "modelName": "NVIDIA H100", "gpu": "3", "Hostname": "node-7"}
    figures = [({"UUID": "GPU-1", "__name__": "DCGM_FI_DEV_FB_USED"}, 5.0)]
    for answers in (
        [
            Answer(Query("dcgm", "gpu", "f"), figures),
            Answer(Query("dcgm", "gpu", "o"), [(own, 1.0)]),
        ],
        [
            Answer(Query("dcgm", "gpu", "o"), [(own, 1.0)]),
            Answer(Query("dcgm", "gpu", "f"), figures),
        ],
    ):
        (gpu,), _ = gpus_and_xids(answers, {"dcgm": dcgm})
        assert (gpu.name, gpu.index, gpu.host) == ("NVIDIA H100", 3, "node-7")
        assert gpu.memory_used_bytes == 5 * 2**20


def test_an_answer_is_read_in_one_pass_split_by_its_tag():
    from vramtop.sources.http import Endpoint
    from vramtop.sources.promapi import instant

    def series(tag: str | None, value: str, **labels: object) -> dict:
        metric = {**labels, **({"t": tag} if tag is not None else {})}
        return {"metric": metric, "value": [1.0, value]}

    result = [
        series("0", "1.5", a="x"),
        series("1", "NaN", a="y"),
        series("1", "+Inf", a=7),
        series("7", "2", a="z"),  # not a tag of this batch
        series(None, "2", a="w"),
    ]
    body = {"status": "success", "data": {"resultType": "vector", "result": result}}
    ep = Endpoint("http://127.0.0.1:9")
    assert instant(body, ep, 100, "t", 2) == [
        [({"a": "x"}, 1.5)],
        [({"a": "y"}, None), ({"a": "7"}, float("inf"))],
    ]
    (whole,) = instant(body, ep, 100)
    assert [v for _, v in whole] == [1.5, None, float("inf"), 2.0, 2.0]
    with pytest.raises(SourceError, match="more than 4 series"):
        instant(body, ep, 4)
