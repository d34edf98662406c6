"""Which GPUs a query deferring to DCGM would ask vramtop's exporter for, from a refresh's own
answers (promshadow.gaps): the decision to leave those queries out. The join itself runs
against a real Prometheus in test_promql_scale.py."""

from __future__ import annotations

from vramtop.profiles import load_all
from vramtop.sources.promreadings import Answer
from vramtop.sources.promshadow import gaps
from vramtop.sources.queries import Query, field_queries

PROFILES = load_all()
DCGM, MINE = PROFILES["dcgm"], PROFILES["vramtop_gpus"]
BY_NAME = {"dcgm": DCGM, "vramtop_gpus": MINE}
DEFERRING = [q for q in field_queries(MINE, "s", "2m", [DCGM]) if q.defers_to]
TEMP = next(q for q in DEFERRING if "temperature" in q.expr)


def dcgm(uuid: str, **values: float | None) -> list[tuple[dict[str, str], float | None]]:
    return [({"__name__": name, "UUID": uuid}, value) for name, value in values.items()]


def mine(*uuids: str) -> Answer:
    return Answer(Query("vramtop_gpus", "gpu", "own"), [({"gpu_uuid": u}, 1.0) for u in uuids])


def covered(uuid: str) -> list[tuple[dict[str, str], float | None]]:
    return dcgm(
        uuid,
        DCGM_FI_DEV_FB_USED=1.0,
        DCGM_FI_DEV_GPU_UTIL=2.0,
        DCGM_FI_DEV_GPU_TEMP=3.0,
        DCGM_FI_DEV_POWER_USAGE=4.0,
    )


def test_every_deferring_query_is_one_of_vramtop_exporters_figures_dcgm_also_has():
    assert len(DEFERRING) == 4
    assert all(label == "UUID" for q in DEFERRING for _, label in q.defers_to)


def test_a_gpu_dcgm_covers_for_every_figure_leaves_nothing_to_ask():
    answers = [Answer(Query("dcgm", "gpu", "f"), covered("GPU-1") + covered("GPU-2"))]
    assert gaps([*answers, mine("GPU-1", "GPU-2")], BY_NAME, DEFERRING) == set()


def test_a_figure_dcgm_lacks_or_sends_as_nan_is_asked_for_that_gpu_only():
    answers = [
        Answer(Query("dcgm", "gpu", "f"), covered("GPU-1")),
        Answer(
            Query("dcgm", "gpu", "f2"),
            dcgm("GPU-2", DCGM_FI_DEV_FB_USED=1.0, DCGM_FI_DEV_GPU_UTIL=2.0)
            + dcgm("GPU-2", DCGM_FI_DEV_POWER_USAGE=None),  # NaN: no number
        ),
        mine("GPU-1", "GPU-2"),
    ]
    found = {(q.expr.split("{")[0], uuid) for q, uuid in gaps(answers, BY_NAME, DEFERRING) or ()}
    assert found == {
        ("vramtop_gpu_temperature_celsius", "GPU-2"),
        ("vramtop_gpu_power_watts", "GPU-2"),
    }


def test_a_gpu_only_vramtops_exporter_sees_is_asked_for_every_figure():
    answers = [Answer(Query("dcgm", "gpu", "f"), covered("GPU-1")), mine("GPU-1", "GPU-3")]
    assert {uuid for _, uuid in gaps(answers, BY_NAME, DEFERRING) or ()} == {"GPU-3"}
    assert len(gaps(answers, BY_NAME, DEFERRING) or ()) == 4


def test_unknown_where_an_answer_failed_or_a_deferring_query_answered_series():
    ok = [Answer(Query("dcgm", "gpu", "f"), covered("GPU-1")), mine("GPU-1")]
    failed = Answer(Query("dcgm", "gpu", "f"), error="timed out")
    assert gaps([*ok, failed], BY_NAME, DEFERRING) is None
    answered = Answer(TEMP, [({"gpu_uuid": "GPU-1", "__name__": "x"}, 30.0)])
    assert gaps([*ok, answered], BY_NAME, DEFERRING) is None
    assert gaps([*ok, Answer(TEMP, [])], BY_NAME, DEFERRING) == set()
