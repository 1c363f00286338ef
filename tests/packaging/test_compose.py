"""compose.yaml and the Dockerfile.

Docker is optional: with a reachable daemon the image is built and the stack's config validated;
without one that test skips. The stack's own command lines (deploy step, venue) are always run for
real outside docker, against a local anvil and PostgreSQL, with the hostnames mapped to loopback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import yaml
from eth_account import Account

from settlement import Chain
from settlement.chain import anvil_keys, free_port

REPO = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
PG_ADMIN_URL = os.environ.get("VENUE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
VOLUME = "/home/venue/var"


def test_compose_has_venue_postgres_anvil_and_a_deploy_step() -> None:
    assert {"venue", "postgres", "anvil", "deploy"} <= set(SERVICES)
    venue = SERVICES["venue"]
    assert venue["depends_on"]["deploy"]["condition"] == "service_completed_successfully"
    assert venue["environment"]["VENUE_CHAIN"] == "http://anvil:8545"
    assert "@postgres:5432/" in venue["environment"]["VENUE_DB_URL"]


def test_compose_dev_keys_are_anvil_accounts_and_agree() -> None:
    keys = list(anvil_keys(2).items())
    admin, settler = SERVICES["deploy"]["environment"], SERVICES["venue"]["environment"]
    assert Account.from_key(admin["ADMIN_KEY"]).address == keys[0][0]
    assert Account.from_key(settler["VENUE_SETTLER_KEY"]).address == admin["SETTLER_ADDRESS"] == keys[1][0]


def test_dockerfile_copies_every_package_the_wheel_needs() -> None:
    text = (REPO / "Dockerfile").read_text()
    packages = [p.strip('"*') for p in _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]]
    missing = [p for p in packages if f"COPY {p} {p}" not in text]
    assert not missing, f"Dockerfile does not copy {missing}"
    assert "COPY contracts/artifacts contracts/artifacts" in text


def _pyproject() -> dict[str, Any]:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _docker_ok() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=20, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@pytest.mark.slow
def test_docker_image_builds_and_compose_config_is_valid() -> None:
    if not _docker_ok():
        pytest.skip("no reachable docker daemon: the image build is not checked here (see docs/deployment.md)")
    config = subprocess.run(["docker", "compose", "-f", str(REPO / "compose.yaml"), "config", "-q"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert config.returncode == 0, config.stderr
    built = subprocess.run(["docker", "build", "-q", "-t", f"omn-venue-test:{uuid.uuid4().hex[:8]}", str(REPO)],
                           capture_output=True, text=True, timeout=1200, check=False)
    assert built.returncode == 0, built.stderr[-3000:]


@pytest.fixture
def pg_url() -> Iterator[str]:
    admin_url = sa.make_url(PG_ADMIN_URL)
    name = f"compose_check_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL at {admin_url.render_as_string(hide_password=True)} is not reachable: {exc}")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _local(value: str, rpc: str, data: Path) -> str:
    return value.replace("http://anvil:8545", rpc).replace(VOLUME, str(data))


@pytest.mark.slow
@pytest.mark.anvil
@pytest.mark.postgres
def test_compose_command_lines_deploy_and_start_the_venue(anvil: Chain, pg_url: str, tmp_path: Path) -> None:
    rpc = str(anvil.w3.provider.endpoint_uri)  # type: ignore[attr-defined]
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    env.pop("PYTHONPATH", None)

    deploy = SERVICES["deploy"]
    script = _local(deploy["command"][0], rpc, tmp_path).replace("$$", "$")
    deployed = subprocess.run([*deploy["entrypoint"], script], env={**env, **deploy["environment"]},
                              capture_output=True, text=True, timeout=300, check=False, cwd=REPO)
    assert deployed.returncode == 0, deployed.stderr[-3000:]
    assert (tmp_path / "deployment.json").exists()

    venue = SERVICES["venue"]
    port = free_port()
    command = [_local(arg, rpc, tmp_path) for arg in venue["command"]]
    command[command.index("--port") + 1] = str(port)
    command[command.index("--host") + 1] = "127.0.0.1"
    venue_env = {k: _local(str(v), rpc, tmp_path) for k, v in venue["environment"].items()}
    venue_env["VENUE_DB_URL"] = pg_url
    proc = subprocess.Popen([str(Path(bin_dir) / "venue"), *command], env={**env, **venue_env}, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert health is not None and health.status_code == 200, f"venue did not come up (exit {proc.poll()})"
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err, err[-3000:]
