"""The Docker files, checked without Docker (it is not on every machine
that runs the tests): the compose files parse, the replicas variant has
PostgreSQL, two gateway replicas on one ``storage.url`` with the password
from a compose secret, and nginx in front of both; the single-container
SQLite variant stays. Each gateway's settings file is loaded by the real
settings loader with the environment compose gives it."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from ruamel.yaml import YAML

from gateway.settings import Settings, load_settings
from tests.conftest import _ADMIN_HASH
from tests.net import free_port
from tests.serving import serving

DOCKER = Path(__file__).resolve().parent.parent / "docker"
# Values for the variables compose requires from whoever starts it.
OPERATOR_ENV = {
    "CALGATEWAY_API_TOKEN": "compose-api-token-0123456789abcdef",
    "CALGATEWAY_FEED_ANNA": "compose-feed-anna-0123456789abcdef",
    "CALGATEWAY_ADMIN_PASSWORD_HASH": _ADMIN_HASH,
}
_COMPOSE_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::[-?]([^}]*))?\}")


def compose(name: str) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load((DOCKER / name).read_text(encoding="utf-8"))
    return data


def environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment as compose fills it: required variables
    from OPERATOR_ENV, the others' defaults."""

    def fill(value: str) -> str:
        def one(match: re.Match[str]) -> str:
            name, default = match[1], match[2] or ""
            return OPERATOR_ENV.get(name, default if "?" not in match[0] else "")

        return _COMPOSE_VAR.sub(one, value)

    return {key: fill(str(value)) for key, value in service.get("environment", {}).items()}


def mounted(service: dict[str, Any], target: str) -> Path:
    """The host file a service mounts at ``target``."""
    for volume in service.get("volumes", []):
        source, _, rest = volume.partition(":")
        if rest.split(":")[0] == target:
            return (DOCKER / source).resolve()
    raise AssertionError(f"nothing mounted at {target}: {service.get('volumes')}")


def gateway_settings(service: dict[str, Any]) -> Settings:
    """The settings a gateway container starts with, loaded for real."""
    return load_settings(
        mounted(service, "/etc/calgateway/config.yaml"), environ=environment(service)
    )


def test_the_replicas_share_one_postgresql_url_with_the_password_from_a_secret() -> None:
    spec = compose("compose.yaml")
    services = spec["services"]
    assert set(services) == {"postgres", "gateway-1", "gateway-2", "proxy"}
    replicas = [services["gateway-1"], services["gateway-2"]]
    settings = [gateway_settings(s) for s in replicas]
    assert settings[0].storage == settings[1].storage

    storage = settings[0].storage
    url = urlsplit(storage.url)
    assert storage.backend == "postgresql" and url.password is None
    postgres = services["postgres"]
    assert url.hostname == "postgres"  # the service's name on the compose network
    assert url.username == postgres["environment"]["POSTGRES_USER"]
    assert url.path.strip("/") == postgres["environment"]["POSTGRES_DB"]

    # One secret holds the password, for the database and for both replicas;
    # it is a file that git ignores, never a value in the compose file.
    secret_path = Path("/run/secrets/postgres_password")
    assert storage.password_path == secret_path
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == str(secret_path)
    assert "POSTGRES_PASSWORD" not in postgres["environment"]
    for service in [postgres, *replicas]:
        assert service["secrets"] == ["postgres_password"]
    secret_file = DOCKER / spec["secrets"]["postgres_password"]["file"]
    ignored = (secret_file.parent / ".gitignore").read_text().split()
    assert ignored == ["*", "!.gitignore"]
    for service in services.values():
        for key in environment(service):
            # A password goes in as a file or a hash, never as a value.
            assert "PASSWORD" not in key or key.endswith(("_FILE", "_HASH")), key
    for service in replicas:
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert postgres["healthcheck"]["test"][1] == "pg_isready"


