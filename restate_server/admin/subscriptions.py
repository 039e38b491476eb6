"""``/subscriptions`` and ``/kafka-clusters``: no Kafka support, so empty lists and clear
refusals in the real server's shapes (the CLI's ``list`` commands then print nothing)."""

from __future__ import annotations

from urllib.parse import urlsplit

from restate_server.admin.errors import ApiError, invalid_field, json_response, not_found
from restate_server.admin.extract import read_json, shape_error
from restate_server.admin.routing import Call, Router
from restate_server.http_server import Response
from restate_server.schema.ids import IdError, check_subscription_id


async def list_subscriptions(call: Call) -> Response:
    return json_response({"subscriptions": []})


async def create_subscription(call: Call) -> Response:
    body = await read_json(call.request)
    if not isinstance(body, dict):
        raise shape_error("invalid type: expected struct CreateSubscriptionRequest")
    for field in ("source", "sink"):
        if not isinstance(body.get(field), str):
            raise shape_error(f"missing field `{field}`")
    source = urlsplit(body["source"])
    if source.scheme != "kafka":
        raise ApiError(
            400,
            f"[META0009] invalid source URI '{body['source']}': must have a scheme segment, "
            "with supported schemes: [kafka].",
            "META0009",
        )
    raise ApiError(400, f"Kafka cluster '{source.netloc}' not found. Available clusters: []")


def _subscription_id(call: Call) -> str:
    value = call.params["subscription"]
    try:
        check_subscription_id(value)
    except IdError as exc:
        raise invalid_field("subscription", str(exc)) from None
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


async def create_kafka_cluster(call: Call) -> Response:
    await read_json(call.request)
    raise ApiError(400, "Kafka clusters are not supported by this server")


async def get_kafka_cluster(call: Call) -> Response:
    raise not_found("Kafka cluster", call.params["cluster_name"])


async def delete_kafka_cluster(call: Call) -> Response:
    name = call.params["cluster_name"]
    raise ApiError(404, f"not found in the schema registry: kafka cluster named '{name}'")


def add_routes(router: Router) -> None:
    router.add("POST", "/subscriptions", create_subscription)
    router.add("GET", "/subscriptions", list_subscriptions)
    router.add("GET", "/subscriptions/{subscription}", get_subscription)
    router.add("DELETE", "/subscriptions/{subscription}", delete_subscription)
    router.add("POST", "/kafka-clusters", create_kafka_cluster)
    router.add("GET", "/kafka-clusters", list_kafka_clusters)
    router.add("GET", "/kafka-clusters/{cluster_name}", get_kafka_cluster)
    router.add("PATCH", "/kafka-clusters/{cluster_name}", get_kafka_cluster)
    router.add("DELETE", "/kafka-clusters/{cluster_name}", delete_kafka_cluster)
