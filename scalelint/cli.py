"""The command line: `scalelint check`, `scalelint rules`, `scalelint explain`."""

from __future__ import annotations

import os
import shutil
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from scalelint import __version__
from scalelint.config import Config, ConfigError, find_root, load_config
from scalelint.daemon import IDLE_TIMEOUT
from scalelint.findings import Severity
from scalelint.knowledge import KnowledgeError
from scalelint.output import write_stdout
from scalelint.report import FORMATS

if TYPE_CHECKING:
    from scalelint.engine import Progress, RunResult

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def _selectors(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(part.strip() for value in values for part in value.split(",") if part.strip())


def _color(stream: object) -> bool:
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _fail(message: str) -> NoReturn:
    click.echo(f"scalelint: error: {message}", err=True)
    sys.exit(EXIT_ERROR)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="scalelint")
def main() -> None:
    """Find the code that collapses a Python web backend under real traffic."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option(
    "--output", "-o", type=click.Path(path_type=Path, dir_okay=False), help="Write the report to FILE."
)
@click.option("--select", multiple=True, help="Rules or prefixes to enable (replaces the config's select).")
@click.option("--ignore", multiple=True, help="Rules or prefixes to disable.")
@click.option("--extend-select", multiple=True, help="Rules or prefixes to enable on top of select.")
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning", "info"]),
    help="Lowest severity that fails the run (default: warning).",
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when there are findings.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Config file (pyproject.toml or scalelint.toml).",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=os.cpu_count() or 1,
    show_default="number of cores",
    help="Worker processes for parsing.",
)
@click.option("--no-cache", is_flag=True, help="Do not read or write the facts cache (.scalelint_cache/).")
@click.option(
    "--statistics", is_flag=True, help="Print the number of findings per rule instead of the findings."
)
@click.option("--timings", is_flag=True, help="Print the time spent in each phase on stderr.")
@click.option("--fix", is_flag=True, help="Apply the safe fixes, then report what is left.")
@click.option("--diff", is_flag=True, help="Print the safe fixes as a unified diff; change no file.")
@click.option("--debug", is_flag=True, help="Show notes on skipped SQL and tracebacks of internal errors.")
def check(
    paths: tuple[Path, ...],
    output_format: str,
    output: Path | None,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    extend_select: tuple[str, ...],
    fail_on: str | None,
    exit_zero: bool,
    config_file: Path | None,
    jobs: int,
    no_cache: bool,
    statistics: bool,
    timings: bool,
    fix: bool,
    diff: bool,
    debug: bool,
) -> None:
    """Check PATHS (default: the current folder) for scale anti-patterns.

    The whole project (found from the config file or .git) is analysed, so a
    helper in another module is seen; findings are reported for PATHS only.
    """
    from scalelint.engine import run

    targets = list(paths) or [Path(".")]
    try:
        config = _configure(targets, config_file, select, ignore, extend_select, fail_on)
        with _progress(output_format) as progress:
            result = run(targets, config, jobs=jobs, use_cache=not no_cache, progress=progress)
        if diff or fix:
            from scalelint.fix import apply_fixes

            fixed = apply_fixes(result.findings, result.root, config.dialect, fix and not diff, result.cwd)
            for reason in fixed.skipped:
                click.echo(f"scalelint: warning: {reason}", err=True)
            if diff:
                click.echo(fixed.diff, nl=False)
                sys.exit(EXIT_FINDINGS if fixed.diff else EXIT_CLEAN)
            if fixed.fixed_files:
                files = len(fixed.fixed_files)
                click.echo(f"scalelint: fixed {fixed.edits} edit(s) in {files} file(s)", err=True)
                result = run(targets, config, jobs=jobs, use_cache=not no_cache)
        for warning in result.warnings:
            click.echo(f"scalelint: warning: {warning}", err=True)
        if debug:
            for note in result.debug:
                click.echo(f"scalelint: debug: {note}", err=True)
        if timings:
            for phase, seconds in result.timings.items():
                click.echo(f"scalelint: timing: {phase:<20} {seconds:8.3f} s", err=True)
        if statistics:
            _write_statistics(result)
        else:
            _write_report(result, output_format, output)
    except (ConfigError, KnowledgeError) as error:
        _fail(str(error))
    except Exception as error:  # the CLI edge: never a traceback unless --debug
        if debug:
            traceback.print_exc()
        _fail(f"internal error: {type(error).__name__}: {error} (run with --debug for the traceback)")
    failing = [f for f in result.findings if f.severity >= config.fail_on]
    sys.exit(EXIT_FINDINGS if failing and not exit_zero else EXIT_CLEAN)


def _configure(
    paths: list[Path],
    config_file: Path | None,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    extend_select: tuple[str, ...],
    fail_on: str | None,
) -> Config:
    """The project's config, found from the paths, with the command line on top."""
    for path in paths:
        if not path.exists():
            raise ConfigError(f"path not found: {path}")
    if config_file is not None:
        root = config_file.resolve().parent
    else:
        root = find_root(Path(os.path.commonpath([str(p.resolve()) for p in paths])))
    config = load_config(root, config_file)
    if select:
        config.select = _selectors(select)
        if not config.select:
            raise ConfigError("--select needs at least one rule id or prefix")
    config.ignore = (*config.ignore, *_selectors(ignore))
    config.extend_select = (*config.extend_select, *_selectors(extend_select))
    if fail_on:
        config.fail_on = Severity.parse(fail_on)
    return config


