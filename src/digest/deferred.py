"""Stand-ins for modules a library imports at its top but this program seldom uses.

premailer imports requests only to fetch external stylesheets (never done
here: allow_network=False), feedparser imports chardet only to guess the
encoding of a body whose declared ones all fail. Each costs a run tens of
milliseconds it almost never needs. While such a library is imported, a
stand-in sits in ``sys.modules`` under that name; the library keeps a
reference to it, and the first attribute it looks up on it imports the real
module. The stand-in leaves ``sys.modules`` as soon as the import is done,
so nobody else ever meets it.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Deferred(types.ModuleType):
    """Stands in for a module; imports the real one when anything is looked up on it."""

    def __getattr__(self, name: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


@contextmanager
def deferred(*names: str) -> Iterator[None]:
    """Stand-ins for ``names`` (top-level modules) while the body imports a library that uses them.

    A name already imported is left alone, and so is one that is not
    installed: the library must see it missing, as it would without this.
    """
    placed = []
    for name in names:
        if name in sys.modules or importlib.util.find_spec(name) is None:
            continue
        stand_in = Deferred(name)
        sys.modules[name] = stand_in
        placed.append(stand_in)
    try:
        yield
    finally:
        for stand_in in placed:
            if sys.modules.get(stand_in.__name__) is stand_in:
                del sys.modules[stand_in.__name__]
