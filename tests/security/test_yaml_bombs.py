"""YAML that expands (anchors/aliases: "billion laughs"), nests too deep or is too large is refused
before a node tree is built, in every kind of file primeguard reads: config, scenario, policy and
policy test files. The assertions are on the error; the timeout marker is only a safety net (the
old code spent about a minute of CPU on these documents)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import primeguard
from primeguard.config import load_config
from primeguard.domain.errors import ConfigError, PolicyLoadError
from primeguard.policy import load
from primeguard.policy.loader import run_tests
from primeguard.sandbox.control import sandbox_up
from primeguard.sandbox.scenario import load_scenario

REPO = Path(__file__).resolve().parents[2]
ALIAS = "YAML alias '*l0' is not allowed"
MAX_YAML_BYTES = 8 * 1024 * 1024  # the documented cap


def bomb(levels: int = 8, prefix: str = "") -> str:
    """A billion-laughs document: each level is nine aliases of the previous one (9**levels strings).
    The first alias is on line ``prefix lines + 2``."""
    lines = [prefix.rstrip("\n")] if prefix else []
    lines.append("l0: &l0 [" + ", ".join(['"lol"'] * 9) + "]")
    for n in range(1, levels + 1):
        lines.append(f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _alias_line(text: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if "*l0" in line)


@pytest.mark.timeout(20)
def test_config_bomb_is_refused_at_the_alias(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(bomb(prefix="version: 1\n"))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:line {_alias_line(path.read_text())}: {ALIAS}")


@pytest.mark.timeout(60)
def test_config_bomb_via_cli_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(bomb())
    out = subprocess.run([sys.executable, "-m", "primeguard.cli", "sweep", "--config", str(path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=50)
    assert out.returncode == 2
    err = " ".join(out.stderr.split())
    assert f"config.yaml:line 2: {ALIAS}" in err and "Traceback" not in out.stderr, out.stderr


@pytest.mark.timeout(20)
def test_scenario_bomb_is_refused_before_anything_starts(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(bomb(prefix="name: bomb\n"))
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    assert str(info.value).startswith(f"{path}:line 3: {ALIAS}")
    with pytest.raises(ConfigError, match=r"line 3: YAML alias"):
        sandbox_up(path, tmp_path / "sb")
    assert not (tmp_path / "sb").exists()


def _policies(tmp_path: Path) -> Path:
    root = tmp_path / "policies"
    shutil.copytree(REPO / "policies", root)
    return root


@pytest.mark.timeout(20)
def test_policy_bomb_is_refused_at_the_alias(tmp_path: Path) -> None:
    root = _policies(tmp_path)
    (root / "bomb.yaml").write_text(bomb(prefix="version: 1\nkind: approvals\nid: bomb\n"))
    with pytest.raises(PolicyLoadError) as info:
        load(root)
    err = info.value
    assert err.file.endswith("bomb.yaml") and err.line == 5 and ALIAS in err.reason, str(err)


@pytest.mark.timeout(20)
def test_policy_test_file_bomb_is_refused_at_the_alias(tmp_path: Path) -> None:
    root = _policies(tmp_path)
    (root / "bomb_test.yaml").write_text(bomb())
    report = run_tests(root)
    assert report.load_error is None
    bad = [f for f in report.files if f.file.endswith("bomb_test.yaml")]
    assert len(bad) == 1 and bad[0].error is not None
    assert bad[0].error.endswith(f"bomb_test.yaml:2: {ALIAS} (anchors and aliases are refused: write the value out)")
    assert all(f.ok for f in report.files if f is not bad[0])  # the other test files still run


@pytest.mark.parametrize(("text", "expect"), [
    ("base: &base {chain_id: 1}\nchains: []\n", "line 1: YAML anchor '&base' is not allowed"),
    ("a: &x 1\nb: *x\n", "line 2: YAML alias '*x' is not allowed"),
    ("defaults: &d {timeout_s: 5}\nchains:\n  - <<: *d\n    id: ethereum\n", "line 3: YAML alias '*d'"),
    ("chains: " + "[" * 200 + "]" * 200 + "\n", "line 1: YAML nested deeper than 64 levels"),
    ("a: 1\n---\nb: 2\n", "line 2: YAML syntax error: one YAML document per file"),
])
def test_refused_constructs_name_their_line(tmp_path: Path, text: str, expect: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"config.yaml:{expect}" in str(info.value)


def _too_big(path: Path, head: str) -> Path:
    with path.open("w") as fh:
        fh.write(head)
        fh.write("#" * (MAX_YAML_BYTES - len(head)) + "\n")  # one byte over the cap
    return path


def test_oversized_files_are_refused(tmp_path: Path) -> None:
    cfg = _too_big(tmp_path / "config.yaml", "version: 1\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: file is larger than 8 MiB"):
        load_config(cfg)
    root = _policies(tmp_path)
    _too_big(root / "big.yaml", "version: 1\n")
    with pytest.raises(PolicyLoadError, match=r"big\.yaml:\?: file is larger than 8 MiB"):
        load(root)
    big_test = _too_big(root / "keys_test.yaml", "cases: []\n")
    (root / "big.yaml").unlink()
    report = run_tests(root)
    assert any(f.error and "larger than 8 MiB" in f.error and f.file.endswith(big_test.name) for f in report.files)


# What reads YAML text into data. Only primeguard/safeyaml.py may call these on yaml itself.
_READERS = {"load", "safe_load", "full_load", "unsafe_load", "load_all", "safe_load_all", "compose",
            "compose_all", "parse", "scan"}


def test_every_yaml_read_goes_through_the_hardened_reader() -> None:
    pkg = Path(primeguard.__file__).parent
    offenders = []
    for path in sorted(pkg.rglob("*.py")):
        if path.name == "safeyaml.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "yaml" \
                    and node.attr in _READERS:
                offenders.append(f"{path.relative_to(pkg)}:{node.lineno}: yaml.{node.attr}")
            if isinstance(node, ast.Attribute) and node.attr in ("get_single_node", "get_single_data", "get_data"):
                offenders.append(f"{path.relative_to(pkg)}:{node.lineno}: .{node.attr}")
    assert not offenders, offenders