@contextmanager
def _progress(output_format: str) -> Iterator[Progress | None]:
    """A progress bar on an interactive terminal for long runs; nothing in CI or pipes."""
    interactive = sys.stderr.isatty() and not os.environ.get("CI") and output_format in ("text", "checklist")
    if not interactive:
        yield None
        return
    from rich.progress import Progress as Bar

    with Bar(transient=True, console=None) as bar:
        task = bar.add_task("parsing", total=None)
        started = time.monotonic()

        def update(done: int, total: int) -> None:
            if time.monotonic() - started > 1.0:
                bar.update(task, completed=done, total=total)

        yield update


def _write_statistics(result: RunResult) -> None:
    from scalelint.rulebook import all_rules

    counts = Counter(f.rule for f in result.findings)
    for rule, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        click.echo(f"{count:>6}  {rule}  {all_rules()[rule].name}")
    click.echo(f"{len(result.findings)} findings ({result.files_checked} files checked)")
    if result.unparsed_sql:
        click.echo(
            f"{result.unparsed_sql} SQL string(s) sqlglot could not parse "
            "(not checked; --debug names the files)"
        )


def _write_report(result: RunResult, output_format: str, output: Path | None) -> None:
    from scalelint.report import reporter

    render = reporter(output_format)
    if output is None:
        color = sys.stdout is not None and _color(sys.stdout) and output_format in ("text", "checklist")
        problem = write_stdout(render(result, color))
        if problem is not None:
            raise ConfigError(f"cannot write the report: {problem}")
        return
    try:
        output.write_text(render(result, False), encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot write {output}: {error.strerror}") from None


@main.command()
def rules() -> None:
    """List every rule with its family, severity and checklist item."""
    from scalelint.rulebook import all_rules

    metas = list(all_rules().values())
    width = max(len(m.name) for m in metas)
    click.echo(f"{'id':<6} {'name':<{width}} {'family':<13} {'severity':<8} checklist item")
    for meta in metas:
        click.echo(
            f"{meta.id:<6} {meta.name:<{width}} {meta.family:<13} {meta.severity.label:<8} "
            f"{meta.checklist or '-'}"
        )


@main.command()
@click.argument("rule_id")
def explain(rule_id: str) -> None:
    """Show the page of a rule: what it finds, why it hurts, how to fix it."""
    from scalelint.rulebook import all_rules

    meta = all_rules().get(rule_id.upper())
    if meta is None:
        _fail(f"unknown rule '{rule_id}' (see `scalelint rules`)")
    header = f"# {meta.id} {meta.name}\n\n{meta.summary}\n\nSeverity: {meta.severity.label}."
    if meta.checklist:
        header += f" Checklist item: {meta.checklist}"
    text = f"{header}\n\n{meta.body.strip()}\n"
    if _color(sys.stdout):
        from rich.console import Console
        from rich.markdown import Markdown

        Console().print(Markdown(text))
    else:
        click.echo(text, nl=False)


@main.command()
@click.argument("path", default=".", type=click.Path(path_type=Path, exists=True))
def clean(path: Path) -> None:
    """Remove the facts cache of the project that holds PATH."""
    from scalelint.cache import DEFAULT_DIRECTORY

    root = find_root(path)
    try:
        config = load_config(root)
    except ConfigError as error:
        _fail(str(error))
    directory = root / config.cache_dir if config.cache_dir else root / DEFAULT_DIRECTORY
    if directory.is_dir():
        shutil.rmtree(directory)
        click.echo(f"removed {directory}")
    else:
        click.echo("no cache to remove")


@main.group()
def daemon() -> None:
    """A resident scalelint for one project: checks sent to it reuse what it keeps in memory.

    While a daemon serves a project, `scalelint check` run anywhere inside that project
    is answered by it (set SCALELINT_NO_DAEMON=1 or pass --no-cache to run in-process).
    """


def _daemon_root(path: Path) -> str:
    from scalelint import daemon as resident

    if not resident.available():
        _fail("the daemon needs Unix sockets, which this platform does not have")
    return resident.find_root(str(path))


@daemon.command("start")
@click.argument("path", default=".", type=click.Path(path_type=Path, exists=True))
@click.option(
    "--idle-timeout",
    type=click.FloatRange(min=1),
    default=IDLE_TIMEOUT,
    show_default=True,
    help="Seconds without a request after which the daemon stops.",
)
def daemon_start(path: Path, idle_timeout: float) -> None:
    """Start the daemon of the project that holds PATH, and let it read the project."""
    import subprocess

    from scalelint import daemon as resident

    root = _daemon_root(path)
    status = resident.request(root, {"command": "status"}, timeout=5.0)
    if status is not None:
        click.echo(f"a daemon already serves {root} (pid {status.get('pid')})")
        return
    folder = resident.private_folder(root)
    if folder is None:
        _fail(f"{Path(resident.socket_path(root)).parent} is not private to this user; no daemon")
    log = Path(resident.socket_path(root)).with_suffix(".log")
    command = [sys.executable, "-m", "scalelint", "daemon", "serve", root]
    command += ["--idle-timeout", str(idle_timeout)]
    # The folder is this user's alone, so the log is no link someone else put there.
    sink = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
    try:
        daemon_process = subprocess.Popen(
            command, cwd=root, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, start_new_session=True
        )
    finally:
        os.close(sink)
    # Ready once it answers, which is after its first run over the whole project.
    while daemon_process.poll() is None:
        status = resident.request(root, {"command": "status"}, timeout=None)
        if status is not None:
            click.echo(f"daemon serving {root} (pid {status.get('pid')})")
            return
        time.sleep(0.05)
    _fail(f"the daemon did not start (exit code {daemon_process.returncode}); see {log}")


@daemon.command("stop")
@click.argument("path", default=".", type=click.Path(path_type=Path, exists=True))
def daemon_stop(path: Path) -> None:
    """Stop the daemon of the project that holds PATH."""
    from scalelint import daemon as resident

    root = _daemon_root(path)
    answer = resident.request(root, {"command": "stop"}, timeout=600)
    click.echo(f"daemon of {root} stopped" if answer is not None else f"no daemon serves {root}")


@daemon.command("status")
@click.argument("path", default=".", type=click.Path(path_type=Path, exists=True))
def daemon_status(path: Path) -> None:
    """Say whether a daemon serves the project that holds PATH; exit 1 if none does."""
    from scalelint import daemon as resident

    root = _daemon_root(path)
    answer = resident.request(root, {"command": "status"}, timeout=600)
    if answer is None:
        click.echo(f"no daemon serves {root}")
        sys.exit(EXIT_FINDINGS)
    click.echo(f"daemon serving {root} (pid {answer.get('pid')}, {answer.get('runs')} checks answered)")


@daemon.command("serve", hidden=True)
@click.argument("root")
@click.option("--idle-timeout", type=float, default=IDLE_TIMEOUT)
def daemon_serve(root: str, idle_timeout: float) -> None:
    """Be the daemon (what `daemon start` runs in the background)."""
    from scalelint import daemon as resident

    sys.exit(resident.serve(root, idle_timeout))