def test_the_proxy_points_at_both_replicas_and_is_their_trusted_proxy() -> None:
    spec = compose("compose.yaml")
    services = spec["services"]
    proxy = services["proxy"]
    conf = mounted(proxy, "/etc/nginx/conf.d/default.conf").read_text(encoding="utf-8")
    upstreams = dict(re.findall(r"upstream\s+(\S+)\s*\{([^}]*)\}", conf))
    passed_to = re.findall(r"proxy_pass\s+http://([^;/\s]+)", conf)
    assert passed_to == list(upstreams)  # every location goes to the one upstream
    servers = re.findall(r"^\s*server\s+(\S+?)(?:\s[^;]*)?;", upstreams[passed_to[0]], re.M)
    replicas = {name: s for name, s in services.items() if name.startswith("gateway-")}
    assert sorted(servers) == sorted(
        f"{name}:{gateway_settings(s).server.port}" for name, s in replicas.items()
    )
    # Only the proxy is published; the replicas are reached through it.
    assert proxy["ports"] == ["8080:80"]
    assert all("ports" not in s for s in replicas.values())

    address = proxy["networks"]["default"]["ipv4_address"]
    subnet = spec["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    for service in replicas.values():
        server = gateway_settings(service).server
        assert server.trusted_proxies == (address,)
        assert server.max_connections_per_address == 0


def test_the_single_container_sqlite_variant_stays() -> None:
    services = compose("compose.sqlite.yaml")["services"]
    assert list(services) == ["calgateway"]
    service = services["calgateway"]
    settings = gateway_settings(service)
    assert settings.storage.backend == "sqlite"
    # The database file lies on the named volume, so it outlives the container.
    data_mount = next(v for v in service["volumes"] if not v.startswith("."))
    volume, target = data_mount.split(":")[:2]
    assert volume in compose("compose.sqlite.yaml")["volumes"]
    assert settings.storage.sqlite_path.parent == Path(target)
    assert service["ports"] == ["8080:8080"]


# --- the image recipe -----------------------------------------------------------------

REPO = DOCKER.parent
DOCKERFILE = DOCKER / "Dockerfile"
LOCK = REPO / "requirements.lock"


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (keyword, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), " ".join(rest.split())))
    return found


def the(keyword: str) -> list[str]:
    return [rest for kw, rest in instructions() if kw == keyword]


def exec_form(rest: str) -> list[str]:
    """``CMD ["a", "b"]`` -> ["a", "b"] (exec form: no shell in between)."""
    value = json.loads(rest)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), rest
    return value


def pip_installs() -> list[list[str]]:
    """Every ``pip install ...`` the image runs, in order, as argument lists."""
    return [
        shlex.split(part)
        for rest in the("RUN")
        for part in rest.split("&&")
        if shlex.split(part)[:2] == ["pip", "install"]
    ]


def _name(requirement: str) -> str:
    """A requirement's project name, normalized as PEP 503 does."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement.strip())
    assert name is not None, requirement
    return re.sub(r"[-_.]+", "-", name[0]).lower()


def locked() -> dict[str, str]:
    """requirements.lock's pins: name -> version; every pin carries hashes."""
    text = LOCK.read_text(encoding="utf-8")
    pins = {}
    for block in re.split(r"\n(?=\S)", text):
        if block.startswith("#") or not block.strip():
            continue
        requirement = block.split("\\")[0].strip()
        assert "==" in requirement, block
        assert "--hash=sha256:" in block, f"no hash for {requirement}"
        pins[_name(requirement)] = requirement.split("==")[1].split(";")[0].strip()
    return pins


def test_the_base_image_is_pinned_by_version() -> None:
    (base,) = the("FROM")
    # python:3.11.11-slim-bookworm, not python:3.11-slim or :latest; or a digest.
    assert re.fullmatch(r"python:\d+\.\d+\.\d+-slim-[a-z]+(@sha256:[0-9a-f]{64})?", base), base


def test_the_image_and_make_install_the_same_locked_dependencies() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    runtime = {_name(r) for r in pyproject["project"]["dependencies"]}
    pins = locked()
    assert runtime <= set(pins), f"not in requirements.lock: {runtime - set(pins)}"

    lock_install, project_install = pip_installs()
    assert "--require-hashes" in lock_install
    assert lock_install[lock_install.index("-r") + 1] == "requirements.lock"
    assert "requirements.lock ./" in the("COPY")
    # The project itself adds nothing the lock did not pin.
    assert "--no-deps" in project_install and project_install[-1] == "."

    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "pip install --quiet --require-hashes -r requirements.lock" in makefile
    assert "pip install --quiet --no-deps -e ." in makefile


def test_every_package_of_the_project_is_copied_into_the_image() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = {rest.split()[0] for rest in the("COPY")}
    assert packages <= copied, f"not copied into the image: {packages - copied}"


