"""An ingress client: call handlers from outside Restate with the handlers' own types."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar
from urllib.parse import quote

import aiohttp

from restate_sdk.context import HandlerFn
from restate_sdk.definitions import handler_info

I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741


class HttpError(Exception):
    def __init__(self, status_code: int, message: str, body: bytes) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message
        self.body = body


@dataclass
class SendReceipt:
    invocation_id: str
    status: str
    status_code: int


class RestateClient:
    def __init__(self, session: aiohttp.ClientSession, ingress_url: str) -> None:
        self._session = session
        self._url = ingress_url.rstrip("/")

    async def _post(
        self,
        path: str,
        body: bytes,
        idempotency_key: str | None,
        headers: dict[str, str] | None,
    ) -> tuple[int, bytes]:
        # A handler without input accepts no body and no content type.
        request_headers = {"content-type": "application/json"} if body else {}
        request_headers.update(headers or {})
        if idempotency_key is not None:
            request_headers["idempotency-key"] = idempotency_key
        async with self._session.post(
            self._url + path,
            data=body or None,
            headers=request_headers,
            skip_auto_headers=() if body else ("Content-Type",),
        ) as resp:
            payload = await resp.read()
            if resp.status >= 300:
                message = payload.decode("utf-8", "replace")
                with suppress(ValueError):
                    message = json.loads(payload).get("message", message)
                raise HttpError(resp.status, message, payload)
            return resp.status, payload

    @staticmethod
    def _path(service: str, key: str | None, handler: str) -> str:
        if key is None:
            return f"/{service}/{handler}"
        return f"/{service}/{quote(key, safe='')}/{handler}"

    async def _call(
        self,
        tpe: HandlerFn[I, O],
        key: str | None,
        arg: I,
        idempotency_key: str | None,
        headers: dict[str, str] | None,
    ) -> O:
        info = handler_info(tpe)
        body = info.serialize_input(arg)
        _, payload = await self._post(
            self._path(info.service_name, key, info.name), body, idempotency_key, headers
        )
        return info.output_serde.deserialize(payload)  # type: ignore[no-any-return]

    async def _send(
        self,
        tpe: HandlerFn[I, O],
        key: str | None,
        arg: I,
        send_delay: timedelta | None,
        idempotency_key: str | None,
        headers: dict[str, str] | None,
    ) -> SendReceipt:
        info = handler_info(tpe)
        body = info.serialize_input(arg)
        path = self._path(info.service_name, key, info.name) + "/send"
        if send_delay is not None:
            path += f"?delay={int(send_delay.total_seconds() * 1000)}ms"
        status, payload = await self._post(path, body, idempotency_key, headers)
        answer = json.loads(payload)
        return SendReceipt(answer["invocationId"], answer["status"], status)

    async def service_call(
        self,
        tpe: HandlerFn[I, O],
        arg: I,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> O:
        return await self._call(tpe, None, arg, idempotency_key, headers)

    async def object_call(
        self,
        tpe: HandlerFn[I, O],
        key: str,
        arg: I,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> O:
        return await self._call(tpe, key, arg, idempotency_key, headers)

    # a workflow is addressed like an object: by its key
    workflow_call = object_call

    async def service_send(
        self,
        tpe: HandlerFn[I, O],
        arg: I,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendReceipt:
        return await self._send(tpe, None, arg, send_delay, idempotency_key, headers)

    async def object_send(
        self,
        tpe: HandlerFn[I, O],
        key: str,
        arg: I,
        send_delay: timedelta | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> SendReceipt:
        return await self._send(tpe, key, arg, send_delay, idempotency_key, headers)

    # a workflow is addressed like an object: by its key
    workflow_send = object_send

    async def generic_call(
        self,
        service: str,
        handler: str,
        arg: bytes,
        key: str | None = None,
        idempotency_key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> bytes:
        _, payload = await self._post(
            self._path(service, key, handler), arg, idempotency_key, headers
        )
        return payload

    async def attach(self, invocation_id: str) -> bytes:
        async with self._session.get(f"{self._url}/restate/invocation/{invocation_id}/attach") as r:
            payload = await r.read()
            if r.status >= 300:
                raise HttpError(r.status, payload.decode("utf-8", "replace"), payload)
            return payload


@asynccontextmanager
async def create_client(
    ingress_url: str, headers: dict[str, str] | None = None
) -> AsyncIterator[RestateClient]:
    async with aiohttp.ClientSession(headers=headers or {}) as session:
        yield RestateClient(session, ingress_url)


__all__ = ["HttpError", "RestateClient", "SendReceipt", "create_client"]
