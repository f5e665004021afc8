"""platform/compose.yaml and platform/Procfile.production hold together with what the image
and the settings provide (no container engine runs here, so this checks what
`docker compose config` and a start-up would): the file parses, no two services publish
one host port and `web` publishes none (it scales), every dependency, volume and network
is declared, each service's command is a real entry point of the image with options its
program accepts, and every environment variable set for Lhama's image is one the settings
read."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "platform" / "compose.yaml"
PROCFILE = ROOT / "platform" / "Procfile.production"
LHAMA_IMAGE = "lhama:latest"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def lhama_services(compose: dict) -> dict[str, dict]:
    return {name: svc for name, svc in compose["services"].items() if svc.get("image") == LHAMA_IMAGE}


def command_args(command) -> list[str]:
    return list(command) if isinstance(command, list) else shlex.split(command)


def settings_environment_names() -> set[str]:
    """Every environment variable config/settings.py reads (env.str("X"), get_mandatory("X"), ...)."""
    source = (ROOT / "config" / "settings.py").read_text()
    return set(re.findall(r"""(?:env(?:\(\))?\.\w+|Env\(\)\.\w+|get_mandatory)\(\s*["']([A-Z][A-Z0-9_]*)["']""", source))


def host_port(mapping) -> str:
    if isinstance(mapping, dict):
        return str(mapping.get("published", ""))
    parts = str(mapping).split(":")
    return parts[-2] if len(parts) >= 2 else parts[0]


def test_the_compose_file_parses_and_merges_the_shared_block(compose):
    services = lhama_services(compose)
    assert {"web", "worker", "beat", "migrate", "static"} <= set(services)
    for name in ("web", "worker", "beat"):
        assert services[name]["environment"]["DATABASE_URL"].startswith("postgres://")
        assert services[name]["environment"]["REDIS_URL"].startswith("redis://")
    assert {"nginx", "postgres", "redis", "vllm-8b", "vllm-70b", "vllm-405b"} <= set(compose["services"])


def test_no_two_services_publish_one_host_port_and_web_publishes_none(compose):
    published: dict[str, str] = {}
    for name, svc in compose["services"].items():
        for mapping in svc.get("ports", []):
            port = host_port(mapping)
            assert port not in published, f"{name} and {published[port]} both publish host port {port}"
            published[port] = name
    web = compose["services"]["web"]
    assert "ports" not in web, "web scales to N replicas: it must not publish a host port"
    assert web["deploy"]["replicas"] >= 2
    assert set(published.values()) == {"nginx"}, "only nginx is reachable from outside"


def test_exactly_one_beat_and_one_shot_migrations(compose):
    services = compose["services"]
    assert services["beat"]["deploy"]["replicas"] == 1
    for one_shot in ("migrate", "static"):
        assert services[one_shot]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_every_dependency_volume_and_network_is_declared(compose):
    services = compose["services"]
    volumes = set(compose.get("volumes", {}))
    networks = set(compose.get("networks", {}))
    for name, svc in services.items():
        depends = svc.get("depends_on", {})
        for dependency in depends if isinstance(depends, list) else depends.keys():
            assert dependency in services, f"{name} depends on unknown service {dependency}"
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in volumes, f"{name} mounts undeclared volume {source}"
            elif source.startswith("."):
                assert (COMPOSE.parent / source).exists() or source == "./tls", f"{name} mounts missing {source}"
        for network in svc.get("networks", []):
            assert network in networks


def test_redis_persists_and_postgres_keeps_its_data_on_volumes(compose):
    redis = compose["services"]["redis"]
    assert "--appendonly" in redis["command"] and redis["command"][redis["command"].index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert any(v.endswith(":/var/lib/postgresql/data") for v in compose["services"]["postgres"]["volumes"])


@pytest.mark.parametrize(
    ("service", "gpus", "flags"),
    [
        ("vllm-8b", 1, {"--served-model-name=llama-3.1-8b-instruct", "--enable-prefix-caching"}),
        ("vllm-70b", 2, {"--quantization=fp8", "--tensor-parallel-size=2", "--enable-prefix-caching"}),
        ("vllm-405b", 8, {"--tensor-parallel-size=8", "--enable-prefix-caching"}),
    ],
)
def test_each_tier_has_a_profile_its_gpus_and_tensor_parallel_flags(compose, service, gpus, flags):
    svc = compose["services"][service]
    assert svc["profiles"], f"{service} starts only with its profile"
    assert flags <= set(svc["command"])
    devices = svc["deploy"]["resources"]["reservations"]["devices"][0]
    assert devices["count"] == gpus
    tp = next((int(f.split("=")[1]) for f in svc["command"] if f.startswith("--tensor-parallel-size=")), 1)
    assert tp == gpus, "tensor parallelism spans exactly the GPUs reserved"


def test_the_router_routes_on_the_header_lhama_sends(compose):
    from assistant.generation import _read_upstream  # noqa: F401  (the header's sender)

    router = compose["services"]["router-70b"]
    assert "--routing-logic=session" in router["command"]
    key = next(f.split("=", 1)[1] for f in router["command"] if f.startswith("--session-key="))
    source = (ROOT / "assistant" / "generation.py").read_text()
    assert f'"{key}": spec.conversation_id' in source


def test_every_environment_variable_set_for_lhama_is_read_by_the_settings(compose):
    names = settings_environment_names()
    for name, svc in lhama_services(compose).items():
        for variable in svc.get("environment", {}):
            assert variable in names, f"{name} sets {variable}, which config/settings.py never reads"


def test_daphne_never_takes_the_clients_own_forwarded_for_claim(compose):
    """--proxy-headers would make Daphne trust the leftmost X-Forwarded-For; the proxy is in
    TRUSTED_PROXIES instead (config/clientip.py, docs/security.md)."""
    web = compose["services"]["web"]
    assert "--proxy-headers" not in command_args(web["command"])
    assert web["environment"]["TRUSTED_PROXIES"] == compose["networks"]["lhama"]["ipam"]["config"][0]["subnet"]
    processes = [line for line in PROCFILE.read_text().splitlines() if line and not line.startswith("#")]
    assert processes and not any("--proxy-headers" in line for line in processes)


# --- the commands exist in the image -------------------------------------------------------


def check_command(args: list[str]) -> None:
    """Fail unless `args` is a command Lhama's image can run with options its program accepts."""
    program = args[0]
    if program == "daphne":
        import ast
        import importlib.util

        from daphne.cli import CommandLineInterface

        parsed = CommandLineInterface().parser.parse_args(args[1:])
        module, attribute = parsed.application.split(":")
        # Read, not imported: importing the ASGI module starts the web process's warm-up.
        spec = importlib.util.find_spec(module)
        assert spec is not None and spec.origin, f"no module {module}"
        tree = ast.parse(Path(spec.origin).read_text())
        assigned = {t.id for node in ast.walk(tree) if isinstance(node, ast.Assign) for t in node.targets
                    if isinstance(t, ast.Name)}
        assert attribute in assigned, f"{module} defines no {attribute}"
    elif program == "celery":
        from celery.bin.celery import celery

        assert args[1:3] == ["-A", "config"], "the Celery app is config.celery"
        from config.celery import app

        assert app.main
        subcommand = celery.commands[args[3]]
        subcommand.make_context(args[3], args[4:], resilient_parsing=True)
    elif program == "python":
        assert args[1] == "manage.py"
        from django.core.management import get_commands, load_command_class

        name = args[2]
        app = get_commands()[name]
        command = load_command_class(app, name)
        command.create_parser("manage.py", name).parse_args(args[3:])
    else:
        raise AssertionError(f"{program} is not an entry point of Lhama's image")


def test_every_lhama_service_runs_a_command_of_the_image(compose):
    for svc in lhama_services(compose).values():
        check_command(command_args(svc["command"]))


def test_every_procfile_process_runs_a_command_of_the_image():
    for line in PROCFILE.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        _, command = line.split(":", 1)
        for part in command.split("&&"):
            args = [re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", a) for a in shlex.split(part)]
            check_command(args)


def test_the_containerfile_default_command_is_one_too():
    text = (ROOT / "platform" / "Containerfile").read_text()
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M)
    assert cmd is not None
    check_command(yaml.safe_load(cmd.group(1)))


def test_check_command_refuses_what_the_image_cannot_run():
    with pytest.raises(AssertionError):
        check_command(["gunicorn", "config.wsgi"])
    with pytest.raises(KeyError):
        check_command(["python", "manage.py", "no_such_command"])
    with pytest.raises(SystemExit):
        check_command(["daphne", "--no-such-flag", "config.asgi:application"])
