"""The Dockerfile, .dockerignore and requirements.lock, checked statically (no Docker here).

CI builds the image (release.yml); these tests catch what a reviewer would: an unpinned
or drifting base, a root user, compilers or pgserver in the final stage, a lock that no
longer matches pyproject's runtime dependencies.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from dataclasses import dataclass

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from functions.registry import FUNCTIONS
from tests.knative_manifests import REPO_ROOT, render

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
LOCK = REPO_ROOT / "requirements.lock"
PYPROJECT = REPO_ROOT / "pyproject.toml"
BASE_IMAGE = re.compile(r"^python:(?P<minor>3\.\d+)\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?$")
COMPILERS = re.compile(r"\b(gcc|g\+\+|clang|build-essential|make|cc|python3?-dev)\b")
LOCAL_ONLY = {"pgserver"}


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with line continuations joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, value = line.partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword == "FROM":
            parts = value.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            base = re.sub(
                r"\$\{(\w+)\}", lambda m: global_args.get(m.group(1), m.group(0)), parts[0]
            )
            stages.append(Stage(base=base, name=name, instructions=[]))
        elif not stages and keyword == "ARG":
            name, _, default = value.partition("=")
            global_args[name] = default
        elif stages:
            stages[-1].instructions.append(Instruction(keyword, value))
    return global_args, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())[1]


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def _values(stage: Stage, keyword: str) -> list[str]:
    return [i.value for i in stage.instructions if i.keyword == keyword]


def _env(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for value in _values(stage, "ENV"):
        for key, val in re.findall(r"(\w+)=(\S+)", value):
            env[key] = val
    return env


def test_parser_reads_continuations_args_and_stages():
    text = "ARG B=python:3.11.1-slim-bookworm\nFROM ${B} AS one\n# c\nRUN a \\\n  && b\nFROM ${B}\n"
    args, parsed = parse_dockerfile(text)
    assert args == {"B": "python:3.11.1-slim-bookworm"}
    assert [(s.base, s.name) for s in parsed] == [
        ("python:3.11.1-slim-bookworm", "one"),
        ("python:3.11.1-slim-bookworm", None),
    ]
    assert parsed[0].instructions == [Instruction("RUN", "a  && b")]


def test_multi_stage_on_one_pinned_slim_python(stages):
    assert len(stages) >= 2, "build in a builder stage, run from a clean final stage"
    for stage in stages:
        assert BASE_IMAGE.match(stage.base), f"{stage.base}: pin python:3.X.Y-slim-bookworm"
    assert len({stage.base for stage in stages}) == 1, "builder and runtime must share the base"


def test_final_stage_has_no_compilers_pip_installs_or_local_only_packages(final):
    for run in _values(final, "RUN"):
        assert not COMPILERS.search(run), f"compiler in the final stage: {run}"
        assert "apt-get install" not in run, f"packages installed in the final stage: {run}"
        assert "pip install" not in run, f"install in the builder, not the final stage: {run}"
    copies = _values(final, "COPY")
    assert copies and all(c.startswith("--from=") for c in copies), (
        "the final stage copies only build results from earlier stages"
    )


def test_final_stage_runs_as_the_manifests_non_root_user(final):
    users = _values(final, "USER")
    assert users, "the final stage must set USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "USER must be numeric so runAsNonRoot can verify it"
    assert not gid or gid.isdigit()
    for obj in render(REPO_ROOT / "knative" / "base"):
        if obj["kind"] == "Service" and obj["apiVersion"].startswith("serving.knative.dev"):
            for container in obj["spec"]["template"]["spec"]["containers"]:
                assert container["securityContext"]["runAsUser"] == int(uid)


def test_final_stage_works_on_a_read_only_root_filesystem(final):
    env = _env(final)
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("HOME") == "/tmp", "anything that writes to $HOME must land on the /tmp emptyDir"


def test_bytecode_is_precompiled_unchecked_in_the_builder(stages):
    runs = " ".join(run for stage in stages[:-1] for run in _values(stage, "RUN"))
    assert "compileall" in runs and "unchecked-hash" in runs


def test_dependencies_are_installed_hash_checked_from_the_lock(stages):
    runs = " ".join(run for stage in stages[:-1] for run in _values(stage, "RUN"))
    assert "--require-hashes" in runs and "-r requirements.lock" in runs
    assert "--only-binary=:all:" in runs, "binary wheels only: no compiler needed to build"


def test_command_is_the_launcher_that_serves_each_target_from_the_installed_package(final):
    assert _values(final, "EXPOSE") == ["8080"]
    assert _env(final).get("PORT") == "8080"
    cmd = _values(final, "CMD")
    assert len(cmd) == 1 and cmd[0].startswith("["), "CMD in exec form, so signals reach the server"
    argv = re.findall(r'"([^"]*)"', cmd[0])
    assert argv == ["todo-function"], "the target comes from FUNCTION_TARGET, one per Service"
    scripts = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    assert scripts["todo-function"] == "functions.serve:main"
    # The launcher hands WSGI targets to functions-framework with the installed main.py.
    from functions import serve

    assert str(REPO_ROOT / "functions" / "main.py") == serve.SOURCE
    assert {spec.interface for spec in FUNCTIONS} <= {"wsgi", "asgi"}


def test_oci_labels(final):
    labels = " ".join(_values(final, "LABEL"))
    for key in ("title", "source", "revision", "version", "description"):
        assert f"org.opencontainers.image.{key}=" in labels, key


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins; `!` re-includes."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        glob = pattern[1:] if negate else pattern
        glob = glob.rstrip("/")
        if fnmatch.fnmatch(path, glob) or fnmatch.fnmatch(path, glob + "/*"):
            ignored = not negate
    return ignored


def test_dockerignore_is_an_allowlist_covering_every_copy(stages):
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", ".dockerignore should start by ignoring everything"
    for stage in stages:
        for copy in _values(stage, "COPY"):
            if copy.startswith("--from="):
                continue
            for source in copy.split()[:-1]:
                assert not _ignored(source.rstrip("/"), patterns), f"{source} is ignored"
                assert (REPO_ROOT / source).exists() or source == "README.md", source
    for secret in (".venv/bin/python", ".git/config", ".todo-platform/pg/postgresql.conf"):
        assert _ignored(secret, patterns), f"{secret} would enter the build context"


def _runtime_requirements() -> list[Requirement]:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    return [Requirement(spec) for spec in project["dependencies"]]


def _locked() -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) from requirements.lock (pip-compile --generate-hashes)."""
    text = LOCK.read_text().replace("\\\n", " ")
    locked: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"^([A-Za-z0-9._-]+)==(\S+)\s*(.*)$", line)
        assert match, f"requirements.lock: not an exact pin: {line}"
        name, version, rest = match.groups()
        locked[canonicalize_name(name)] = (
            version,
            re.findall(r"--hash=sha256:([0-9a-f]{64})", rest),
        )
    return locked


def test_lock_pins_every_package_with_hashes():
    locked = _locked()
    assert locked
    for name, (_, hashes) in locked.items():
        assert hashes, f"requirements.lock: {name} has no --hash"


def test_lock_matches_pyproject_runtime_dependencies():
    locked = _locked()
    for requirement in _runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is a runtime dependency missing from requirements.lock"
        version = locked[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements.lock pins {name}=={version}, pyproject wants {requirement.specifier}; "
            "regenerate it (docs/deployment.md)"
        )


def test_local_only_and_dev_packages_stay_out_of_the_image():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    runtime = {canonicalize_name(r.name) for r in _runtime_requirements()}
    extras = project["optional-dependencies"]
    local = {canonicalize_name(Requirement(s).name) for s in extras["local"]}
    dev = {canonicalize_name(Requirement(s).name) for s in extras["dev"]}
    assert local >= LOCAL_ONLY and not runtime & LOCAL_ONLY
    assert dev >= local, "`pip install -e '.[dev]'` must still give the tests pgserver"
    assert not set(_locked()) & (LOCAL_ONLY | {"pytest", "ruff", "kubernetes-validate"})
