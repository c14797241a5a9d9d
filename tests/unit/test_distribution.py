"""What the project ships: the wheel (built from exactly the files the container build copies),
the Dockerfile and deploy/compose.yaml, checked against the configuration they set, and by
`docker compose config` where the docker CLI has compose. Building and running the image
needs a Docker engine: tests/protocol/test_container_image.py."""

from __future__ import annotations

import email.parser
import fnmatch
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from webinar.config import config_keys, load_config

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
#: Variables the server reads besides its configuration keys.
OTHER_VARIABLES = {"WEBINAR_SECRETS_KEY", "WEBINAR_CONFIG"}
#: What deploy/compose.env.example asks for, with test values.
COMPOSE_ENV = {
    "POSTGRES_PASSWORD": "pg-" + "p" * 29,
    "REDIS_PASSWORD": "redis-" + "r" * 26,
    "TURN_SECRET": "turn-" + "t" * 27,
    "WEBINAR_SECRETS_KEY": "k" * 43,
}


# ----------------------------------------------------------------------------- helpers


def _ignore_match(pattern: str, name: str) -> bool:
    """Docker's .dockerignore matching: a pattern matches a path or one of its parent folders,
    segment by segment (``*`` stays within a segment); a leading ``**/`` matches any depth."""
    parts = name.split("/")
    segments = pattern.strip("/").split("/")
    if segments[0] == "**":
        tail = segments[1:]
        return any(_segments_match(tail, parts[i : i + len(tail)]) for i in range(len(parts)))
    return _segments_match(segments, parts[: len(segments)])


def _segments_match(pattern: list[str], parts: list[str]) -> bool:
    return len(parts) == len(pattern) and all(
        fnmatch.fnmatchcase(part, glob) for part, glob in zip(parts, pattern, strict=True)
    )


def build_context() -> list[Path]:
    """The tracked files of the container's build context, by .dockerignore (last match wins)."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    kept: list[Path] = []
    for name in tracked:
        included = True
        for pattern in patterns:
            if _ignore_match(pattern.removeprefix("!"), name):
                included = pattern.startswith("!")
        if included and (ROOT / name).is_file():
            kept.append(Path(name))
    return kept


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable syntax: ``${V}``, ``${V:-default}``, ``${V-default}``,
    ``${V:?error}``, ``${V?error}``, ``$$``."""

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        value = env.get(name)
        missing = not value if op in (":-", ":?") else value is None
        if not missing:
            return str(value)
        if op in (":-", "-"):
            return arg
        if op in (":?", "?"):
            raise KeyError(f"{name}: {arg}")
        return ""

    return re.sub(
        r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}",
        one,
        text,
    )


def compose(env: dict[str, str]) -> dict[str, Any]:
    return dict(yaml.safe_load(interpolate(COMPOSE.read_text(), env)))


def environment_of(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as the container gets it (``KEY:`` with no value is empty)."""
    return {k: "" if v is None else str(v) for k, v in service["environment"].items()}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found: list[tuple[str, str]] = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), " ".join(rest.split())))
    return found


def runtime_env() -> dict[str, str]:
    """The ENV of the Dockerfile's last stage."""
    stages: list[list[tuple[str, str]]] = []
    for word, rest in dockerfile_instructions():
        if word == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word, rest))
    env: dict[str, str] = {}
    for word, rest in stages[-1]:
        if word == "ENV":
            for key, value in re.findall(r"(\w+)=(\S+)", rest):
                env[key] = value
    return env


# ----------------------------------------------------------------------------- the wheel


