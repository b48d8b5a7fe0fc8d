"""The Docker files, checked without Docker (it is not on every machine
that runs the tests): the compose files parse, the replicas variant has
PostgreSQL, two gateway replicas on one ``storage.url`` with the password
from a compose secret, and nginx in front of both; the single-container
SQLite variant stays. Each gateway's settings file is loaded by the real
settings loader with the environment compose gives it."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ruamel.yaml import YAML

from gateway.settings import Settings, load_settings
from tests.conftest import _ADMIN_HASH

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
