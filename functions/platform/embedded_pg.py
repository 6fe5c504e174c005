"""An embedded PostgreSQL (the `pgserver` wheel's binaries) for `todo-platform up` and the tests.

The server listens on a Unix socket only, keeps its data in a local directory
between runs, and is shared: a second process (`todo-platform token create`)
attaches to the running server instead of starting another one.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

DATABASE = "todo"
# One `up` holds a connection per thread, in each of its workers (up to four): the
# gateway's threads (THREADS, the mcp proxy's 128 slots, the internal listener's THREADS),
# the mcp function's worker threads (anyio's 40) and the outbox publisher's four, with
# commands and tests beside it: 4 × 188 + some. PostgreSQL's default of 100 is fewer; a
# refused connection is a 503 under load. In the cluster each function has THREADS
# connections, through PgBouncer.
MAX_CONNECTIONS = 800


def _pgserver() -> Any:
    # pgserver computes a runtime directory at import and warns when XDG_RUNTIME_DIR is unset.
    # Its INFO lines narrate every handle it opens and closes; only problems matter to us.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
        import pgserver._commands

    return pgserver


class EmbeddedPostgres:
    """One embedded server over `data_dir`; `url` is its DATABASE_URL once started."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).resolve()
        self._server: Any = None

    def start(self) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._forget_dead_holders()
        self._server = _pgserver().get_server(self.data_dir, cleanup_mode="stop")
        self._ensure_database()
        self._ensure_max_connections()
        return self.url

    def _forget_dead_holders(self) -> None:
        """Drop processes that died without letting go (SIGKILL, OOM) from pgserver's count.

        pgserver stops the server when its last holder exits, but never forgets a
        holder that was killed: the server would then outlive every later run.
        """
        import psutil

        pgserver = _pgserver()
        holders = pgserver.utils.DiskList(self.data_dir / ".handle_pids.json")
        with pgserver.postgres_server.PostgresServer._lock:
            pids = holders.get()
            alive = [pid for pid in pids if psutil.pid_exists(pid)]
            if alive != pids:
                holders.put(alive)

    @property
    def socket_dir(self) -> str:
        info = self._server.get_postmaster_info()
        return str(info.socket_dir)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@/{DATABASE}?host={quote(self.socket_dir)}"

    def _ensure_database(self) -> None:
        import pg8000.native

        conn = pg8000.native.Connection(
            user="postgres", unix_sock=f"{self.socket_dir}/.s.PGSQL.5432", database="postgres"
        )
        try:
            if not conn.run("SELECT 1 FROM pg_database WHERE datname = :d", d=DATABASE):
                conn.run(f'CREATE DATABASE "{DATABASE}"')
        finally:
            conn.close()

    def _ensure_max_connections(self) -> None:
        """Raise max_connections to MAX_CONNECTIONS once per data dir (it takes a restart)."""
        import pg8000.native

        conn = pg8000.native.Connection(
            user="postgres", unix_sock=f"{self.socket_dir}/.s.PGSQL.5432", database="postgres"
        )
        try:
            if int(conn.run("SHOW max_connections")[0][0]) >= MAX_CONNECTIONS:
                return
            conn.run(f"ALTER SYSTEM SET max_connections = {MAX_CONNECTIONS}")
        finally:
            conn.close()
        self.restart()

    def _pg_ctl(self, *args: str) -> None:
        commands = _pgserver()._commands
        commands.pg_ctl(list(args), pgdata=self.data_dir, user=self._server.system_user, timeout=60)

    def restart(self) -> None:
        """A clean restart (every client connection is dropped), as in a rolling update."""
        self._pg_ctl("-w", "-m", "fast", "restart")
        self._wait_ready()

    def crash_and_start(self) -> None:
        """SIGKILL the server and all its backends, as when its machine dies; then start it.

        Crash recovery replays the WAL, so every committed transaction is back.
        """
        import psutil

        pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        processes = [postmaster, *postmaster.children(recursive=True)]
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGKILL)
        psutil.wait_procs(processes, timeout=30)
        self._pg_ctl(
            "-w",
            "-o",
            '-h ""',
            "-o",
            f"-k {self.socket_dir}",
            "-l",
            str(self.data_dir / "log"),
            "start",
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        import pg8000.native

        deadline = time.monotonic() + 30
        while True:
            try:
                pg8000.native.Connection(
                    user="postgres", unix_sock=f"{self.socket_dir}/.s.PGSQL.5432", database=DATABASE
                ).close()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        # pgserver stops the postmaster it saw start; after a restart that is a new process,
        # and without this stop() would leave the new one running forever.
        info = _pgserver().utils.PostmasterInfo.read_from_pgdata(self.data_dir)
        if info is not None:
            self._server._postmaster_info = info

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
