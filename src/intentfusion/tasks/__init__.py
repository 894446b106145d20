"""Task types: one module per kind of label, registered by name (`tasks.types: {task: name}`).

Built in: `sequence` (one label per utterance), `token` (one BIO tag per word: slots, entities), `multilabel`
(a set of labels per utterance). A new type is a `TaskType` subclass decorated with `register_task_type`
(docs/architecture.md, "Where each kind of change goes").
"""

from intentfusion.tasks.base import EncodeContext, Features, ReportContext, TaskType, TextContext
from intentfusion.tasks.multilabel import MultiLabelTask
from intentfusion.tasks.registry import TASK_TYPES, register_task_type, resolve_task_types, task_type
from intentfusion.tasks.sequence import SequenceTask
from intentfusion.tasks.token import TokenTask

__all__ = [
    "TASK_TYPES",
    "EncodeContext",
    "Features",
    "MultiLabelTask",
    "ReportContext",
    "SequenceTask",
    "TaskType",
    "TextContext",
    "TokenTask",
    "register_task_type",
    "task_type",
    "resolve_task_types",
]
