"""The Prometheus registry: exact exposition text, and a parse by prometheus_client's own
parser (installed with the official SDK) to prove scrapers accept it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

import httpx
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from server.http import Router, serve_http
from server.http.metrics import Registry, add_metrics_route


def sample_registry() -> Registry:
    registry = Registry()
    polls = registry.counter("podium_polls_total", "Polls served.", ["task_type"])
    polls.labels("encode").inc()
    polls.labels("encode").inc(2)
    polls.labels('we"ird\\na\nme').inc()
    depth = registry.gauge("podium_queue_depth", "Tasks waiting.")
    depth.set(5)
    depth.dec()
    latency = registry.histogram(
        "podium_request_seconds", "Request latency.", ["route"], buckets=[0.1, 1]
    )
    for value in (0.05, 0.1, 0.5, 3):
        latency.labels("/api/x").observe(value)
    return registry


def test_exposition_text_is_exact() -> None:
    assert sample_registry().render() == (
        "# HELP podium_polls_total Polls served.\n"
        "# TYPE podium_polls_total counter\n"
        'podium_polls_total{task_type="encode"} 3\n'
        'podium_polls_total{task_type="we\\"ird\\\\na\\nme"} 1\n'
        "# HELP podium_queue_depth Tasks waiting.\n"
        "# TYPE podium_queue_depth gauge\n"
        "podium_queue_depth 4\n"
        "# HELP podium_request_seconds Request latency.\n"
        "# TYPE podium_request_seconds histogram\n"
        'podium_request_seconds_bucket{route="/api/x",le="0.1"} 2\n'
        'podium_request_seconds_bucket{route="/api/x",le="1"} 3\n'
        'podium_request_seconds_bucket{route="/api/x",le="+Inf"} 4\n'
        'podium_request_seconds_sum{route="/api/x"} 3.65\n'
        'podium_request_seconds_count{route="/api/x"} 4\n'
    )


def test_prometheus_parser_reads_it_back() -> None:
    families = {f.name: f for f in text_string_to_metric_families(sample_registry().render())}
    polls = families["podium_polls"]
    assert polls.type == "counter"
    assert {s.labels["task_type"]: s.value for s in polls.samples} == {
        "encode": 3.0,
        'we"ird\\na\nme': 1.0,
    }
    hist = families["podium_request_seconds"]
    buckets = {s.labels["le"]: s.value for s in hist.samples if s.name.endswith("_bucket")}
    assert buckets == {"0.1": 2.0, "1": 3.0, "+Inf": 4.0}


def test_gauge_function_and_validation() -> None:
    registry = Registry()
    registry.gauge("podium_open_connections", "Open connections.").set_function(lambda: 7)
    assert "podium_open_connections 7\n" in registry.render()
    with pytest.raises(ValueError, match="already registered"):
        registry.gauge("podium_open_connections", "again")
    with pytest.raises(ValueError, match="invalid metric name"):
        registry.counter("bad-name", "x")
    with pytest.raises(ValueError, match="reserved"):
        registry.histogram("h", "x", ["le"])
    counter = registry.counter("c_total", "x", ["a"])
    with pytest.raises(ValueError, match=r"takes labels \['a'\]"):
        counter.labels("1", "2")
    with pytest.raises(ValueError, match="only goes up"):
        counter.labels("1").inc(-1)


@pytest.fixture
async def metrics_port(nursery: trio.Nursery) -> AsyncIterator[int]:
    router = Router()
    add_metrics_route(router, sample_registry())
    server = await nursery.start(serve_http, router, "127.0.0.1", 0)
    yield server.port
    server.shutdown()


async def test_metrics_route(metrics_port: int) -> None:
    async with httpx.AsyncClient() as client:
        resp = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert resp.text == sample_registry().render()


async def test_http_layer_counts_its_requests(nursery: trio.Nursery) -> None:
    from server.http import Request, Response
    from server.http.metrics import HttpMetrics

    registry = Registry()
    router = Router()

    async def hello(request: Request) -> Response:
        return Response.text("hi")

    router.add("GET", "/hello/{name}", hello)
    add_metrics_route(router, registry)
    server = await nursery.start(
        partial(serve_http, router, "127.0.0.1", 0, metrics=HttpMetrics(registry))
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
        for name in ("a", "b", "c"):
            assert (await client.get(f"/hello/{name}")).status_code == 200
        assert (await client.get("/nowhere")).status_code == 404
        text = (await client.get("/metrics")).text
    server.shutdown()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    counts = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["podium_http_requests"].samples
        if s.name == "podium_http_requests_total"
    }
    assert counts == {("/hello/{name}", "200"): 3.0, ("none", "404"): 1.0}
    durations = {
        s.labels["route"]: s.value
        for s in families["podium_http_request_duration_seconds"].samples
        if s.name.endswith("_count")
    }
    assert durations == {"/hello/{name}": 3.0, "none": 1.0}
    (open_connections,) = families["podium_http_open_connections"].samples
    assert open_connections.value == 1.0  # the scraping client's own connection


def test_label_values_that_are_not_strings_count_as_their_text() -> None:
    registry = Registry()
    responses = registry.counter("podium_responses_total", "Responses.", ["status"])
    responses.labels(200).inc()  # type: ignore[arg-type]
    responses.labels("200").inc()
    responses.labels(200).inc()  # type: ignore[arg-type]
    assert responses.labels("200").value == 3
    assert 'podium_responses_total{status="200"} 3\n' in registry.render()
    with pytest.raises(ValueError, match="takes labels"):
        responses.labels("200", "extra")
