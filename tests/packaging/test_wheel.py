"""The built wheel is a complete venue: build it, install it in a fresh venv, start the venue from it.

Runs outside the checkout (cwd is a temporary directory, no PYTHONPATH), so everything the venue
reads at run time (console pages, Swagger UI assets, contract artifacts, migrations) must come from
the installed package.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import httpx
import pytest

from settlement.chain import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RUNTIME_FILES = (
    "gateway/static/index.html",
    "gateway/static/console.js",
    "gateway/static/console.css",
    "gateway/static/swagger/swagger-ui-bundle.js",
    "gateway/static/swagger/swagger-ui.css",
    "gateway/static/swagger/LICENSE",
    "settlement/contract_artifacts/DvPSettlement.json",
    "settlement/contract_artifacts/DemoSecurityToken.json",
    "settlement/contract_artifacts/NoteAttestationResolver.json",
    "attestation/abi/EAS.json",
    "attestation/abi/SchemaRegistry.json",
    "store/migrations/env.py",
    "store/migrations/versions/0001_initial_schema.py",
)


def _run(cmd: list[str], *, timeout: float, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
                 timeout=300, cwd=out)
    assert built.returncode == 0, built.stderr[-3000:]
    (path,) = out.glob("omn_venue-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel and its `embedded` extra (dependencies from the package index)."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home / "v", with_pip=True)
    python = home / "v" / "bin" / "python"
    done = _run([str(python), "-m", "pip", "install", "-q", f"{wheel}[embedded]"], timeout=900, cwd=home)
    assert done.returncode == 0, done.stderr[-3000:]
    return python


def test_wheel_holds_the_files_the_venue_reads_at_run_time(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in RUNTIME_FILES if f not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert not any(n.startswith(("tests/", "node_modules/", "contracts/")) for n in names)


def test_installed_wheel_runs_the_demo_with_console_and_docs(installed: Path, tmp_path: Path) -> None:
    where = _run([str(installed), "-c", "from settlement.artifacts import artifacts_dir; print(artifacts_dir())\n"
                  "from attestation import eas_abi, registry_abi, resolver_abi\n"
                  "print(len(eas_abi()), len(registry_abi()), len(resolver_abi()))"],
                 timeout=60, cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    packaged, abi_sizes = where.stdout.splitlines()
    assert "site-packages" in packaged and str(REPO) not in packaged
    assert all(int(n) > 0 for n in abi_sizes.split())

    port = free_port()
    venue = installed.parent / "venue"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.Popen(
        [str(venue), "demo", "--data-dir", str(tmp_path / "var"), "--host", "127.0.0.1", "--port", str(port),
         "--duration", "120"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        health = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                health = httpx.get(f"{base}/health", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert health is not None and health.status_code == 200, f"venue did not come up (exit {proc.poll()})"
        assert health.json() == {"status": "ok"}
        console = httpx.get(f"{base}/console", timeout=5)
        assert console.status_code == 200 and "<html" in console.text.lower()
        assert httpx.get(f"{base}/console/console.js", timeout=5).status_code == 200
        docs = httpx.get(f"{base}/docs", timeout=5)
        assert docs.status_code == 200 and "/docs/assets/swagger-ui-bundle.js" in docs.text
        bundle = httpx.get(f"{base}/docs/assets/swagger-ui-bundle.js", timeout=5)
        assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(timeout=10)
    assert "Traceback" not in err, err[-3000:]


def test_without_the_embedded_extra_the_embedded_chain_says_what_to_install(installed: Path, tmp_path: Path) -> None:
    # runs after the demo test (module order): remove the in-process EVM as a production install lacks it
    removed = _run([str(installed), "-m", "pip", "uninstall", "-y", "-q", "eth-tester", "py-evm"], timeout=120,
                   cwd=tmp_path)
    assert removed.returncode == 0, removed.stderr
    started = _run([str(installed.parent / "venue"), "run", "--data-dir", str(tmp_path / "var"),
                    "--port", str(free_port())], timeout=120, cwd=tmp_path)
    assert started.returncode == 1
    assert "pip install 'omn-venue[embedded]'" in started.stderr
    assert "Traceback" not in started.stderr
