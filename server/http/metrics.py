"""A tiny Prometheus registry: counters, gauges and histograms with labels.

Rules: metrics are created once at startup and updated from the trio thread (no locks:
trio runs one task at a time). `render()` produces the text exposition format 0.0.4:
`# HELP`/`# TYPE` per family, one sample per label set, histograms with cumulative
`_bucket{le=...}` lines ending in `+Inf`, then `_sum` and `_count`. Label values are
escaped (backslash, double quote, newline). Names are checked at creation, so a bad name
fails at startup rather than producing an unparsable scrape.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from server.http.request import Request
from server.http.response import Response
from server.http.router import Router

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
DEFAULT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _format_value(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _label_text(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    pairs = [f'{n}="{_escape_label(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        pairs.append(extra)
    return "{" + ",".join(pairs) + "}" if pairs else ""


class _Family:
    """A metric name with fixed label names; one child per distinct label values."""

    kind = ""

    def __init__(self, name: str, help_text: str, label_names: Sequence[str]) -> None:
        if not _METRIC_NAME.match(name):
            raise ValueError(f"invalid metric name {name!r}: use [a-zA-Z_:][a-zA-Z0-9_:]*")
        for label in label_names:
            if not _LABEL_NAME.match(label) or label.startswith("__"):
                raise ValueError(f"invalid label name {label!r} on metric {name}")
        if len(set(label_names)) != len(label_names):
            raise ValueError(f"metric {name} repeats a label name: {list(label_names)}")
        self.name = name
        self.help = help_text
        self.label_names = tuple(label_names)
        # labels(...) handles by the values as passed (str values only), so a hot call
        # site costs one dict lookup, not a key check and a new handle object.
        self._handles: dict[tuple[str, ...], Any] = {}

    def _cached_handle(self, values: tuple[str, ...], handle: Any) -> Any:
        if all(type(v) is str for v in values):
            self._handles[values] = handle
        return handle

    def _key(self, values: tuple[str, ...]) -> tuple[str, ...]:
        if len(values) != len(self.label_names):
            raise ValueError(
                f"metric {self.name} takes labels {list(self.label_names)}, got {list(values)}"
            )
        return tuple(str(v) for v in values)

    def samples(self) -> Iterator[str]:
        raise NotImplementedError

    def render(self) -> str:
        head = f"# HELP {self.name} {_escape_help(self.help)}\n# TYPE {self.name} {self.kind}\n"
        return head + "".join(self.samples())


class _Value:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0


class Counter(_Family):
    """A value that only goes up (requests served, tasks completed)."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, label_names)
        self._children: dict[tuple[str, ...], _Value] = {}

    def labels(self, *values: str) -> CounterChild:
        """The counter for these label values (in label-name order)."""
        handle: CounterChild | None = self._handles.get(values)
        if handle is not None:
            return handle
        key = self._key(values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = _Value()
        return self._cached_handle(values, CounterChild(child))  # type: ignore[no-any-return]

    def inc(self, amount: float = 1.0) -> None:
        """Add `amount` to the counter of a metric without labels."""
        self.labels().inc(amount)

    def samples(self) -> Iterator[str]:
        for key, child in self._children.items():
            labels = _label_text(self.label_names, key)
            yield f"{self.name}{labels} {_format_value(child.value)}\n"


class CounterChild:
    """One label set of a Counter."""

    __slots__ = ("_value",)

    def __init__(self, value: _Value) -> None:
        self._value = value

    def inc(self, amount: float = 1.0) -> None:
        """Add `amount` (must not be negative)."""
        if amount < 0:
            raise ValueError(f"a counter only goes up; got inc({amount})")
        self._value.value += amount

    @property
    def value(self) -> float:
        return self._value.value


class Gauge(_Family):
    """A value that goes up and down (open connections, queue depth)."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, label_names)
        self._children: dict[tuple[str, ...], _Value] = {}
        self._function: Callable[[], float] | None = None

    def labels(self, *values: str) -> GaugeChild:
        """The gauge for these label values (in label-name order)."""
        handle: GaugeChild | None = self._handles.get(values)
        if handle is not None:
            return handle
        key = self._key(values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = _Value()
        return self._cached_handle(values, GaugeChild(child))  # type: ignore[no-any-return]

    def set(self, value: float) -> None:
        """Set a gauge without labels."""
        self.labels().set(value)

    def inc(self, amount: float = 1.0) -> None:
        """Add to a gauge without labels."""
        self.labels().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        """Subtract from a gauge without labels."""
        self.labels().inc(-amount)

    def set_function(self, function: Callable[[], float]) -> None:
        """Read the (label-less) value from `function` at every scrape instead."""
        if self.label_names:
            raise ValueError(f"gauge {self.name} has labels; set_function needs none")
        self._function = function

    def samples(self) -> Iterator[str]:
        if self._function is not None:
            yield f"{self.name} {_format_value(float(self._function()))}\n"
            return
        for key, child in self._children.items():
            labels = _label_text(self.label_names, key)
            yield f"{self.name}{labels} {_format_value(child.value)}\n"


class GaugeChild:
    """One label set of a Gauge."""

    __slots__ = ("_value",)

    def __init__(self, value: _Value) -> None:
        self._value = value

    def set(self, value: float) -> None:
        self._value.value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        self._value.value += amount

    def dec(self, amount: float = 1.0) -> None:
        self._value.value -= amount

    @property
    def value(self) -> float:
        return self._value.value


class _HistogramData:
    __slots__ = ("buckets", "count", "sum")

    def __init__(self, size: int) -> None:
        self.buckets = [0] * size  # per bucket, not cumulative; the last one is +Inf
        self.sum = 0.0
        self.count = 0


class Histogram(_Family):
    """Observations counted into fixed buckets (latencies, sizes)."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        label_names: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        if "le" in label_names:
            raise ValueError(f"histogram {name}: the label name 'le' is reserved")
        super().__init__(name, help_text, label_names)
        bounds = sorted(float(b) for b in buckets if not math.isinf(b))
        if not bounds or len(set(bounds)) != len(bounds):
            raise ValueError(f"histogram {name} needs distinct finite buckets, got {buckets!r}")
        self.bounds = tuple(bounds)
        self._children: dict[tuple[str, ...], _HistogramData] = {}

    def labels(self, *values: str) -> HistogramChild:
        """The histogram for these label values (in label-name order)."""
        handle: HistogramChild | None = self._handles.get(values)
        if handle is not None:
            return handle
        key = self._key(values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = _HistogramData(len(self.bounds) + 1)
        handle = HistogramChild(self.bounds, child)
        return self._cached_handle(values, handle)  # type: ignore[no-any-return]

    def observe(self, value: float) -> None:
        """Record one observation on a histogram without labels."""
        self.labels().observe(value)

    def samples(self) -> Iterator[str]:
        les = [_format_value(b) for b in self.bounds] + ["+Inf"]
        for key, data in self._children.items():
            cumulative = 0
            for le, count in zip(les, data.buckets, strict=True):
                cumulative += count
                labels = _label_text(self.label_names, key, f'le="{le}"')
                yield f"{self.name}_bucket{labels} {cumulative}\n"
            labels = _label_text(self.label_names, key)
            yield f"{self.name}_sum{labels} {_format_value(data.sum)}\n"
            yield f"{self.name}_count{labels} {data.count}\n"


class HistogramChild:
    """One label set of a Histogram."""

    __slots__ = ("_bounds", "_data")

    def __init__(self, bounds: tuple[float, ...], data: _HistogramData) -> None:
        self._bounds = bounds
        self._data = data

    def observe(self, value: float) -> None:
        """Count `value` in the first bucket whose upper bound is >= value."""
        data = self._data
        data.buckets[bisect_left(self._bounds, value)] += 1
        data.sum += value
        data.count += 1

    @property
    def count(self) -> int:
        return self._data.count


class Registry:
    """A set of metric families, rendered together for one scrape."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}

    def _register(self, family: _Family) -> None:
        if family.name in self._families:
            raise ValueError(f"metric {family.name} is already registered")
        self._families[family.name] = family

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        """Create and register a Counter."""
        metric = Counter(name, help_text, labels)
        self._register(metric)
        return metric

    def gauge(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Gauge:
        """Create and register a Gauge."""
        metric = Gauge(name, help_text, labels)
        self._register(metric)
        return metric

    def histogram(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        """Create and register a Histogram (upper bounds; `+Inf` is implied)."""
        metric = Histogram(name, help_text, labels, buckets)
        self._register(metric)
        return metric

    def render(self) -> str:
        """Every family in the Prometheus text format, in registration order."""
        return "".join(family.render() for family in self._families.values())


def add_metrics_route(router: Router, registry: Registry, path: str = "/metrics") -> None:
    """Serve `registry` for Prometheus scrapes at `path`."""

    async def metrics(request: Request) -> Response:
        return Response(200, registry.render().encode("utf-8"), content_type=CONTENT_TYPE)

    router.add("GET", path, metrics, response=str, summary="Prometheus metrics")


class HttpMetrics:
    """The HTTP layer's own metrics, registered on `registry`.

    `podium_http_requests_total{method,route,status}` counts responses and
    `podium_http_request_duration_seconds{method,route}` times handlers (route is the
    template, so ids do not explode the label space; unmatched paths count as `none`).
    """

    def __init__(self, registry: Registry) -> None:
        self._requests = registry.counter(
            "podium_http_requests_total",
            "HTTP responses sent, by method, route template and status.",
            ["method", "route", "status"],
        )
        self._duration = registry.histogram(
            "podium_http_request_duration_seconds",
            "Time from a complete request to its response being written, by route.",
            ["method", "route"],
        )
        self.connections = registry.gauge(
            "podium_http_open_connections", "Client connections currently open."
        )
        # label children cached per key: the label lookup is on every request
        self._counters: dict[tuple[str, str, int], CounterChild] = {}
        self._timers: dict[tuple[str, str], HistogramChild] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Record one response."""
        counter = self._counters.get((method, route, status))
        if counter is None:
            counter = self._counters[(method, route, status)] = self._requests.labels(
                method, route, str(status)
            )
        counter.inc()
        timer = self._timers.get((method, route))
        if timer is None:
            timer = self._timers[(method, route)] = self._duration.labels(method, route)
        timer.observe(seconds)
