"""A server whose metrics carry no model label (llama.cpp, TGI) read directly: the scrape
target's job names its model, as Prometheus's scrape job would. Real loopback servers, the
real ScrapeSource."""

from __future__ import annotations

from test_exposition import serving

from vramtop.demo.exporter import ModelLoad, SimulatedExporter
from vramtop.profiles import load_all
from vramtop.sources.http import Endpoint
from vramtop.sources.scrape import ScrapeSource

LOAD = ModelLoad("ignored", 2.0, 1.0, 2.0, 3.0, 0.0, 4, running=3, kv_cache_usage=0.25)


def poll(urls: list[str], jobs: list[str | None] | None) -> dict:
    src = ScrapeSource(
        [Endpoint(u) for u in urls], list(load_all().values()), first_gap=0.05, jobs=jobs
    )
    try:
        return {m.name: m for m in src.poll().models}
    finally:
        src.close()


def test_the_target_job_names_a_model_without_a_label():
    with SimulatedExporter("llamacpp", [LOAD]) as llama:
        named = poll([llama.url], ["Mistral-7B"])
        unnamed = poll([llama.url], None)
    m = named["Mistral-7B"]
    assert m.profile == "llamacpp" and m.queue_length == 4
    assert m.extras["running_requests"] == 3 and m.extras["kv_cache_usage_ratio"] == 0.25
    assert unnamed == {}  # nothing names the model: no row rather than a made-up name


def test_a_job_label_the_server_writes_wins_and_other_targets_keep_theirs():
    labelled = (
        "# TYPE llamacpp:requests_processing gauge\n"
        'llamacpp:requests_processing{job="from-server"} 1\n'
        "# TYPE llamacpp:requests_deferred gauge\n"
        'llamacpp:requests_deferred{job="from-server"} 2\n'
    )
    with (
        serving(labelled) as own,
        SimulatedExporter("tgi", [LOAD]) as tgi,
        SimulatedExporter("vllm", [ModelLoad("llama", 1.0, 0.1, 0.2, 0.3, 0.0, 5)]) as vllm,
    ):
        models = poll([own.url, tgi.url, vllm.url], ["target-job", "tgi-model", None])
    assert set(models) == {"from-server", "tgi-model", "llama"}
    assert models["from-server"].profile == "llamacpp" and models["from-server"].queue_length == 2
    assert models["tgi-model"].profile == "tgi" and models["tgi-model"].queue_length == 4
    assert models["llama"].profile == "vllm" and models["llama"].queue_length == 5
