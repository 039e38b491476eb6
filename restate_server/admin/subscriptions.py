"""``/subscriptions`` and ``/kafka-clusters``: no Kafka support, so empty lists and clear
refusals in the real server's shapes (the CLI's ``list`` commands then print nothing).

Requests are checked as the real server checks them, in its order (query, body shape,
path parameter, content), so a bad request gets the same status as there; only a valid
Kafka cluster is refused with "not supported".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from restate_server.admin.errors import ApiError, invalid_field, json_response, not_found
from restate_server.admin.extract import (
    authority_problem,
    describe_value,
    parse_query_bool,
    path_error,
    query_fields,
    read_json,
    shape_error,
    uri_problem,
)
from restate_server.admin.routing import Call, Router
from restate_server.http_server import Response
from restate_server.schema.ids import IdError, check_subscription_id

_BOOTSTRAP_KEYS = ("bootstrap.servers", "metadata.broker.list")


def _struct(body: Any, name: str, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise shape_error(f"invalid type: {describe_value(body)}, expected struct {name}")
    for field in required:
        if field not in body:
            raise shape_error(f"missing field `{field}`")
    return body


def _uri_field(body: dict[str, Any], field: str) -> str:
    value = body[field]
    if not isinstance(value, str):
        raise shape_error(f"{field}: invalid type: {describe_value(value)}, expected a string")
    problem = uri_problem(value)
    if problem is not None:
        raise shape_error(f"{field}: {problem}")
    return value


def _string_map(body: dict[str, Any], field: str, *, nullable: bool = False) -> None:
    value = body.get(field)
    if value is None and nullable:
        return
    if not isinstance(value, dict):
        raise shape_error(f"{field}: invalid type: {describe_value(value)}, expected a map")
    for key, item in value.items():
        if not isinstance(item, str):
            raise shape_error(
                f"{field}.{key}: invalid type: {describe_value(item)}, expected a string"
            )


def _shown(uri: str) -> str:
    """How ``http::Uri`` prints a URI: an empty path after an authority becomes ``/``."""
    parts = urlsplit(uri)
    if parts.scheme and parts.netloc and not parts.path:
        return f"{parts.scheme}://{parts.netloc}/" + uri.split(parts.netloc, 1)[1]
    return uri


async def list_subscriptions(call: Call) -> Response:
    query_fields(call.request, "sink", "source")
    return json_response({"subscriptions": []})


async def create_subscription(call: Call) -> Response:
    body = _struct(await read_json(call.request), "CreateSubscriptionRequest", ("source", "sink"))
    source = _uri_field(body, "source")
    sink = _uri_field(body, "sink")
    _string_map(body, "options", nullable=True)
    source_parts = urlsplit(source)
    if source_parts.scheme != "kafka":
        raise ApiError(
            400,
            f"[META0009] invalid source URI '{_shown(source)}': must have a scheme segment, "
            "with supported schemes: [kafka].",
            "META0009",
        )
    if urlsplit(sink).scheme != "service":
        raise ApiError(
            400,
            f"[META0009] invalid sink URI '{_shown(sink)}': must have a scheme segment, "
            "with supported schemes: [service].",
            "META0009",
        )
    raise ApiError(400, f"Kafka cluster '{source_parts.netloc}' not found. Available clusters: []")


def _subscription_id(call: Call) -> str:
    value = call.params["subscription"]
    try:
        check_subscription_id(value)
    except IdError as exc:
        # parsed by the path extractor: a text/plain 400, like a bad deployment id
        raise path_error("subscription", value, str(exc)) from None
    return value


async def get_subscription(call: Call) -> Response:
    raise not_found("subscription", _subscription_id(call))


async def delete_subscription(call: Call) -> Response:
    subscription_id = _subscription_id(call)
    raise ApiError(
        404, f"not found in the schema registry: subscription with id '{subscription_id}'"
    )


async def list_kafka_clusters(call: Call) -> Response:
    return json_response({"clusters": []})


def _cluster_name(name: str) -> str:
    problem = authority_problem(name)
    if problem is not None:
        raise invalid_field("cluster_name", problem)
    return name


def _check_properties(name: str, body: dict[str, Any]) -> None:
    if not any(key in body["properties"] for key in _BOOTSTRAP_KEYS):
        raise ApiError(
            400,
            f"kafka cluster '{name}' properties must contain either 'bootstrap.servers' or "
            "'metadata.broker.list'",
        )


async def create_kafka_cluster(call: Call) -> Response:
    body = _struct(
        await read_json(call.request), "CreateKafkaClusterRequest", ("name", "properties")
    )
    name = body["name"]
    if not isinstance(name, str):
        raise shape_error(f"name: invalid type: {describe_value(name)}, expected a string")
    problem = authority_problem(name)
    if problem is not None:
        raise shape_error(f"name: {problem}")
    _string_map(body, "properties")
    _check_properties(name, body)
    raise ApiError(400, "Kafka clusters are not supported by this server")


async def get_kafka_cluster(call: Call) -> Response:
    query = query_fields(call.request, "include_subscriptions")
    parse_query_bool("include_subscriptions", query.get("include_subscriptions"))
    raise not_found("Kafka cluster", call.params["cluster_name"])


async def update_kafka_cluster(call: Call) -> Response:
    body = _struct(await read_json(call.request), "UpdateKafkaClusterRequest", ("properties",))
    _string_map(body, "properties")
    name = _cluster_name(call.params["cluster_name"])
    _check_properties(name, body)
    raise ApiError(404, f"not found in the schema registry: kafka cluster '{name}'")


async def delete_kafka_cluster(call: Call) -> Response:
    parse_query_bool("force", query_fields(call.request, "force").get("force"))
    name = _cluster_name(call.params["cluster_name"])
    raise ApiError(404, f"not found in the schema registry: kafka cluster named '{name}'")


def add_routes(router: Router) -> None:
    router.add("POST", "/subscriptions", create_subscription)
    router.add("GET", "/subscriptions", list_subscriptions)
    router.add("GET", "/subscriptions/{subscription}", get_subscription)
    router.add("DELETE", "/subscriptions/{subscription}", delete_subscription)
    router.add("POST", "/kafka-clusters", create_kafka_cluster)
    router.add("GET", "/kafka-clusters", list_kafka_clusters)
    router.add("GET", "/kafka-clusters/{cluster_name}", get_kafka_cluster)
    router.add("PATCH", "/kafka-clusters/{cluster_name}", update_kafka_cluster)
    router.add("DELETE", "/kafka-clusters/{cluster_name}", delete_kafka_cluster)
