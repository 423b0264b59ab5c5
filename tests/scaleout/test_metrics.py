"""What ``/metrics`` makes of the engine's stats and of finished requests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from generation.serving.metrics import ServerMetrics, TokenRate


def samples(metrics: ServerMetrics) -> dict[tuple[str, tuple], float]:
    payload, _ = metrics.render()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(payload.decode())
        for s in family.samples
    }


def test_engine_stats_become_typed_metrics() -> None:
    stats = {
        "queue_depth": 3, "steps": 4, "tokens_generated": 90, "closed": False,
        "batch_sizes": {1: 2, 3: 1, 32: 1}, "models_loaded": ["demo"],
    }
    values = samples(ServerMetrics(lambda: stats))
    assert values[("politico_engine_queue_depth", ())] == 3
    assert values[("politico_engine_steps_total", ())] == 4
    assert values[("politico_engine_closed", ())] == 0
    buckets = {dict(labels)["le"]: v for (name, labels), v in values.items() if name == "politico_engine_batch_sizes_bucket"}
    assert buckets == {"1": 2, "2": 2, "4": 3, "8": 3, "16": 3, "32": 4, "64": 4, "+Inf": 4}
    assert values[("politico_engine_batch_sizes_sum", ())] == 2 + 3 + 32
    assert not any(name.startswith("politico_engine_models_loaded") for name, _ in values)


def test_requests_are_counted_by_model_and_status() -> None:
    metrics = ServerMetrics(dict)
    metrics.observe("demo", 200, 0.5, prompt_tokens=10, tokens=30)
    metrics.observe("demo", 429, 0.001, prompt_tokens=0, tokens=0)
    values = samples(metrics)
    assert values[("politico_requests_total", (("model", "demo"), ("status", "200")))] == 1
    assert values[("politico_requests_total", (("model", "demo"), ("status", "429")))] == 1
    assert values[("politico_generated_tokens_total", (("model", "demo"),))] == 30
    assert values[("politico_request_latency_seconds_count", (("model", "demo"),))] == 2


def test_token_rate_forgets_old_tokens() -> None:
    now = [100.0]
    rate = TokenRate(window_s=10, clock=lambda: now[0])
    rate.add(50)
    now[0] = 105.0
    rate.add(30)
    assert rate.rate() == 8.0
    now[0] = 112.0
    assert rate.rate() == 3.0
