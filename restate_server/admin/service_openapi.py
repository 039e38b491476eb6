"""``GET /services/{name}/openapi``: an OpenAPI 3.1 sketch of a service's ingress endpoints.

A simplified version of what the real server generates: call and send operations for
each public handler (``/restate/call|send/{service}[/{key}]/{handler}``), request and
response content types from the handler rules, JSON schemas where the SDK gave them.
"""

from __future__ import annotations

from typing import Any

from restate_server.schema.model import HandlerSchema, ServiceSchema

_DOCS = "https://docs.restate.dev/invoke/http"

_COMPONENTS: dict[str, Any] = {
    "parameters": {
        "delay": {
            "description": "Specify the delay to execute the operation, for more info check the "
            "[delay documentation](https://docs.restate.dev/invoke/http#sending-a-delayed-message-over-http)",
            "example": "10s",
            "in": "query",
            "name": "delay",
            "required": False,
            "schema": {"type": "string"},
        },
        "idempotencyKeyHeader": {
            "description": "Idempotency key to execute the request, for more details checkout the "
            "[idempotency key documentation](https://docs.restate.dev/invoke/http#invoke-a-handler-idempotently).",
            "in": "header",
            "name": "idempotency-key",
            "required": False,
            "schema": {"type": "string"},
        },
        "key": {"in": "path", "name": "key", "required": True, "schema": {"type": "string"}},
    },
    "responses": {
        "GenericError": {
            "content": {
                "application/json": {
                    "example": {
                        "code": 500,
                        "message": "Internal server error",
                        "source": "invocation",
                    },
                    "schema": {"$ref": "#/components/schemas/RestateError"},
                }
            },
            "description": "Error response",
        },
        "Send": {
            "content": {
                "application/json": {
                    "schema": {
                        "additionalProperties": False,
                        "properties": {
                            "executionTime": {"format": "date-time", "type": "string"},
                            "invocationId": {"type": "string"},
                            "status": {
                                "enum": ["Accepted", "PreviouslyAccepted"],
                                "type": "string",
                            },
                        },
                        "required": ["invocationId", "status"],
                        "title": "RestateSendResponse",
                        "type": "object",
                    }
                }
            },
            "description": "Send response",
        },
    },
    "schemas": {
        "RestateError": {
            "additionalProperties": False,
            "description": "Generic error used by Restate to propagate Terminal errors/exceptions "
            "back to callers",
            "properties": {
                "code": {"title": "error code", "type": "number"},
                "message": {"title": "Error message", "type": "string"},
                "metadata": {
                    "additionalProperties": {"type": "string"},
                    "title": "Additional metadata map",
                    "type": "object",
                },
                "source": {"enum": ["ingress", "invocation"], "type": "string"},
            },
            "required": ["message"],
            "title": "Error",
            "type": "object",
        }
    },
}


def _request_body(handler: HandlerSchema) -> dict[str, Any] | None:
    if handler.input_content_type is None:
        return None
    media: dict[str, Any] = {}
    if handler.input_json_schema is not None:
        media["schema"] = handler.input_json_schema
    return {"content": {handler.input_content_type: media}, "required": handler.input_required}


def _ok_response(handler: HandlerSchema) -> dict[str, Any]:
    if handler.output_content_type is None:
        return {"description": ""}
    media: dict[str, Any] = {}
    if handler.output_json_schema is not None:
        media["schema"] = handler.output_json_schema
    return {"content": {handler.output_content_type: media}, "description": ""}


def _operation(
    service: ServiceSchema, handler: HandlerSchema, send: bool, keyed: bool
) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = []
    if keyed:
        parameters.append({"$ref": "#/components/parameters/key"})
    parameters.append({"$ref": "#/components/parameters/idempotencyKeyHeader"})
    if send:
        parameters.append({"$ref": "#/components/parameters/delay"})
    verb = "Send request to" if send else "Call"
    operation: dict[str, Any] = {
        "description": handler.documentation
        or f"{verb} {service.name} handler {handler.name}"
        + ("" if send else " and wait for response"),
        "operationId": handler.name + ("Send" if send else ""),
        "parameters": parameters,
        "summary": handler.name,
    }
    body = _request_body(handler)
    if body is not None:
        operation["requestBody"] = body
    if send:
        operation["responses"] = {
            "200": {"$ref": "#/components/responses/Send"},
            "202": {"$ref": "#/components/responses/Send"},
            "default": {"$ref": "#/components/responses/GenericError"},
        }
        operation["tags"] = ["Send"]
    else:
        operation["responses"] = {
            "200": _ok_response(handler),
            "default": {"$ref": "#/components/responses/GenericError"},
        }
    return operation


def service_openapi(service: ServiceSchema, ingress_endpoint: str | None) -> dict[str, Any]:
    keyed = service.ty != "Service"
    paths: dict[str, Any] = {}
    for handler in service.handlers.values():
        public = handler.public if handler.public is not None else service.public
        if not public:
            continue
        key = "/{key}" if keyed else ""
        paths[f"/restate/call/{service.name}{key}/{handler.name}"] = {
            "post": _operation(service, handler, send=False, keyed=keyed)
        }
        paths[f"/restate/send/{service.name}{key}/{handler.name}"] = {
            "post": _operation(service, handler, send=True, keyed=keyed)
        }
    info: dict[str, Any] = {"title": service.name, "version": str(service.revision)}
    if service.documentation is not None:
        info["description"] = service.documentation
    document: dict[str, Any] = {
        "components": _COMPONENTS,
        "info": info,
        "openapi": "3.1.0",
        "paths": paths,
    }
    if ingress_endpoint:
        document["servers"] = [{"description": "Restate Ingress URL", "url": ingress_endpoint}]
    document["tags"] = [
        {
            "description": "Request response to handler",
            "externalDocs": {"url": _DOCS},
            "name": "Request Response",
        },
        {"description": "Send to handler", "externalDocs": {"url": _DOCS}, "name": "Send"},
    ]
    return document
