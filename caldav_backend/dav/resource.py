"""What every WebDAV resource offers: a URL, whether it is a collection, and
its live properties (RFC 4918 15), looked up by Clark name.

Property tables live on the classes (a name -> getter mapping built once), not
on instances: a PROPFIND of a 10,000-object calendar builds 10,000 nodes and
must not build 10,000 dictionaries of closures too.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from .xml import Element

PropValue = str | Element | Sequence[Element] | None
"""Text, child element(s), or None when the resource has no such property."""


@dataclass(frozen=True, slots=True)
class LiveProperty:
    get: Callable[[Any], PropValue]
    # RFC 4918 9.1: allprop returns the properties defined there; extensions
    # (RFC 4791 5.2, RFC 3744 5) ask expensive or large ones to stay out.
    in_allprop: bool = True
    # The same value for every node of one ``listing_key``: a listing
    # formats it once (``multistatus.ResponseFormatter``), not per member.
    shared: bool = False


class DavNode:
    """A resource at ``href`` (an absolute, percent-encoded path)."""

    PROPERTIES: ClassVar[Mapping[str, LiveProperty]] = {}
    # Properties a client may set with PROPPATCH (if it may write).
    WRITABLE: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, href: str) -> None:
        self.href = href

    @property
    def is_collection(self) -> bool:
        return self.href.endswith("/")

    def property(self, name: str) -> PropValue:
        prop = self.PROPERTIES.get(name)
        return None if prop is None else prop.get(self)

    def allprop_names(self) -> list[str]:
        return [name for name, prop in self.PROPERTIES.items() if prop.in_allprop]

    def listing_key(self) -> Hashable | None:
        """What the values of this node's ``shared`` properties depend on
        (nodes with equal keys have equal shared values), or None: this node's
        answer is built on its own."""
        return None

    # Whether the caller may change this resource (its properties, members).
    may_write: bool = False

    async def members(self) -> Sequence[DavNode]:
        """The resources directly inside a small collection."""
        return []

    async def member_pages(self) -> AsyncGenerator[Sequence[DavNode]]:
        """The resources directly inside a collection (PROPFIND Depth 1), a
        page at a time; big collections read them from storage page by page."""
        yield await self.members()

    async def patch(self, changes: Mapping[str, str | None]) -> None:
        """Set (str) or remove (None) properties named in ``WRITABLE``, all or none."""
        raise NotImplementedError
