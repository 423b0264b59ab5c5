"""``EngineCollector``: whatever ``Engine.stats()`` holds becomes a typed Prometheus series."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from generation.serving.engine import SECONDS_BUCKETS
from generation.serving.engine_metrics import EngineCollector, exposition


def scrape(stats: dict) -> tuple[dict[tuple[str, tuple], float], dict[str, str]]:
    """Sample values by (name, labels) and each family's type, as Prometheus would read them."""
    registry = CollectorRegistry()
    registry.register(EngineCollector(lambda: stats))
    payload, _ = exposition(registry)
    families = list(text_string_to_metric_families(payload.decode()))
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
    return values, {f.name: f.type for f in families}


def buckets(values: dict[tuple[str, tuple], float], name: str) -> dict[float, float]:
    return {float(dict(labels)["le"]): v for (n, labels), v in values.items() if n == f"{name}_bucket"}


#: What the continuous-batching engine reports (the contract in engine_metrics' docstring).
STATS = {
    "queue_depth": 2, "in_flight": 5, "closed": False, "models_loaded": ["demo"],
    "steps": 40, "tokens_generated": 300, "requests": 9, "completed": 7, "errors": 1, "busy": 3,
    "timeouts": 1, "cancelled": 0,
    "step_rows": {1: 4, 6: 30, 16: 6},
    "step_seconds": {0.01: 10, 0.05: 25, 0.5: 5},
    "first_token_seconds": {0.1: 6, 120: 1},
    "queue_wait_seconds": {},
    "failures": {"busy": 3, "timeout": 1},
    "batch_sizes": {1: 2, 3: 1},
    "seconds_sums": {"step_seconds": 1.25},
}


def test_counters_and_gauges() -> None:
    values, types = scrape(STATS)
    for counter in ("steps", "tokens_generated", "requests", "completed", "errors", "busy", "timeouts", "cancelled"):
        assert types[f"politico_engine_{counter}"] == "counter"
        assert values[(f"politico_engine_{counter}_total", ())] == STATS[counter]
    assert types["politico_engine_queue_depth"] == "gauge" and values[("politico_engine_queue_depth", ())] == 2
    assert values[("politico_engine_in_flight", ())] == 5 and values[("politico_engine_closed", ())] == 0
    assert "politico_engine_models_loaded" not in types


def test_counts_get_power_of_two_buckets() -> None:
    values, types = scrape(STATS)
    assert types["politico_engine_step_rows"] == "histogram"
    assert buckets(values, "politico_engine_step_rows") == {
        1: 4, 2: 4, 4: 4, 8: 34, 16: 40, 32: 40, float("inf"): 40}
    assert values[("politico_engine_step_rows_count", ())] == 40
    assert values[("politico_engine_step_rows_sum", ())] == 1 * 4 + 6 * 30 + 16 * 6
    # Any other histogram of counts reads the same way.
    assert buckets(values, "politico_engine_batch_sizes")[2] == 2
    assert values[("politico_engine_batch_sizes_count", ())] == 3


def test_seconds_get_the_engines_buckets() -> None:
    values, types = scrape(STATS)
    steps = buckets(values, "politico_engine_step_seconds")
    assert sorted(steps) == [*map(float, SECONDS_BUCKETS), float("inf")]
    assert (steps[0.01], steps[0.025], steps[0.05], steps[0.5], steps[60]) == (10, 10, 35, 40, 40)
    # The engine's exact sum where it kept one; else the buckets' bounds (an upper bound).
    assert values[("politico_engine_step_seconds_sum", ())] == 1.25
    assert values[("politico_engine_first_token_seconds_sum", ())] == 0.1 * 6 + 120
    assert "politico_engine_seconds_sums" not in types
    first = buckets(values, "politico_engine_first_token_seconds")
    assert (first[0.1], first[60], first[float("inf")]) == (6, 6, 7)  # past the last bound: +Inf only
    # Nothing waited yet: the histogram is there, empty, so dashboards show 0 rather than nothing.
    assert types["politico_engine_queue_wait_seconds"] == "histogram"
    assert values[("politico_engine_queue_wait_seconds_count", ())] == 0


def test_failures_are_a_counter_by_kind() -> None:
    values, types = scrape(STATS)
    assert types["politico_engine_failures"] == "counter"
    assert values[("politico_engine_failures_total", (("kind", "busy"),))] == 3
    assert values[("politico_engine_failures_total", (("kind", "timeout"),))] == 1
    empty, types = scrape({"failures": {}})
    assert types["politico_engine_failures"] == "counter" and empty == {}


def test_what_is_not_a_number_or_a_count_is_left_out() -> None:
    _, types = scrape({"models_loaded": ["demo"], "device": "cpu", "odd": {(1, 2): 3}, "queue_depth": 0})
    assert set(types) == {"politico_engine_queue_depth"}
