"""Option types shared by every command group, and the output options, declared once.

A command that prints records takes its output options from `@output_options(...)` instead of
declaring `--format/-f`, `--json` and `--fields` (and for a list `--limit`, `--after`, `--all`)
itself: the decorator adds them to the command's signature, which Typer reads, and hands the
command one `Output` (its parameter `out: Output`), as gh's cmdutil adds `--json` to a command
from the fields it declares. A record the command returns is rendered with the declared title;
`out.change(...)` runs a change in one unit of work and checks `--fields` before its commit.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from linea_cli.output import (
    ColumnSpec,
    OutputFormat,
    Picture,
    render,
    render_record,
    render_summary,
    select_columns,
)

if TYPE_CHECKING:
    from sqlmodel import Session

    from linea_cli.services.actors import Actor
    from linea_cli.services.pagination import Page

FormatOption = Annotated[
    OutputFormat,
    typer.Option("--format", "-f", help="Output format.", case_sensitive=False, show_default=True),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Shorthand for --format json.")]
LimitOption = Annotated[int, typer.Option("--limit", min=1, max=10000, help="Rows per page.")]
AfterOption = Annotated[
    str | None, typer.Option("--after", metavar="CURSOR", help="Continue after this cursor (printed by the previous page).")
]
FieldsOption = Annotated[
    str | None,
    typer.Option(
        "--fields", metavar="FIELD,...",
        help="Only these fields, in this order, in every format (e.g. --fields slug,status,id); a wrong name lists the valid ones.",
    ),
]
AllOption = Annotated[
    bool,
    typer.Option(
        "--all", help="Every page, streamed in constant memory (JSON keeps the page shape, with next_cursor null); --limit is ignored.",
    ),
]
NoPagerOption = Annotated[
    bool,
    typer.Option(
        "--no-pager", help="At a terminal, print a table taller than the screen as it is, not through the pager (LINEA_PAGER, PAGER, less -FRX).",
    ),
]
IncludeDeletedOption = Annotated[bool, typer.Option("--include-deleted", help="Include soft-deleted rows.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts).")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")]
ServerOption = Annotated[
    str,
    typer.Option(
        "--server", metavar="primary|replica|N",
        help="Whose view: the primary; the replica linea would read from now; or the Nth of LINEA_READ_DATABASE_URL, however far behind.",
    ),
]


def chosen_format(fmt: OutputFormat, as_json: bool) -> OutputFormat:
    return OutputFormat.json if as_json else fmt


Title = str | Callable[[Mapping[str, Any]], str] | None

# The parameters `output_options` adds, in the order `--help` lists them.
_PAGE_PARAMETERS = (("limit", LimitOption, 50), ("after", AfterOption, None))
_FORMAT_PARAMETERS = (("as_json", JsonOption, False), ("fields", FieldsOption, None), ("no_pager", NoPagerOption, False))


@dataclass
class Output:
    """A command's output options, parsed, and what it renders with them.

    `format` is `--format` with `--json` applied; `fields` the `--fields` text; `pager` is false
    with `--no-pager`. A list command also has `limit`, `after` and `every_page` (`--all`), read by `page`.
    """

    format: OutputFormat
    fields: str | None
    columns: Sequence[ColumnSpec] | None = None
    title: Title = None
    limit: int = 50
    after: str | None = None
    every_page: bool = False
    pager: bool = True

    @property
    def for_people(self) -> bool:
        """A table (or wide table) for people: commands may add a line on stderr or a chart."""
        return self.format in (OutputFormat.table, OutputFormat.wide)

    def check(self, fields_of: Mapping[str, Any] | Sequence[ColumnSpec] | None = None) -> None:
        """Stop (usage error, exit 2) when `--fields` names a field the output lacks: call it
        before anything is written. `fields_of` is a record or columns; the declared columns
        without it."""
        specs = self.columns if fields_of is None else fields_of
        if specs is not None:
            select_columns(list(specs), self.fields)

    def change(self, call: Callable[[Session, Actor | None], Mapping[str, Any]]) -> Mapping[str, Any]:
        """Run `call(session, actor)` in one unit of work and return its record; an unknown
        `--fields` name stops the change before its commit."""
        from linea_cli.cli.context import transaction

        with transaction() as (session, actor):
            record = call(session, actor)
            self.check(record)
        return record

    def read(self, call: Callable[[Session, Actor | None], Any]) -> Any:
        """Run `call(session, actor)` in one unit of work (which commits what it audits) and return its result."""
        from linea_cli.cli.context import transaction

        with transaction() as (session, actor):
            return call(session, actor)

    def show(self, call: Callable[[Session, Actor | None], Any]) -> Any:
        """`read` for a read that writes nothing (a show): on the command's replica when one may
        serve it, else on the primary (`context.read_on_replica_or_primary`)."""
        from linea_cli.cli.context import read_on_replica_or_primary

        return read_on_replica_or_primary(call)

    def query(self, call: Callable[[Any, Actor | None], Any]) -> Any:
        """`show` for a read written against a psycopg connection (services/reads.py): run
        `call(connection, actor)` in one unit of work, without SQLAlchemy when it can (`context.reading`)."""
        from linea_cli.cli.context import read_on_replica_or_primary

        return read_on_replica_or_primary(call, driver=True)

    def page(
        self, fetch: Callable[[Any, Actor | None, int, str | None], Page], *, read_only: bool = False
    ) -> tuple[Iterable[dict], str | None]:
        """A list's rows and the cursor after them, as `--limit`, `--after` and `--all` ask
        (see `context.listed_rows`); `--fields` is checked first, before the first page is read.
        `fetch(session, actor, size, cursor)`; with `read_only`, `fetch(connection, ...)` on a
        psycopg connection, as for `query`."""
        from linea_cli.cli.context import listed_rows

        self.check()
        return listed_rows(fetch, limit=self.limit, after=self.after, every_page=self.every_page, read_only=read_only)

    def record(self, record: Mapping[str, Any], *, title: Title = None, picture: Picture | None = None) -> None:
        """One record in the chosen format, cut to `--fields` (some of it drawn: `output.Picture`)."""
        render_record(
            record, self.format, title=_title(title or self.title, record), fields=self.fields, picture=picture,
            pager=self.pager,
        )

    def summary(
        self, summary: Mapping[str, Any], rows: Sequence[Mapping[str, Any]], *, items: str,
        columns: Sequence[ColumnSpec] | None = None,
    ) -> int:
        """The rows a job acted on (the declared columns unless given, and the title) and its
        summary: in JSON one document with the rows under `items`, elsewhere the rows (see
        `output.render_summary`)."""
        specs = columns if columns is not None else self.columns
        if specs is None:
            raise TypeError("Output.summary needs columns: pass them or declare them in @output_options")
        return render_summary(
            summary, rows, specs, self.format, items=items, title=_title(self.title, None), fields=self.fields,
            pager=self.pager,
        )

    def rows(
        self, rows: Iterable[Mapping[str, Any]], columns: Sequence[ColumnSpec] | None = None, *, title: str | None = None,
        **how: Any,
    ) -> int:
        """Rows in the chosen format, the declared columns and title unless given; `how` is what
        else `output.render` takes (paginated, next_cursor, include_deleted, raw_csv, stream).
        Returns how many were written."""
        specs = columns if columns is not None else self.columns
        if specs is None:
            raise TypeError("Output.rows needs columns: pass them or declare them in @output_options")
        how.setdefault("pager", self.pager and "stream" not in how)  # a file is never paged
        return render(rows, specs, self.format, title=title or _title(self.title, None), fields=self.fields, **how)


def _title(title: Title, record: Mapping[str, Any] | None) -> str | None:
    if callable(title):
        return title(record) if record is not None else None
    return title


def output_options(
    *,
    columns: Sequence[ColumnSpec] | None = None,
    title: Title = None,
    pages: bool = False,
    default: OutputFormat = OutputFormat.table,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command `--format/-f` (default `default`), `--json` and `--fields`, and with `pages`
    `--limit`, `--after` and `--all`; the command takes `out: Output` instead.

    Put it below `@app.command()`; the options take the place of `out` (keyword-only: after `*`)
    in the command's signature, so `--help` lists them there. `columns` are what `--fields` may name when the command has no
    record to check it against (a list; see `Output.check`); `title` is a text, or a function of
    the record. A mapping the command returns is rendered as one record with that title.
    """

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(command, eval_str=True)
        if "out" not in signature.parameters:
            raise TypeError(f"{command.__name__} needs a parameter `out: Output` for @output_options")
        added = [*(_PAGE_PARAMETERS if pages else ()), ("fmt", FormatOption, default), *_FORMAT_PARAMETERS]
        if pages:
            added.append(("every_page", AllOption, False))
        own = list(signature.parameters.values())
        clash = {p.name for p in own} & {name for name, _, _ in added}
        if clash:
            raise TypeError(f"{command.__name__} declares {', '.join(sorted(clash))} itself: @output_options adds them")
        # The output options take the place of `out`: `--help` lists them there.
        at = [p.name for p in own].index("out")
        parameters = own[:at] + [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=value)
            for name, annotation, value in added
        ] + own[at + 1:]

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> None:
            out = Output(
                format=chosen_format(kwargs.pop("fmt"), kwargs.pop("as_json")),
                fields=kwargs.pop("fields"),
                columns=columns,
                title=title,
                limit=kwargs.pop("limit", 50),
                after=kwargs.pop("after", None),
                every_page=kwargs.pop("every_page", False),
                pager=not kwargs.pop("no_pager"),
            )
            result = command(*args, out=out, **kwargs)
            if isinstance(result, Mapping):
                out.record(result)

        # Typer reads the signature (and the annotations, for their types): the command's own
        # parameters, then the output options.
        run.__signature__ = signature.replace(parameters=parameters, return_annotation=inspect.Signature.empty)
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return run

    return decorate
