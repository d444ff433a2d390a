"""The CLI is an HTTP client: importing it loads none of the server's frameworks, and its
entry points answer without a server."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.cli.cli_helpers import NNQ, ROOT, cli_env

CLI_MODULES = ("nnq", "nnq.cli", "nnq.client", "nnq.demo", "nnq.errors", "nnq.follow",
               "nnq.inputs", "nnq.local", "nnq.plots", "nnq.processes", "nnq.progress",
               "nnq.remote", "nnq.resources", "nnq.stack", "nnq.sweep_cli", "nnq.sweep_view",
               "nnq.tables", "nnq.terminal", "nnq.transport")
# `import nnq; from nnq import Client`: what a notebook pays before it calls anything
CLIENT_IMPORTS = ("nnq", "nnq.client")
LAZY_PACKAGES = ("numpy", "pandas", "matplotlib")
SERVER_FRAMEWORKS = ("flask", "sqlalchemy", "celery")
SWEEP_COMMANDS = ("submit", "show", "cancel", "promote")
TIMEOUT_S = 60


def modules_loaded_by(imports: tuple[str, ...]) -> set[str]:
    """Top-level package names in sys.modules after a fresh interpreter imports ``imports``."""
    code = (f"import importlib, json, sys\n"
            f"for name in {list(imports)!r}: importlib.import_module(name)\n"
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, env=cli_env(), cwd=ROOT,
                          timeout=TIMEOUT_S)


def test_cli_modules_import_no_server_framework():
    loaded = modules_loaded_by(CLI_MODULES)
    assert not loaded & set(SERVER_FRAMEWORKS), sorted(loaded & set(SERVER_FRAMEWORKS))


def test_the_client_imports_no_server_framework_and_nothing_heavy_until_used():
    code = ("import sys\nimport nnq\nfrom nnq import Client, NnqError, SpecError\n"
            "assert Client.__module__ == 'nnq.client'\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    loaded = set(result.stdout.split())
    assert not loaded & {*SERVER_FRAMEWORKS, *LAZY_PACKAGES}, sorted(loaded)
    assert not modules_loaded_by(CLIENT_IMPORTS) & {*SERVER_FRAMEWORKS, *LAZY_PACKAGES}


def test_nncore_is_a_library_without_terminal_output():
    assert "rich" not in modules_loaded_by(("nncore", "nncore.modelfile"))


def test_sweep_help_lists_its_commands():
    result = run(NNQ, "sweep", "--help")
    assert result.returncode == 0, result.stderr
    for command in SWEEP_COMMANDS:
        assert command in result.stdout


def test_a_sweep_file_without_a_command_is_submitted(tmp_path):
    missing = tmp_path / "none.json"
    for argv in (("sweep", str(missing)), ("sweep", "submit", str(missing)),
                 ("sweep", "--wait", str(missing))):
        result = run(NNQ, *argv)
        assert result.returncode == 1 and "no such file" in result.stderr, argv


def test_python_m_nncore_lists_train_and_eval():
    result = run(sys.executable, "-m", "nncore", "--help")
    assert result.returncode == 0, result.stderr
    assert "train" in result.stdout and "eval" in result.stdout
