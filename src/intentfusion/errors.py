"""Errors a user can fix from the config or the data, reported as one readable line without a traceback."""

from __future__ import annotations


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types `train.py`/`evaluate.py` report as one line (imports kept lazy for startup)."""
    from intentfusion.data.datamodule import DataError
    from intentfusion.models.backbone import BackboneUnavailableError
    from intentfusion.phases.plan import PhaseConfigError

    return (BackboneUnavailableError, DataError, PhaseConfigError, FileNotFoundError)


def one_line(err: BaseException) -> str:
    """`error: <message>` on a single line."""
    return "error: " + " ".join(str(err).split())
