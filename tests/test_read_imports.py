"""Cold start: todo-get answers a read without importing pydantic (~75 ms of a cold start).

PostgreSQL writes the todo's JSON (todo_store.TODO_JSON) and the function sends it on,
so nothing on the read path needs a model; this holds it there as the code changes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from functions.core.auth import create_token
from functions.core.db import Database
from functions.core.models import TodoCreate
from functions.core.outbox import Outbox
from functions.core.todo_store import create_todo
from functions.platform.embedded_pg import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[1]
_PROBE = """
import json, sys
import functions_framework
app = functions_framework.create_app("todo_get", "functions/main.py")
imported = "pydantic" in sys.modules
answer = app.test_client().get(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
print(json.dumps({"status": answer.status_code, "body": answer.get_json(),
                  "at_import": imported, "after_request": "pydantic" in sys.modules}))
"""


def test_todo_get_answers_without_importing_pydantic(pg: EmbeddedPostgres, db: Database) -> None:
    owner = f"reader-{uuid.uuid4().hex[:8]}"
    todo, _ = create_todo(db, owner, TodoCreate(title="read me"), None, outbox=Outbox("test"))
    token = create_token(db, owner)
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, f"/api/v1/todos/{todo.number}", token],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "DATABASE_URL": pg.url,
            "TODO_INTERNAL_TOKEN": "internal",
            "LOG_LEVEL": "WARNING",
        },
    )
    result = json.loads(out.stdout)
    assert result["status"] == 200
    assert result["body"] == json.loads(todo.model_dump_json())
    assert result["at_import"] is False
    assert result["after_request"] is False
