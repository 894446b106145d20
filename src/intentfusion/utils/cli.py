"""`key=value` command lines for the non-Hydra entry points (`intentfusion-predict|export|serve`).

One convention for all of them: options are `key=value` (values in OmegaConf / YAML syntax, e.g.
`'fallbacks={action: {threshold: 0.7, fallback: request_more_info}}'`), `help` / `--help` / `-h` prints the
usage and exits 0, and a bad option is a `ConfigError` naming it (reported by `intentfusion.errors.exit_on_user_error`
as one `error: ...` line, exit code 1).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from omegaconf import OmegaConf

from intentfusion.errors import ConfigError, UserError

HELP_ARGS = ("help", "--help", "-h")
_NULL = ("", "null", "~")
_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a mapping",
               list: "a list, e.g. [a, b]"}


def wants_help(args: Sequence[str]) -> bool:
    """Whether the command line asks for the usage."""
    return any(a in HELP_ARGS for a in args)


def _yaml_value(raw: str) -> Any:
    return OmegaConf.to_container(OmegaConf.from_dotlist([f"value={raw}"]), resolve=True)["value"]


def _typed(key: str, raw: str, kind: type | None) -> Any:
    """`raw` as `kind`: strings stay as typed (`input=-`, `precision=32`, `column=yes`), the rest is YAML."""
    if kind is str:
        return raw
    try:
        value = _yaml_value(raw)
    except Exception as err:  # omegaconf's grammar errors
        raise ConfigError(f"{key}={raw}", f"not a valid value ({' '.join(str(err).split()[:12])})",
                          "OmegaConf / YAML syntax, e.g. key=1, key=true, 'key={a: 1}'") from None
    if kind is None or value is None:
        return value
    ok = {
        bool: isinstance(value, bool),
        int: isinstance(value, int) and not isinstance(value, bool),
        float: isinstance(value, int | float) and not isinstance(value, bool),
        dict: isinstance(value, dict),
    }.get(kind, isinstance(value, kind))
    if not ok:
        raise ConfigError(f"{key}={raw}", f"{type(value).__name__} value", _TYPE_NAMES.get(kind, kind.__name__))
    return float(value) if kind is float else value


def parse_options(args: Sequence[str], defaults: Mapping[str, Any], *, types: Mapping[str, type] | None = None,
                  required: Sequence[str] = (), usage: str | None = None) -> dict[str, Any]:
    """`defaults` updated from `key=value` arguments.

    A key's type is `types[key]`, else that of its default (none when the default is None): a string option keeps
    the text as typed; a bool / int / float / dict option is parsed as YAML and must have that type. `key=` or
    `key=null` gives None to an option whose default is None. Raises `ConfigError` naming the argument for an
    argument that is not `key=value`, an unknown key, a value of the wrong type, or a `required` option left unset
    (`usage`, a one-line example command, goes into that message).
    """
    types = dict(types or {})
    out = dict(defaults)
    unknown: list[str] = []
    for arg in args:
        key, sep, raw = arg.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(arg, "not a key=value option", f"key=value with a key in {sorted(defaults)}")
        if key not in defaults:
            unknown.append(key)
            continue
        kind = types.get(key, None if defaults[key] is None else type(defaults[key]))
        if defaults[key] is None and raw.strip() in _NULL:
            out[key] = None
        else:
            out[key] = _typed(key, raw, kind)
            if out[key] is None and defaults[key] is not None:
                raise ConfigError(f"{key}={raw}", "no value", _TYPE_NAMES.get(kind, "a value") if kind else "a value")
    if unknown:
        raise ConfigError(", ".join(dict.fromkeys(unknown)), "unknown option" + ("s" if len(set(unknown)) > 1 else ""),
                          f"one of {sorted(defaults)}")
    for key in required:
        if out.get(key) in (None, ""):
            raise ConfigError(key, "missing required option", f"{key}=..." + (f" (usage: {usage})" if usage else ""))
    return out


@contextlib.contextmanager
def user_errors_from(*types: type[BaseException]) -> Iterator[None]:
    """Re-raise `types` (a `ValueError` from a layer that does not raise `intentfusion.errors` yet, a missing
    optional dependency, ...) as a `UserError`, so that `exit_on_user_error` reports them as one line."""
    try:
        yield
    except UserError:
        raise
    except types as err:
        raise UserError(" ".join(str(err).split()) or type(err).__name__) from err
