"""Grouping items into AWS batch calls bounded by entry count and total size (PutEvents, SendMessageBatch)."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

T = TypeVar("T")


def chunk_by_count_and_size(
    items: Iterable[T], *, size_of: Callable[[T], int], max_items: int, max_bytes: int
) -> list[list[T]]:
    """Consecutive groups of at most `max_items` items whose sizes add up to at most `max_bytes` (an item
    larger than `max_bytes` on its own still gets a group of its own: the call then reports it)."""
    chunks: list[list[T]] = []
    size = 0
    for item in items:
        item_size = size_of(item)
        if not chunks or len(chunks[-1]) == max_items or size + item_size > max_bytes:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += item_size
    return chunks
