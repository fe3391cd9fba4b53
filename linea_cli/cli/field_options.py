"""What a command derives from a resource's fields (`linea_cli.fields`): its `create`/`update`
options, `--clear` choices, list columns, and the option names in messages about a field.

`@field_options(EVENTS, creating=True)` adds one Typer option per editable field to the command
(Typer reads `inspect.signature`, so the decorator sets the command's `__signature__`) and calls
the command with `given`, the parsed values by the name the service takes them by (None: not
given); with `clearing=True` it adds `--clear OPTION` and hands over `clear`, the field keys to
empty. An error a service raises about a field (`fields.NamesField`) is renamed to the option.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer
from typer.models import ArgumentInfo

from linea_cli.cli.completion import complete_event, complete_user, complete_venue
from linea_cli.errors import InvalidInput, shown
from linea_cli.fields import Field, NamesField, clearable, editable, listed
from linea_cli.output import Column, Kind

_COMPLETERS = {"event": complete_event, "user": complete_user, "venue": complete_venue}


def list_columns(resource: Iterable[Field]) -> tuple[Column, ...]:
    """The list's columns, in JSON/CSV order; `priority`: which a narrow terminal leaves out first."""
    return tuple(
        Column(
            field.key, justify=field.justify, kind=Kind(field.kind) if field.kind else None, priority=field.priority,
            wide=field.wide, deleted=field.key == "deleted_at",
        )
        for field in listed(resource)
    )


def _option(field: Field, *, creating: bool) -> inspect.Parameter:
    required = creating and field.required
    kind: Any = field.type if field.type in (int, float) else str  # a date is typed as text, parsed below
    help_text = (field.create_help if creating else None) or field.help
    option = typer.Option(field.flag, metavar=field.metavar, help=help_text, autocompletion=_COMPLETERS.get(field.complete or ""))
    return inspect.Parameter(
        _parameter_name(field), inspect.Parameter.KEYWORD_ONLY,
        default=inspect.Parameter.empty if required else None,
        annotation=Annotated[kind if required else kind | None, option],
    )


def _parameter_name(field: Field) -> str:
    """The option's Python name, after its flag (`--youtube-url`: youtube_url), as hand-written options were."""
    return field.flag[2:].replace("-", "_")


def _clear_option(fields: tuple[Field, ...]) -> inspect.Parameter:
    names = ", ".join(field.flag[2:] for field in fields)
    option = typer.Option("--clear", metavar="FIELD", help=f"Empty a field: {names} (repeatable).")
    return inspect.Parameter("clear", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[list[str] | None, option])


def _parsed(field: Field, value: Any) -> Any:
    from datetime import datetime

    if value is None or field.type is not datetime:
        return value
    from linea_cli.cli.context import state
    from linea_cli.timeutil import parse_datetime

    return parse_datetime(value, timezone=state().settings().timezone, field=field.flag)


def _cleared(fields: tuple[Field, ...], names: list[str] | None) -> tuple[str, ...]:
    by_name = {field.flag[2:]: field.key for field in fields}
    for name in names or ():
        if name not in by_name:
            raise InvalidInput(f"--clear {shown(name)}: choose from {', '.join(sorted(by_name))}")
    return tuple(dict.fromkeys(by_name[name] for name in names or ()))


def _is_argument(parameter: inspect.Parameter) -> bool:
    return any(isinstance(meta, ArgumentInfo) for meta in getattr(parameter.annotation, "__metadata__", ()))


def naming_options(resource: Iterable[Field]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Errors the command's services raise about a field name the field's option instead (`--lat`)."""
    flags = {field.key: field.flag for field in resource}

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def named(*args: Any, **kwargs: Any) -> Any:
            try:
                return command(*args, **kwargs)
            except NamesField as exc:
                if exc.field in flags:
                    exc.rename(flags[exc.field])
                raise

        return named

    return decorate


def field_options(
    resource: tuple[Field, ...], *, creating: bool = False, clearing: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the resource's editable fields as options (after the command's arguments); the command
    takes `given` (and with `clearing`, `clear`) instead. See the module's docstring."""
    fields = editable(resource)
    emptied = clearable(resource)

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        own = [
            parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for parameter in inspect.signature(command, eval_str=True).parameters.values()
            if parameter.name not in ("given", "clear")
        ]
        arguments = [parameter for parameter in own if _is_argument(parameter)]
        added = [_option(field, creating=creating) for field in fields] + ([_clear_option(emptied)] if clearing else [])
        rest = [parameter for parameter in own if not _is_argument(parameter)]
        clash = {parameter.name for parameter in own} & {parameter.name for parameter in added}
        if clash:
            raise TypeError(f"{command.__name__} declares {', '.join(sorted(clash))} itself: @field_options adds them")

        def with_fields(**kwargs: Any) -> Any:
            given = {field.name_given: _parsed(field, kwargs.pop(_parameter_name(field))) for field in fields}
            if clearing:
                kwargs["clear"] = _cleared(emptied, kwargs.pop("clear"))
            return command(given=given, **kwargs)

        functools.update_wrapper(with_fields, command)
        wrapped = naming_options(resource)(with_fields)
        # Typer builds the command's parameters from this signature (inspect.signature reads it).
        wrapped.__signature__ = inspect.Signature([*arguments, *added, *rest])  # type: ignore[attr-defined]
        wrapped.__annotations__ = {}
        return wrapped

    return decorate
