"""docker-compose.yml checked without a Docker engine.

Every command must name something this checkout really provides, every NNQ_* variable the
service code reads must reach the services that run that code, and start-up order must put the
migration before anything that touches the database.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import re
import shlex
import tomllib
from configparser import ConfigParser
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
APP_SERVICES = ("migrate", "api", "worker-cpu", "worker-gpu", "flower")
DB_SERVICES = ("api", "worker-cpu", "worker-gpu")
# The CLI runs on a user's machine, not in these containers; its NNQ_API_URL is not theirs.
CODE_OF = {
    "migrate": ("migrations", "service"),
    "api": ("service", "nncore"),
    "worker-cpu": ("workers", "service", "nncore"),
    "worker-gpu": ("workers", "service", "nncore"),
    "flower": ("workers",),
}
ENV_NAME = re.compile(r"""["'](NNQ_[A-Z0-9_]+)["']""")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def command_of(service: dict) -> list[str]:
    command = service.get("command")
    return shlex.split(command) if isinstance(command, str) else list(command or [])


def env_names_read_by(packages: tuple[str, ...]) -> set[str]:
    """NNQ_* names the packages read: string literals in their source, and every field of the
    settings object when they use it."""
    from service.settings import ENV_PREFIX, Settings

    names: set[str] = set()
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            text = path.read_text()
            names.update(ENV_NAME.findall(text))
            if "service.settings" in text:
                names.update(ENV_PREFIX + field.upper() for field in Settings.model_fields)
    return names


def check_celery(argv: list[str]) -> None:
    app_name = argv[argv.index("-A") + 1]
    assert importlib.util.find_spec(app_name) is not None, f"no module {app_name}"
    module = importlib.import_module(app_name)
    assert hasattr(module, "app") or hasattr(module, "celery"), f"{app_name} has no Celery app"


GUNICORN_VALUED = {"-c", "--config", "-b", "--bind", "-w", "--workers", "-t", "--timeout"}


def gunicorn_parts(argv: list[str]) -> tuple[str | None, str]:
    """(the ``-c`` config, the app) of a gunicorn command line."""
    config, positional, args = None, [], iter(argv[1:])
    for arg in args:
        if arg in GUNICORN_VALUED:
            value = next(args)
            config = value if arg in ("-c", "--config") else config
        elif not arg.startswith("-"):
            positional.append(arg)
    return config, positional[0]


def check_gunicorn(argv: list[str]) -> None:
    config, target = gunicorn_parts(argv)
    module_name, _, call = target.partition(":")
    module = importlib.import_module(module_name)
    factory = getattr(module, call.removesuffix("()"))
    assert callable(factory), f"{target} is not callable"
    assert config and config.startswith("python:"), "gunicorn runs without nnq's config"
    settings = importlib.import_module(config.removeprefix("python:"))
    assert callable(settings.post_worker_init), f"{config} does not make refusals JSON"


def check_alembic(argv: list[str]) -> None:
    ini = ROOT / "alembic.ini"
    assert ini.is_file(), "alembic.ini missing at the repository root"
    parser = ConfigParser(interpolation=None)
    parser.read(ini)
    location = parser.get("alembic", "script_location").replace("%(here)s", str(ROOT))
    assert (ROOT / location / "env.py").is_file(), f"no env.py under {location}"


def check_nnq(argv: list[str]) -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module_name, _, attr = scripts["nnq"].partition(":")
    assert callable(getattr(importlib.import_module(module_name), attr))


CHECKS = {"celery": check_celery, "gunicorn": check_gunicorn, "alembic": check_alembic,
          "nnq": check_nnq}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_command_names_a_real_entry_point(compose, name):
    argv = command_of(compose["services"][name])
    assert argv, f"{name} has no command"
    assert argv[0] in CHECKS, f"{name}: unexpected program {argv[0]}"
    CHECKS[argv[0]](argv)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_env_var_the_code_reads_is_set(compose, name):
    environment = compose["services"][name].get("environment") or {}
    read = env_names_read_by(CODE_OF[name])
    assert read, "the grep found no NNQ_ names; is the source there?"
    missing = sorted(read - set(environment))
    assert not missing, f"{name} lacks {missing}"


def test_app_services_share_database_and_broker(compose):
    envs = [compose["services"][name]["environment"] for name in APP_SERVICES]
    assert all(env["NNQ_DATABASE_URL"].startswith("postgresql") for env in envs)
    assert {env["NNQ_DATABASE_URL"] for env in envs} == {envs[0]["NNQ_DATABASE_URL"]}
    assert {env["NNQ_BROKER_URL"] for env in envs} == {"redis://redis:6379/0"}


def test_migration_runs_before_the_database_is_used(compose):
    services = compose["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in DB_SERVICES:
        after = services[name]["depends_on"]["migrate"]["condition"]
        assert after == "service_completed_successfully", name


def test_redis_keeps_messages(compose):
    argv = command_of(compose["services"]["redis"])
    assert argv[argv.index("--appendonly") + 1] == "yes"
    assert argv[argv.index("--maxmemory-policy") + 1] == "noeviction"


def test_workers_listen_on_their_queues_and_cpu_workers_scale(compose):
    services = compose["services"]
    cpu = command_of(services["worker-cpu"])
    gpu = command_of(services["worker-gpu"])
    assert cpu[cpu.index("-Q") + 1] == "cpu" and gpu[gpu.index("-Q") + 1] == "gpu"
    assert "container_name" not in services["worker-cpu"]
    assert "ports" not in services["worker-cpu"]
    assert services["worker-gpu"]["profiles"] == ["gpu"]
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]


def test_build_targets_exist_in_the_dockerfile(compose):
    stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", (ROOT / "Dockerfile").read_text(),
                            flags=re.MULTILINE | re.IGNORECASE))
    for name in APP_SERVICES:
        assert compose["services"][name]["build"]["target"] in stages, name


def test_postgres_has_a_volume_and_a_healthcheck(compose):
    postgres = compose["services"]["postgres"]
    assert postgres["volumes"] and postgres["healthcheck"]["test"]


def test_the_image_and_compose_start_gunicorn_alike(compose):
    dockerfile = (ROOT / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*?\])\s*$", dockerfile, flags=re.MULTILINE | re.DOTALL)
    image_argv = json.loads(cmd.group(1).replace("\\\n", ""))
    check_gunicorn(image_argv)
    assert gunicorn_parts(image_argv) == gunicorn_parts(command_of(compose["services"]["api"]))


def test_health_checks_use_the_documented_endpoints(compose):
    from service import create_app

    services = compose["services"]
    api_check = " ".join(services["api"]["healthcheck"]["test"])
    path = re.search(r"127\.0\.0\.1:8000(/[^'\"]+)", api_check).group(1)
    app = create_app({"NNQ_DATABASE_URL": "sqlite://"})  # routes only; nothing is stored
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    assert path == "/api/v1/health" and path in routes
    assert "/api/v1/health/live" in routes
    for name in ("worker-cpu", "worker-gpu"):
        check = " ".join(services[name]["healthcheck"]["test"])
        assert "inspect ping -d celery@$$HOSTNAME" in check, name
        assert command_of(services[name])[:3] == ["celery", "-A", "workers"]
