"""The agent as production installs it: a wheel built from this repository, installed into a fresh
virtualenv outside the checkout, with no forge (nor anything of the toolchain) on PATH, runs
``primeguard sweep`` and a vault withdrawal against a sandbox. Nothing at run time may reach for
``contracts/`` or forge; contract ABIs come from the package."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.security.world import DEST, SecurityWorld, build_world

pytestmark = pytest.mark.chain


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding only our wheel; third-party packages are borrowed read-only from
    the test's environment through a plain path entry (so the checkout's editable install is not)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in ("agent", "pyproject.toml", "README.md"):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy2)(REPO / name, src / name)
    dist = base / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
                            "--no-index", "-q", "-w", str(dist)], cwd=src, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stdout + build.stderr
    [wheel] = list(dist.glob("primeguard-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index",
                              "-q", str(wheel)], capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _env() -> dict[str, str]:
    drop = {"PYTHONPATH", "PRIMEGUARD_HOME", "PRIMEGUARD_TOKEN", "PRIMEGUARD_FORGE", "PRIMEGUARD_ANVIL",
            "PRIMEGUARD_CAST", "PRIMEGUARD_SOLC", "VIRTUAL_ENV"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PATH"] = "/usr/bin:/bin"
    return env


def _run(venv: Path, *args: str, cwd: Path, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = _env()
    if token is not None:
        env["PRIMEGUARD_TOKEN"] = token
    return subprocess.run([str(venv / "bin" / "primeguard"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecurityWorld]:
    yield from build_world(tmp_path_factory.mktemp("wheel-world"))


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    out = subprocess.run([str(installed / "bin" / "python"), "-c",
                          "import primeguard, shutil; print(primeguard.__file__); print(shutil.which('forge'))"],
                         cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    where, forge = out.stdout.split()
    assert Path(where).is_relative_to(installed) and not Path(where).is_relative_to(REPO)
    assert forge == "None"


def test_sweep_and_vault_withdrawal_from_the_wheel(installed: Path, world: SecurityWorld, tmp_path: Path) -> None:
    cfg = str(world.config)
    sweep = _run(installed, "sweep", "--config", cfg, "--json", cwd=tmp_path)
    assert sweep.returncode == 0, sweep.stderr[-2000:]
    report = json.loads(sweep.stdout)
    assert report["schema"] == "primeguard.sweep/1"
    assert any(r["client"] == "gamma" and r["collateral_usd"] not in (None, "0") for r in report["clients"])

    world.sb.refresh_prices()  # the feeds' age limit is 120 s: a loaded machine can spend that on the sweep above
    req = _run(installed, "withdraw", "request", "--config", cfg, "--account", "gamma-vault-ethereum",
               "--asset", "USDC", "--amount", "2500", "--to", DEST, "--json", cwd=tmp_path, token=world.tokens["tom"])
    assert req.returncode == 0, req.stdout + req.stderr[-2000:]
    wid = json.loads(req.stdout)["id"]
    assert json.loads(req.stdout)["state"] == "approved", req.stdout
    done = _run(installed, "withdraw", "execute", wid, "--config", cfg, "--json", cwd=tmp_path,
                token=world.tokens["tom"])
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["state"] == "confirmed" and result["tx_hash"], result
