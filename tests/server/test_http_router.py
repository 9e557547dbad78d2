"""The route table on its own: template matching, priorities, 404/405, HEAD fallback."""

from __future__ import annotations

import pytest

from server.http import Request, Response, Router
from server.http.errors import MethodNotAllowed, RouteNotFound


async def _handler(request: Request) -> Response:
    return Response.empty()


def make_router(*routes: tuple[str, str]) -> Router:
    router = Router()
    for method, template in routes:
        router.add(method, template, _handler)
    return router


def resolved(router: Router, method: str, path: str) -> tuple[str, dict[str, str]]:
    route, params = router.resolve(method, path)
    return route.template, params


def test_static_and_parameter_routes() -> None:
    router = make_router(
        ("GET", "/api/metadata/workflow"), ("GET", "/api/metadata/workflow/{name}")
    )
    assert resolved(router, "GET", "/api/metadata/workflow") == ("/api/metadata/workflow", {})
    assert resolved(router, "GET", "/api/metadata/workflow/order") == (
        "/api/metadata/workflow/{name}",
        {"name": "order"},
    )


def test_literal_wins_over_parameter_at_same_position() -> None:
    router = make_router(
        ("GET", "/api/workflow/{workflowId}"), ("GET", "/api/workflow/running/{name}")
    )
    assert resolved(router, "GET", "/api/workflow/running/x") == (
        "/api/workflow/running/{name}",
        {"name": "x"},
    )
    assert resolved(router, "GET", "/api/workflow/running") == (
        "/api/workflow/{workflowId}",
        {"workflowId": "running"},
    )


def test_literal_branch_dead_end_backtracks_to_parameter() -> None:
    router = make_router(
        ("GET", "/api/workflow/running/{name}"), ("PUT", "/api/workflow/{workflowId}/pause")
    )
    # "running" matches the literal branch first, which has no `pause` child.
    assert resolved(router, "PUT", "/api/workflow/running/pause") == (
        "/api/workflow/{workflowId}/pause",
        {"workflowId": "running"},
    )


def test_different_parameter_names_at_one_position() -> None:
    router = make_router(
        ("GET", "/api/workflow/{workflowId}"),
        ("GET", "/api/workflow/{name}/correlated/{correlationId}"),
    )
    assert resolved(router, "GET", "/api/workflow/w/correlated/c") == (
        "/api/workflow/{name}/correlated/{correlationId}",
        {"name": "w", "correlationId": "c"},
    )


def test_method_is_chosen_before_specificity() -> None:
    # As in Spring: a DELETE on a path whose literal route has only GET goes to the
    # parameter route that has DELETE.
    router = make_router(("GET", "/api/workflow/running"), ("DELETE", "/api/workflow/{id}"))
    assert resolved(router, "DELETE", "/api/workflow/running") == (
        "/api/workflow/{id}",
        {"id": "running"},
    )


def test_percent_decoding_happens_per_segment() -> None:
    router = make_router(("GET", "/api/event/{name}"))
    assert resolved(router, "GET", "/api/event/a%2Fb%20c")[1] == {"name": "a/b c"}


def test_unknown_path_is_404() -> None:
    router = make_router(("GET", "/api/workflow/{id}"))
    with pytest.raises(RouteNotFound) as info:
        router.resolve("GET", "/api/tasks")
    assert info.value.http_status == 404
    with pytest.raises(RouteNotFound):
        router.resolve("GET", "/api/workflow/")  # a parameter never matches ""
    with pytest.raises(RouteNotFound):
        router.resolve("GET", "/api/workflow/a/b")


def test_wrong_method_is_405_listing_every_matching_method() -> None:
    router = make_router(
        ("GET", "/api/workflow/{id}"),
        ("DELETE", "/api/workflow/{id}"),
        ("POST", "/api/workflow/running"),
    )
    with pytest.raises(MethodNotAllowed) as info:
        router.resolve("PUT", "/api/workflow/running")
    assert info.value.http_status == 405
    assert info.value.allowed == ["DELETE", "GET", "HEAD", "OPTIONS", "POST"]
    assert info.value.headers == [("allow", "DELETE, GET, HEAD, OPTIONS, POST")]


async def test_options_answers_allow_for_known_paths() -> None:
    router = make_router(("GET", "/api/workflow/{id}"), ("DELETE", "/api/workflow/{id}"))
    route, _ = router.resolve("OPTIONS", "/api/workflow/w1")
    response = await route.handler(Request("OPTIONS", "/api/workflow/w1"))
    assert response.status == 200
    assert response.headers == [("allow", "DELETE, GET, HEAD, OPTIONS")]
    with pytest.raises(RouteNotFound):
        router.resolve("OPTIONS", "/api/other")


def test_head_falls_back_to_get() -> None:
    router = make_router(("GET", "/a"), ("GET", "/b/{x}"))
    assert resolved(router, "HEAD", "/a") == ("/a", {})
    assert resolved(router, "HEAD", "/b/1") == ("/b/{x}", {"x": "1"})


def test_duplicate_and_malformed_templates_are_rejected() -> None:
    router = make_router(("GET", "/api/workflow/{id}"))
    with pytest.raises(ValueError, match="already registered"):
        router.add("GET", "/api/workflow/{workflowId}", _handler)
    with pytest.raises(ValueError, match="must start with '/'"):
        router.add("GET", "api/x", _handler)
    with pytest.raises(ValueError, match="repeats parameter"):
        router.add("GET", "/x/{a}/{a}", _handler)
    with pytest.raises(ValueError, match="must be a literal or a whole"):
        router.add("GET", "/x/pre{a}", _handler)


def test_decorator_registers() -> None:
    router = Router()

    @router.route("post", "/api/tasks", summary="update")
    async def update(request: Request) -> Response:
        return Response.text("ok")

    route, _ = router.resolve("POST", "/api/tasks")
    assert route.handler is update
    assert route.summary == "update"


def test_a_repeated_parameter_path_resolves_the_same_with_fresh_parameters() -> None:
    router = make_router(("GET", "/api/tasks/poll/batch/{taskType}"))
    first = router.resolve("GET", "/api/tasks/poll/batch/encode")
    first[1]["taskType"] = "changed by a handler"
    again = router.resolve("GET", "/api/tasks/poll/batch/encode")
    assert again[0] is first[0]
    assert again[1] == {"taskType": "encode"}


def test_a_route_added_later_takes_over_a_path_resolved_before() -> None:
    router = make_router(("GET", "/api/workflow/{workflowId}"))
    assert resolved(router, "GET", "/api/workflow/running") == (
        "/api/workflow/{workflowId}",
        {"workflowId": "running"},
    )
    router.add("GET", "/api/workflow/{name}/x", _handler)
    router.add("GET", "/api/workflow/running", _handler)
    assert resolved(router, "GET", "/api/workflow/running") == ("/api/workflow/running", {})
