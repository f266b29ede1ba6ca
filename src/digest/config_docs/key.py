"""A documented configuration key, and a titled group of them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Key:
    name: str
    meaning: str
    default: str | None = None
    note: str | None = None
    default_text: str | None = None
    example: str | None = None
    set_in_example: bool = False

    @property
    def default_markdown(self) -> str:
        if self.default is not None:
            return f"`{self.default}`" + (f" ({self.note})" if self.note else "")
        return self.default_text or "none"

    @property
    def example_value(self) -> str:
        return self.example if self.example is not None else (self.default or "")


@dataclass(frozen=True)
class Group:
    title: str
    keys: tuple[Key, ...]
