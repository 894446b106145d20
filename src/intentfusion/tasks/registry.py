"""The task-type registry: a name (`tasks.types: {task: name}`) -> its `TaskType` class."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from intentfusion.utils.registry import Registry

if TYPE_CHECKING:
    from intentfusion.tasks.base import TaskType

DEFAULT_TYPE = "sequence"
TASK_TYPES = Registry("task type", "tasks.types")


def register_task_type(name: str) -> Callable[[type[TaskType]], type[TaskType]]:
    """Class decorator: register a `TaskType` subclass under `name` (a later registration of the name replaces
    it, so a test or a user module can register its own)."""
    return TASK_TYPES.register(name)


def task_type(name: str | None, task: str = "?") -> type[TaskType]:
    """The class registered under `name` (None: the default, `sequence`); a `ConfigError` naming the task."""
    return TASK_TYPES.lookup(DEFAULT_TYPE if name is None else str(name), f"tasks.types.{task}")


def resolve_task_types(tasks: list[str], declared: Mapping[str, str] | None) -> dict[str, type[TaskType]]:
    """`{task: its TaskType class}` for every task, from the declared types (default `sequence`; types declared
    for tasks that are not trained, as a preset's after `tasks.names=[...]`, are ignored)."""
    declared = dict(declared or {})
    return {t: task_type(declared.get(t), t) for t in tasks}
