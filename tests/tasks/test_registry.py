"""The task-type registry as the only place that knows the types: no type-name comparisons elsewhere in `src/`, unknown
types named in one line, and a task's column read as its declared type by the file loaders."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import intentfusion
from intentfusion.errors import ConfigError, DataSourceError, one_line
from intentfusion.tasks import TASK_TYPES, MultiLabelTask, SequenceTask, TokenTask, task_type

SRC = Path(intentfusion.__file__).resolve().parent
TYPE_NAME_TEST = re.compile(r"""(==|!=) *['"](token|sequence|multilabel)['"]""")


def test_no_module_outside_tasks_compares_type_names() -> None:
    offenders = [f"{path.relative_to(SRC)}:{n}" for path in SRC.rglob("*.py") if path.parent.name != "tasks"
                 for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if TYPE_NAME_TEST.search(line)]
    assert not offenders, offenders
    assert TYPE_NAME_TEST.search('if kind == "token":')  # the pattern finds what it is meant to find


def test_the_built_in_types_are_registered_under_their_names() -> None:
    assert {"sequence": SequenceTask, "token": TokenTask, "multilabel": MultiLabelTask}.items() <= TASK_TYPES.items()
    assert task_type(None) is SequenceTask
    with pytest.raises(ConfigError) as err:
        task_type("regresion", "score")
    assert one_line(err.value).startswith("error: tasks.types.score: unknown task type 'regresion'; expected one of")


def _slots_jsonl(path: Path, as_list: bool, bad_line: int | None = None) -> Path:
    rows = []
    for i in range(40):
        words, tags = ["book", "a", "table", "in", "paris"], ["O", "O", "O", "O", "B-city"]
        if i == bad_line:
            tags = tags[:-1]
        rows.append({"text": " ".join(words), "intent": "book" if i % 2 else "cancel",
                     "slots": tags if as_list else " ".join(tags)})
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize("as_list", [False, True], ids=["space-separated", "json-list"])
def test_a_token_column_loads_from_the_task_declaration_alone(cfg_factory, tmp_path: Path, as_list: bool) -> None:
    import hydra

    data = _slots_jsonl(tmp_path / "slots.jsonl", as_list)
    cfg = cfg_factory("data=jsonl", f"data.source.train={data}", "tasks=intent_slots")  # no token_columns
    dm = hydra.utils.instantiate(cfg.data, task_types=dict(cfg.tasks.types))
    dm.setup()
    assert dm.label_names["slots"] == ["O", "B-city"] and dm.task_types == {"intent": "sequence", "slots": "token"}


def test_a_tag_count_mismatch_names_the_file_and_line(tmp_path: Path) -> None:
    from intentfusion.data.sources import load_source

    data = _slots_jsonl(tmp_path / "slots.jsonl", as_list=False, bad_line=6)
    with pytest.raises(DataSourceError) as err:
        load_source("table", train=str(data), task_types={"slots": "token"})
    assert f"{data}:7: column 'slots'" in one_line(err.value) and "4 BIO tag(s) for 5 word(s)" in one_line(err.value)