def test_the_healthcheck_asks_the_server_of_the_settings_file_the_image_runs() -> None:
    (command,) = [exec_form(rest) for rest in the("CMD")]
    assert command[:3] == ["calgateway", "serve", "--config"]
    config = command[3]
    (health,) = the("HEALTHCHECK")
    options, _, check = health.partition("CMD ")
    assert exec_form(check) == ["calgateway", "healthcheck", "--config", config]
    assert "--timeout=" in options
    # The file at that path is docker/config.yaml, the one compose mounts there too.
    assert f"docker/config.yaml {config}" in the("COPY")


def test_the_data_directory_is_a_volume() -> None:
    (volume,) = the("VOLUME")
    settings = load_settings(DOCKER / "config.yaml", environ=OPERATOR_ENV)
    assert settings.storage.sqlite_path.parent == Path(volume)


# --- the entrypoint in a clean venv ---------------------------------------------------

# Installing the lock takes ~15-20 s with pip's cache warm (more on a cold
# cache: every wheel is downloaded); the whole test about 30 s.
INSTALL_TIMEOUT = 600


def _image_tree(app: Path) -> None:
    """/app as the Dockerfile's COPY instructions fill it (not the whole checkout)."""
    for rest in the("COPY"):
        *sources, target = rest.split()
        if not target.startswith("./"):
            continue  # into the image's /etc: the settings file, replaced below
        for source in sources:
            origin = REPO / source
            place = app / target / (origin.name if target.endswith("/") else "")
            if origin.is_dir():
                shutil.copytree(origin, place, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(origin, place)


def _container_settings(tmp_path: Path, port: int) -> Path:
    """docker/config.yaml on a free port, its database in ``tmp_path``."""
    text = (DOCKER / "config.yaml").read_text(encoding="utf-8")
    text = text.replace("  port: 8080\n", f"  port: {port}\n", 1)
    text = text.replace("sqlite:////var/lib/calgateway/", f"sqlite:///{tmp_path.as_posix()}/")
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def image(tmp_path: Path) -> tuple[Path, Path]:
    """(venv, /app): a clean venv with what the Dockerfile's pip commands
    install, run in a copy of /app as its COPY instructions fill it."""
    app = tmp_path / "app"
    app.mkdir()
    _image_tree(app)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    for install in pip_installs():
        # The Dockerfile's own pip commands, in /app; pip's cache may serve them here.
        argv = [str(venv / "bin" / "pip"), *[a for a in install[1:] if a != "--no-cache-dir"]]
        done = subprocess.run(
            argv, cwd=app, capture_output=True, text=True, timeout=INSTALL_TIMEOUT
        )
        assert done.returncode == 0, done.stderr[-3000:]
    return venv, app


async def test_the_entrypoint_runs_in_a_clean_venv_as_the_image_runs_it(
    tmp_path: Path, image: tuple[Path, Path]
) -> None:
    venv, _ = image
    port = free_port()
    config = _container_settings(tmp_path, port)
    (command,) = [exec_form(rest) for rest in the("CMD")]
    (health,) = the("HEALTHCHECK")
    healthcheck = exec_form(health.partition("CMD ")[2])
    image_config = command[3]
    # The image's environment: its PATH (the venv stands for /usr/local), the
    # variables compose passes; run from elsewhere, so this checkout is not importable.
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONDONTWRITEBYTECODE": "1",
        **OPERATOR_ENV,
    }
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()

    async def run_healthcheck() -> subprocess.CompletedProcess[str]:
        argv = [str(config) if a == image_config else a for a in healthcheck]
        argv[0] = str(venv / "bin" / argv[0])
        return await asyncio.to_thread(
            subprocess.run, argv, env=env, cwd=elsewhere, capture_output=True, text=True, timeout=30
        )

    entry = [str(venv / "bin" / command[0])]
    assert command[1:3] == ["serve", "--config"]
    async with serving(config, env=env, command=entry, cwd=elsewhere) as server:
        # docker/config.yaml listens on every interface; the check asks loopback.
        assert server.port == port
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/healthz") as response,
        ):
            assert response.status == 200
        healthy = await run_healthcheck()
        assert healthy.returncode == 0, healthy.stderr
        await server.stop()
    unhealthy = await run_healthcheck()
    assert unhealthy.returncode == 1
    assert f"127.0.0.1:{port}/healthz" in unhealthy.stderr