def test_wheel_from_the_build_context(tmp_path: Path) -> None:
    """The wheel builds from the files the image's build stage copies, under the free PyPI
    name, with the licence, the command, the compiled catalogs and the browser client."""
    context = tmp_path / "context"
    for name in build_context():
        target = context / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    assert {p.parts[0] for p in build_context()} == {
        "pyproject.toml",
        "hatch_build.py",
        "README.md",
        "LICENSE",
        "NOTICE",
        "src",
        "web",
    }
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(context)],
        check=True,
        timeout=300,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    (wheel,) = wheels.glob("*.whl")
    assert wheel.name.startswith("webinar_server-")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(z.read(f"{info}/METADATA").decode())
        entry_points = z.read(f"{info}/entry_points.txt").decode()
        licence = z.read(f"{info}/licenses/LICENSE").decode()
    assert metadata["Name"] == "webinar-server"
    assert metadata["License-Expression"] == "Apache-2.0"
    assert sorted(metadata.get_all("License-File") or []) == ["LICENSE", "NOTICE"]
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert "webinar = webinar.cli:main" in entry_points
    for language in ("ru", "cs"):
        assert f"webinar/i18n/locale/{language}/LC_MESSAGES/messages.mo" in names
        assert f"webinar/i18n/locale/{language}/LC_MESSAGES/client.json" in names
    assert "webinar/web/static/js/i18n.js" in names
    assert any(n.startswith("webinar/web/templates/") for n in names)

    # Installed in a fresh environment, `webinar` runs from the wheel, not from a checkout.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    purelib = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            purelib,
            str(wheel),
        ],
        check=True,
        timeout=120,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    # Its dependencies from this environment's site-packages (after the venv's own).
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("WEBINAR_") and k != "PYTHONPATH"
    }
    env["PYTHONPATH"] = sysconfig.get_path("purelib")
    probe = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sys, webinar, webinar.cli; print(webinar.__file__);"
            " sys.argv = ['webinar', 'event', 'create', '--title', 'From the wheel', '--json',"
            f" '--data-dir', {str(tmp_path / 'data')!r}]; sys.exit(webinar.cli.main())",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr
    where, created = probe.stdout.splitlines()
    assert where.startswith(purelib), where
    assert '"title": "From the wheel"' in created
    assert (Path(purelib) / "webinar" / "web" / "static").is_dir()


# ----------------------------------------------------------------------------- Dockerfile


