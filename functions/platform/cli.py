"""The `todo-platform` command: run the platform locally, migrate, mint tokens, print OpenAPI.

Each subcommand imports what it needs when it runs, so `--help` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from functions.core.settings import ConfigError
from functions.platform.local_database import DATA_DIR_ENV, PlatformError, local_database


class UsageError(Exception):
    """The arguments are wrong; the message is one line."""


def _up(args: argparse.Namespace) -> int:
    from functions.platform.up import UpOptions, run

    if not 0 <= args.port <= 65535:
        raise UsageError(f"todo-platform: --port must be 0–65535, got {args.port}")
    return run(UpOptions(args.host, args.port, args.data_dir, args.reload))


def _migrate(args: argparse.Namespace) -> int:
    with local_database(args.data_dir) as database:
        if database.applied:
            print(f"applied {', '.join(database.applied)} to {database.describe()}")
        else:
            print(f"{database.describe()} is up to date")
    return 0


def _token_create(args: argparse.Namespace) -> int:
    from functions.core.auth import SCOPES, create_token, validate_owner
    from functions.core.db import Database

    scopes = args.scope or list(SCOPES)
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise UsageError(
            f"todo-platform: unknown scope {unknown[0]!r}; scopes are {', '.join(SCOPES)}"
        )
    try:
        validate_owner(args.owner)
    except ValueError as exc:
        raise UsageError(f"todo-platform: --owner: {exc}") from None
    with local_database(args.data_dir) as database:
        db = Database(database.url, name="todo-platform token")
        try:
            token = create_token(db, args.owner, scopes, name=args.name)
        finally:
            db.close_all()
    print(token)
    return 0


def _events(args: argparse.Namespace) -> int:
    from functions.platform.event_report import show

    return show(args.url, as_json=args.json)


def _bench(arguments: Sequence[str]) -> int:
    """Runs bench/ (a checkout's, never shipped in the image) with this Python."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    if not (root / "bench" / "__main__.py").is_file():
        print("todo-platform bench runs from a checkout of the repository", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, "-m", "bench", *arguments], cwd=root)


def _openapi(args: argparse.Namespace) -> int:
    from functions.core.openapi import render

    sys.stdout.write(render())
    return 0


def _data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        metavar="DIR",
        help=f"the embedded PostgreSQL's home when DATABASE_URL is unset "
        f"(default: ${DATA_DIR_ENV} or ./.todo-platform)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="todo-platform",
        description="A todo platform of scale-to-zero functions on PostgreSQL, run locally.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up",
        help="run every function behind one gateway (embedded PostgreSQL unless DATABASE_URL)",
        description="Start the database (embedded unless DATABASE_URL is set), apply "
        "migrations, print a ready token and examples, and serve every function on its "
        "production path until Ctrl-C.",
    )
    up.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    up.add_argument(
        "--port", type=int, default=8080, help="port, 0 for any free one (default: %(default)s)"
    )
    up.add_argument("--reload", action="store_true", help="restart the worker when code changes")
    _data_dir_option(up)
    up.set_defaults(run=_up)

    migrate = commands.add_parser("migrate", help="apply pending database migrations (idempotent)")
    _data_dir_option(migrate)
    migrate.set_defaults(run=_migrate)

    token = commands.add_parser("token", help="manage API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    create = token_commands.add_parser(
        "create", help="mint a bearer token and print it (only its hash is stored)"
    )
    create.add_argument("--owner", required=True, help="whose todos the token reaches")
    create.add_argument(
        "--scope",
        action="append",
        metavar="SCOPE",
        help="todos:read or todos:write; repeat for both (default: both)",
    )
    create.add_argument("--name", default="", help="a label to recognise the token by")
    _data_dir_option(create)
    create.set_defaults(run=_token_create)

    events = commands.add_parser(
        "events",
        help="show the recent event deliveries and dead letters of a running `up`",
        description="Ask a running `todo-platform up` for what its event router delivered, "
        "retried and dead-lettered lately, and for its routing table.",
    )
    events.add_argument(
        "--url",
        default="http://127.0.0.1:8080",
        help="where `up` listens (default: %(default)s)",
    )
    events.add_argument("--json", action="store_true", help="print the raw JSON")
    events.set_defaults(run=_events)

    bench = commands.add_parser(
        "bench",
        help="measure every budget of DESIGN §8 and write docs/performance.md",
        description="Cold start, warm throughput, memory, gateway cost, latency through up "
        "and list at scale, in one run (bench/). Arguments go to it: --quick, --only, …",
        add_help=False,
    )
    bench.set_defaults(run=lambda args: _bench(()))

    openapi = commands.add_parser("openapi", help="print the OpenAPI 3.1 document")
    openapi.set_defaults(run=_openapi)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["bench"]:  # every argument after it is the bench's own
        return _bench(arguments[1:])
    args = build_parser().parse_args(arguments)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except (UsageError, ConfigError) as exc:
        print(exc, file=sys.stderr)
        return 2
    except PlatformError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
