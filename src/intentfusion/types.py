"""Constants and types shared by every layer (data, models, evaluation, inference); imports nothing of the package."""

from __future__ import annotations

from typing import Any

IGNORE_INDEX = -100  # a label that is missing (another source's task) or not scored (a continuation subword)
Record = dict[str, Any]  # one example: {"text": str, <task>: label or None, "source": name, ...}
Records = list[Record]