def test_dockerfile_contract() -> None:
    instructions = dockerfile_instructions()
    froms = [rest for word, rest in instructions if word == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS build"), froms  # multi-stage
    assert all("-slim" in f for f in froms)
    last = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    runtime = instructions[last:]
    users = [rest for word, rest in runtime if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), users
    assert ("ENTRYPOINT", '["webinar"]') in runtime
    assert ("CMD", '["serve"]') in runtime
    health = [rest for word, rest in runtime if word == "HEALTHCHECK"]
    assert len(health) == 1 and health[0].endswith('CMD ["webinar", "healthcheck", "--quiet"]')
    volumes = [rest for word, rest in runtime if word == "VOLUME"]
    assert volumes == ['["/var/lib/webinar"]']

    env = runtime_env()
    assert env["WEBINAR_DATA_DIR"] == "/var/lib/webinar"
    assert env["WEBINAR_HTTP_HOST"] == "0.0.0.0"  # reachable from outside the container
    config = load_config(None, {k: v for k, v in env.items() if k.startswith("WEBINAR_")})
    assert (config.http.host, config.http.port) == ("0.0.0.0", 8080)
    (exposed,) = [rest for word, rest in runtime if word == "EXPOSE"]
    ice = config.ice
    assert sorted(exposed.split()) == sorted(
        [f"{config.http.port}/tcp", f"{ice.udp_port_min}-{ice.udp_port_max}/udp"]
    )
    for key in env:
        if key.startswith("WEBINAR_"):
            assert key in {e for _k, e in config_keys()} | OTHER_VARIABLES, key


# ----------------------------------------------------------------------------- compose.yaml


def test_compose_sets_a_valid_configuration() -> None:
    document = compose(COMPOSE_ENV)
    assert set(document["services"]) == {"webinar", "coturn", "redis", "postgres"}
    server = document["services"]["webinar"]
    assert server["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    assert (ROOT / "deploy" / server["build"]["context"] / server["build"]["dockerfile"]).is_file()
    environment = environment_of(server)
    known = {env for _key, env in config_keys()} | OTHER_VARIABLES
    assert set(environment) <= known, set(environment) - known
    # The image's own settings, then the compose file's: one valid configuration.
    image = {k: v for k, v in runtime_env().items() if k.startswith("WEBINAR_")}
    config = load_config(None, {**image, **environment})
    assert config.cluster.redis_url == f"redis://:{COMPOSE_ENV['REDIS_PASSWORD']}@redis:6379/0"
    assert config.cluster.database_url == (
        f"postgresql://webinar:{COMPOSE_ENV['POSTGRES_PASSWORD']}@postgres:5432/webinar"
    )
    assert config.turn.secret == COMPOSE_ENV["TURN_SECRET"]
    assert environment["WEBINAR_SECRETS_KEY"] == COMPOSE_ENV["WEBINAR_SECRETS_KEY"]
    # The media range is published 1:1, and the HTTP port on loopback for the TLS proxy.
    udp = f"{config.ice.udp_port_min}-{config.ice.udp_port_max}"
    assert f"{udp}:{udp}/udp" in server["ports"]
    assert "127.0.0.1:8080:8080/tcp" in server["ports"]
    # The proxy's address as the container sees it is the network's gateway.
    (network,) = document["networks"]["webinar"]["ipam"]["config"]
    assert config.http.trusted_proxies == (network["gateway"],)
    assert server["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    # coturn and the server share the secret; the relay may reach the server's media address.
    turn = document["services"]["coturn"]["command"]
    assert f"--static-auth-secret={COMPOSE_ENV['TURN_SECRET']}" in turn
    assert f"--allowed-peer-ip={config.ice.announced_ip}" in turn
    redis = document["services"]["redis"]
    assert COMPOSE_ENV["REDIS_PASSWORD"] in redis["command"]
    assert (
        document["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
        == (COMPOSE_ENV["POSTGRES_PASSWORD"])
    )

    # Other choices from deploy/.env go where they belong.
    wider = compose(
        {
            **COMPOSE_ENV,
            "WEBINAR_UDP_PORT_MIN": "41000",
            "WEBINAR_UDP_PORT_MAX": "41999",
            "WEBINAR_PUBLIC_IP": "203.0.113.10",
            "WEBINAR_WORKERS": "3",
        }
    )["services"]["webinar"]
    config = load_config(None, {**image, **environment_of(wider)})
    assert (config.ice.udp_port_min, config.ice.udp_port_max) == (41000, 41999)
    assert config.ice.announced_ip == "203.0.113.10"
    assert config.server.worker_count == 3
    assert "41000-41999:41000-41999/udp" in wider["ports"]


@pytest.mark.parametrize("missing", sorted(COMPOSE_ENV))
def test_compose_requires_each_secret(missing: str) -> None:
    env = {k: v for k, v in COMPOSE_ENV.items() if k != missing}
    with pytest.raises(KeyError, match=missing):
        compose(env)


def test_compose_env_example_names_every_variable() -> None:
    example = (ROOT / "deploy" / "compose.env.example").read_text()
    named = set(re.findall(r"^([A-Z_]+)=", example, re.MULTILINE))
    used = set(re.findall(r"\$\{([A-Z_]+)", COMPOSE.read_text()))
    assert used | {"COMPOSE_PROJECT_NAME"} == named, (used - named, named - used)


def compose_command() -> list[str] | None:
    """``docker compose`` (the CLI plugin), else the standalone ``docker-compose``."""
    if shutil.which("docker"):
        probe = subprocess.run(
            ["docker", "compose", "version"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_docker_compose_config(tmp_path: Path) -> None:
    """`docker compose config` validates the file (it needs no Docker engine)."""
    command = compose_command()
    if command is None:
        pytest.skip("no `docker compose` (nor docker-compose) on this machine")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WEBINAR_", "TURN_"))}
    env = {**env, **COMPOSE_ENV, "HOME": str(tmp_path)}
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == {"webinar", "coturn", "redis", "postgres"}
    assert COMPOSE_ENV["TURN_SECRET"] in result.stdout
    # Without a required secret it refuses, naming it.
    del env["POSTGRES_PASSWORD"]
    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr
