"""functions-framework source for every target: `--source functions/main.py --target todo_get`.

One image serves every function; FUNCTION_TARGET picks one. The target is
resolved lazily (PEP 562) so a process imports only its own function's module.
"""

from __future__ import annotations

import gc
import importlib
from typing import Any


def __getattr__(target: str) -> Any:
    from functions.registry import BY_TARGET

    spec = BY_TARGET.get(target)
    if spec is None:
        raise AttributeError(target)
    function = getattr(importlib.import_module(spec.module), target)
    if not gc.isenabled():
        # The launcher (functions/serve.py) held the collector off while the imports made
        # their long-lived objects; those are frozen out of every later collection (and
        # out of copy-on-write in the forked worker) before it runs again.
        gc.freeze()
        gc.enable()
    return function
