"""`Registry`: the table behind each extension point (task types, objectives, out-of-scope scorers, runtimes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from intentfusion.errors import ConfigError

T = TypeVar("T")


class Registry(dict[str, Any]):
    """Name -> class (or object) of one extension point.

    `register(name)` is a class decorator that files the class under `name` and sets its `name` attribute; a later
    registration of the name replaces the earlier one, so user code and tests can register their own. `lookup`
    answers an unknown name with a one-line `ConfigError` naming the config key it came from.
    """

    def __init__(self, what: str, key: str) -> None:
        super().__init__()
        self.what, self.key = what, key

    def register(self, name: str) -> Callable[[T], T]:
        def add(cls: T) -> T:
            cls.name = name  # type: ignore[attr-defined]
            self[name] = cls
            return cls

        return add

    def lookup(self, name: str, key: str | None = None) -> Any:
        if name not in self:
            raise ConfigError(key or self.key, f"unknown {self.what} {name!r}", f"one of {sorted(self)}")
        return self[name]
