"""Handlers registered per message type, instead of if/elif chains."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from evproto.errors import UnknownMessageType
from evproto.schema import Message, MsgType

__all__ = ["Router"]

Handler = Callable[..., Awaitable[Any]]  # (msg, *context) -> reply
H = TypeVar("H", bound=Handler)


class Router:
    """``@router.on(MsgType.STATUS)`` registers a handler; ``dispatch`` calls it."""

    def __init__(self) -> None:
        self._handlers: dict[MsgType, Handler] = {}

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

    async def dispatch(self, msg: Message, *args: Any) -> Any:
        handler = self._handlers.get(msg.TYPE)
        if handler is None:
            raise UnknownMessageType(f"no handler for {msg.TYPE.value} here")
        return await handler(msg, *args)
