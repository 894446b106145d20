"""Errors a user can fix from the config, the data or the command line, and the one way they are reported.

Every entry point (`train.py`, `evaluate.py`, the `intentfusion-*` console scripts) ends a run that raised one of
`USER_ERRORS` (or an error raised from one) with exit code 1 and a single stderr line,
``error: <where>: <what>; expected <what>``, without a traceback (``HYDRA_FULL_ERROR=1`` re-raises, traceback
included). Everything else is a bug and keeps its traceback.
This module imports nothing of the package, so every layer can raise these.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """The root of the errors the user can fix: `UserError(where, what, expected)` or `UserError(message)`."""

    def __init__(self, where: str, what: str | None = None, expected: str | None = None) -> None:
        message = where if what is None else f"{where}: {what}" + (f"; expected {expected}" if expected else "")
        super().__init__(message)


class ConfigError(UserError, ValueError):
    """A config key holds a value the framework cannot use (`hparams.lr=abc`, an unknown phase key, ...)."""


class DataError(UserError, ValueError):
    """Input data does not match what the config declares (the root of the data layer's errors)."""


class DataSourceError(DataError):
    """A data file or folder is malformed: a bad row, bytes that are not UTF-8, a missing column."""


class DataNotFoundError(DataSourceError, FileNotFoundError):
    """A data file or folder does not exist."""


class CheckpointError(UserError, ValueError):
    """A checkpoint or export that a tool was pointed at is not intentfusion's, or not in a format it reads."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """A checkpoint or export that a tool was pointed at does not exist."""


class BackboneUnavailableError(UserError, RuntimeError):
    """A backbone is neither on disk nor downloadable (offline, or an unknown hub id)."""


USER_ERRORS: tuple[type[BaseException], ...] = (UserError, FileNotFoundError)


def user_error_of(err: BaseException) -> BaseException | None:
    """`err`, or the user error it was raised from (Hydra's `instantiate` wraps what a constructor raised), or None."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, USER_ERRORS):
            return current
        seen.add(id(current))
        current = current.__cause__
    return None


def one_line(err: BaseException) -> str:
    """`error: <message>` on a single line."""
    return "error: " + " ".join(str(err).split())


def exit_on_user_error(fn: F) -> F:
    """Run `fn`; a `USER_ERRORS` exception ends the process with exit code 1 and `one_line` on stderr.

    With ``HYDRA_FULL_ERROR=1`` in the environment the exception propagates (and its traceback is shown).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            cause = user_error_of(err)
            if cause is None or os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(one_line(cause), file=sys.stderr)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]
