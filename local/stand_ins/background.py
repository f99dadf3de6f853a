"""The context-manager protocol shared by the local stack's background servers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from types import TracebackType


class BackgroundService:
    """`with Service(...) as service:` starts it and always stops it; subclasses define start() and stop()."""

    def start(self) -> Self:
        """Start serving in the background; return self."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop serving; safe to call more than once."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
