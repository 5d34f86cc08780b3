"""Handlers registered per message type, instead of if/elif chains.

:class:`Router` awaits its handlers (a task reading messages); :class:`CallbackRouter`
calls plain functions, for messages handed over inside the event loop's read
callback (:meth:`evproto.connection.FramedConnection.deliver_to`), where nothing
may be awaited.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from evproto.errors import UnknownMessageType
from evproto.schema import Message, MsgType

__all__ = ["CallbackRouter", "Router"]

Handler = Callable[..., Awaitable[Any]]  # (msg, *context) -> reply
Callback = Callable[..., Any]  # (msg, *context) -> reply, without awaiting
H = TypeVar("H", bound=Callable[..., Any])


class _Handlers(Generic[H]):
    """``@router.on(MsgType.STATUS)`` registers a handler, one per type."""

    def __init__(self) -> None:
        self._handlers: dict[MsgType, H] = {}

    def on(self, kind: MsgType) -> Callable[[H], H]:
        def register(handler: H) -> H:
            if kind in self._handlers:
                raise ValueError(f"a handler for {kind.value} is already registered")
            self._handlers[kind] = handler
            return handler

        return register

    @property
    def kinds(self) -> frozenset[MsgType]:
        return frozenset(self._handlers)

    def _handler_for(self, msg: Message) -> H:
        handler = self._handlers.get(msg.TYPE)
        if handler is None:
            raise UnknownMessageType(f"no handler for {msg.TYPE.value} here")
        return handler


class Router(_Handlers[Handler]):
    """``dispatch`` awaits the handler registered for the message's type."""

    async def dispatch(self, msg: Message, *args: Any) -> Any:
        return await self._handler_for(msg)(msg, *args)


class CallbackRouter(_Handlers[Callback]):
    """``dispatch`` calls the handler registered for the message's type and returns."""

    def dispatch(self, msg: Message, *args: Any) -> Any:
        return self._handler_for(msg)(msg, *args)
