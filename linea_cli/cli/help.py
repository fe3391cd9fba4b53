"""How linea's command line talks about itself: help text without type noise, usage errors in
linea's style (`error: ...` and `hint: ...`), the same everywhere because both are derived from
the command tree here rather than written per command.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Any

import typer

# Click's UsageError: Typer vendors Click and exports only this subclass of it.
UsageError: type[Exception] = typer.BadParameter.__base__  # type: ignore[assignment]

# Placeholders for values by Python type, where an option names none itself.
_METAVARS = {int: "N", float: "NUMBER", str: "TEXT"}


def tidy_help(command: Any) -> None:
    """Give every parameter under `command` a plain placeholder (`N`, `TEXT`, `DRAFT|PUBLISHED`)
    instead of Typer's `<str>` / `<int range>`, ranges in words, each command's whole first
    help line in its group's list (Click cuts it at 45 characters), and its example unwrapped."""
    for sub in getattr(command, "commands", {}).values():
        first_line = (sub.help or "").strip().split("\n\n")[0]
        if first_line and not sub.short_help:
            sub.short_help = " ".join(first_line.split())
        if sub.help and "\n\nExample: " in sub.help:
            # An example is a command line to copy: shown as written, on one line (rewrapped, it
            # ran half a command when pasted, and `--skip-invalid` broke at its hyphen). \b is
            # Click's mark for a paragraph it must not rewrap.
            sub.help = sub.help.replace("\n\nExample: ", "\n\n\b\nExample: ")
        tidy_help(sub)
    for param in getattr(command, "params", ()):
        if param.param_type_name == "argument":
            param.metavar = param.metavar or param.name.upper()
            param.display_type_rich = _no_type  # the metavar says it: `SLUG|ID`, not `SLUG|ID <str>`
        elif param.param_type_name == "option" and not param.is_flag:
            param.metavar = param.metavar or _metavar(param)
            param._get_number_range_help_str = _range_in_words(param)


def _no_type(ctx: Any) -> None:
    return None


def _metavar(param: Any) -> str:
    descriptor = param.type_descriptor
    if descriptor.is_choice:
        return "|".join(_choice_text(choice) for choice in descriptor.choices or ())
    annotation = getattr(descriptor, "annotation", None)
    return _METAVARS.get(annotation, param.name.upper())


def _choice_text(choice: Any) -> str:
    return str(choice.value) if isinstance(choice, Enum) else str(choice)


def _range_in_words(param: Any) -> Any:
    low, high = getattr(param, "min", None), getattr(param, "max", None)

    def words() -> str | None:
        if low is None and high is None:
            return None
        if high is None:
            return f"{low} or more"
        if low is None:
            return f"at most {high}"
        return f"{low} to {high}"

    return words


# --- usage errors ------------------------------------------------------------------------------

_PYDANTIC_REASONS = (
    (re.compile(r"^Input should be a valid integer.*", re.S), "not a whole number"),
    (re.compile(r"^Input should be a valid number.*", re.S), "not a number"),
    (re.compile(r"^Input should be (?:a )?finite number.*", re.S), "not a finite number"),
    (re.compile(r"^Input should be greater than or equal to ([^\s,]+).*", re.S), r"must be at least \1"),
    (re.compile(r"^Input should be greater than ([^\s,]+).*", re.S), r"must be more than \1"),
    (re.compile(r"^Input should be less than or equal to ([^\s,]+).*", re.S), r"must be at most \1"),
    (re.compile(r"^Input should be less than ([^\s,]+).*", re.S), r"must be less than \1"),
)
_CHOICE = re.compile(r"^(?:Value error, )?(?P<value>.*) is not one of ", re.S)


def usage_error_lines(exc: Any, *, command_path: str = "linea") -> list[str] | None:
    """`error: ...` and `hint: ...` for a Click usage error; None for help shown because a group was
    called without a command (`linea events`), which Click raises as a usage error too.
    `command_path` names the command when the error carries no context of its own."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        return None
    ctx = getattr(exc, "ctx", None)
    command_path = ctx.command_path if ctx is not None else command_path
    see_help = f"see `{command_path} --help`"
    param = getattr(exc, "param", None)
    kind = type(exc).__name__
    if kind == "NoSuchOption":
        possibilities = sorted(getattr(exc, "possibilities", None) or ())
        hint = f"did you mean {' or '.join(possibilities)}? ({see_help})" if possibilities else see_help
        return [f"error: no such option: {exc.option_name}", f"hint: {hint}"]
    if kind == "MissingParameter":
        what = "argument" if param is not None and param.param_type_name == "argument" else "option"
        return [f"error: missing {what} {_param_name(param)}", f"hint: {see_help}"]
    if kind == "BadParameter" and param is not None:
        return [f"error: invalid value for {_param_name(param)}: {_reason(exc.message, param)}", f"hint: {see_help}"]
    message = _sentence(getattr(exc, "message", str(exc)))
    if message.startswith("no such command"):
        return [f"error: {message}", f"hint: `{command_path} --help` lists the commands"]
    return [f"error: {message}", f"hint: {see_help}"]


def _param_name(param: Any) -> str:
    if param is None:
        return "a parameter"
    if param.param_type_name == "option":
        return max(param.opts, key=len)
    return param.metavar or param.name.upper()


def _reason(message: str, param: Any) -> str:
    choice = _CHOICE.match(message)
    if choice and param.type_descriptor.is_choice:
        choices = [_choice_text(c) for c in param.type_descriptor.choices or ()]
        any_case = "" if param.type_descriptor.case_sensitive else " (any case)"
        return f"{choice.group('value')} is not one of {', '.join(choices)}{any_case}"
    message = message.removeprefix("Value error, ")
    for pattern, words in _PYDANTIC_REASONS:
        if pattern.match(message):
            return pattern.sub(words, message).rstrip(".")
    return _sentence(message)


def _sentence(message: str) -> str:
    """Click's capitalized, full-stopped message as the rest of an `error:` line."""
    message = message.strip().rstrip(".")
    return message[:1].lower() + message[1:]
