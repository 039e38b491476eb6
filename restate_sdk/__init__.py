"""restate_sdk: a pure-Python Restate SDK (services, virtual objects, workflows).

Mirrors the official ``restate-sdk`` API so that moving code is a matter of the
import line::

    import restate_sdk as restate

    greeter = restate.Service("Greeter")

    @greeter.handler()
    async def greet(ctx: restate.Context, name: str) -> str:
        return f"Hello, {name}!"

    app = restate.app([greeter])
"""

from restate_sdk.combinators import as_completed, gather, select, wait_completed
from restate_sdk.context import (
    Context,
    DurablePromise,
    ObjectContext,
    ObjectSharedContext,
    Request,
    RestateDurableCallFuture,
    RestateDurableFuture,
    RestateDurableSleepFuture,
    SendHandle,
    WorkflowContext,
    WorkflowSharedContext,
)
from restate_sdk.definitions import Service, VirtualObject, Workflow
from restate_sdk.endpoint import Endpoint, app
from restate_sdk.exceptions import (
    RetryableError,
    SdkInternalBaseException,
    TerminalError,
    is_internal_exception,
)
from restate_sdk.retry import InvocationRetryPolicy, RunOptions
from restate_sdk.serde import BytesSerde, DefaultSerde, JsonSerde, Serde

__all__ = [
    "BytesSerde",
    "Context",
    "DefaultSerde",
    "DurablePromise",
    "Endpoint",
    "InvocationRetryPolicy",
    "JsonSerde",
    "ObjectContext",
    "ObjectSharedContext",
    "Request",
    "RestateDurableCallFuture",
    "RestateDurableFuture",
    "RestateDurableSleepFuture",
    "RetryableError",
    "RunOptions",
    "SdkInternalBaseException",
    "SendHandle",
    "Serde",
    "Service",
    "TerminalError",
    "VirtualObject",
    "Workflow",
    "WorkflowContext",
    "WorkflowSharedContext",
    "app",
    "as_completed",
    "gather",
    "is_internal_exception",
    "select",
    "wait_completed",
]

__version__ = "0.1.0"
