"""`crmbot demo`: its options, and running the console interactively or from a script."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from pathlib import Path
from typing import TextIO

DEFAULT_DB = "crmbot-demo.db"
DEFAULT_LOG = "crmbot-demo.log"


SCRIPTS = """\
A script has one step per line, as typed at the console: `/crm …` commands and console
commands (:as, :in, :click, :home, :remind, :wait, :intake; :help lists them). Lines
starting with # are comments. When a modal opens, give its inputs as `field: value` lines
(the field's label or block id), then :submit or :cancel. The transcript goes to stdout;
the exit status is 1 at the first step that can't be done.

  /crm lead Ana Lima at Acme Corp ana@acme.com
  /crm log call L-5
  notes: Intro call, wants a pilot
  duration: 20
  :submit
  :remind
  :click Done T-1
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `crmbot demo` options."""
    parser.description = (
        "Try crmbot without a Slack workspace: the real app, with Slack played locally,\n"
        "on a demo database with three reps, accounts, deals and overdue follow-ups."
    )
    parser.epilog = SCRIPTS
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--script",
        metavar="FILE",
        help="run the steps in FILE (- for stdin) and print the transcript",
    )
    parser.add_argument(
        "--db",
        default=DEFAULT_DB,
        metavar="PATH_OR_URL",
        help="SQLite file or database URL for the demo workspace (default: %(default)s)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="start over: delete the demo database and re-seed it"
    )
    parser.add_argument(
        "--interval",
        type=_seconds,
        default=10,
        metavar="SECONDS",
        help="seconds between reminder sweeps (default: %(default)s)",
    )
    parser.add_argument(
        "--log",
        default=DEFAULT_LOG,
        metavar="FILE",
        help="where the app's log goes (default: %(default)s)",
    )


def _seconds(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("at least 1 second")
    return value


def database_url(db: str) -> str:
    """A database URL for `--db`: URLs as given, anything else is an SQLite file path."""
    return db if "://" in db else f"sqlite:///{db}"


def run(args: argparse.Namespace) -> int:
    """Start the demo world and run the console; returns the exit status."""
    from crmbot.demo.console import Console
    from crmbot.demo.runtime import DemoOptions, DemoWorld
    from crmbot.demo.terminal import use_color
    from crmbot.demo.transcript import Output

    # The console is the screen: the app's log goes to a file, not between the messages.
    logging.basicConfig(
        force=True,
        filename=args.log,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    script: TextIO | None = None
    if args.script == "-":
        script = sys.stdin
    elif args.script:
        path = Path(args.script)
        if not path.is_file():
            print(f"crmbot demo: no script at {path}", file=sys.stderr)
            return 2
        script = path.open(encoding="utf-8")
    interactive = script is None
    live = interactive and sys.stdin.isatty() and sys.stdout.isatty()
    out = Output(sys.stdout, color=use_color(sys.stdout), live=live)
    if interactive:
        print("Starting the demo workspace…", flush=True)
    options = DemoOptions(
        db_url=database_url(args.db),
        fresh=args.fresh,
        interval=args.interval,
        first_sweep=3.0 if interactive else float(args.interval),
    )
    world = DemoWorld.start(options)
    console = Console(world, out, interactive=interactive)
    console.start()
    try:
        if script is not None:
            return console.run_script(script)
        if live:
            _enable_line_editing()
        return console.run_interactive()
    except KeyboardInterrupt:
        return 130
    finally:
        console.close()
        world.close()
        if script is not None and script is not sys.stdin:
            script.close()


def _enable_line_editing() -> None:
    # Importing readline gives input() history and line editing; without it (Windows),
    # plain input() still works.
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401
