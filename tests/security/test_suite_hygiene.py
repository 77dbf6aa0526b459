"""Issue N, defect 14: no wall-clock assertion in ``make test``.

A test may wait for a condition with a generous deadline (tests/waiting.py) and may assert that
something waited *at least* a while (load only makes that longer), but it never asserts that
something finished *within* a time: that fails on a loaded machine and belongs to ``make bench``
(tests/bench, excluded here). This lint reads every test module's AST and flags ``assert``s that
bound an elapsed time from above, e.g. ``assert time.monotonic() - t0 < 2``, ``assert elapsed <= 1``,
``assert latency < 1.0``, ``assert abs(now - time.time()) < 5``. A line may opt out with a
``# wallclock-ok: <reason>`` comment (say why it cannot flake).
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
EXCLUDED = (TESTS / "bench",)
CLOCKS = {"monotonic", "monotonic_ns", "perf_counter", "perf_counter_ns", "time", "time_ns", "process_time"}
ELAPSED_NAMES = ("elapsed", "latency", "duration", "took", "runtime", "wall")
OPT_OUT = "# wallclock-ok:"


def _is_clock_call(node: ast.AST) -> bool:
    """``time.monotonic()``, ``perf_counter()``, ``loop.time()``, ``datetime.now()`` ..."""
    if not isinstance(node, ast.Call):
        return False
    f = node.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
    return name in CLOCKS or (name in ("now", "utcnow") and isinstance(f, ast.Attribute))


class _Scope(ast.NodeVisitor):
    """Per function: names holding clock readings, names holding elapsed times, then the asserts."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.clock: set[str] = set()
        self.elapsed: set[str] = set()
        self.found: list[tuple[int, str]] = []

    def _has_clock(self, node: ast.AST) -> bool:
        return any(_is_clock_call(n) or (isinstance(n, ast.Name) and n.id in self.clock) for n in ast.walk(node))

    def _is_elapsed(self, node: ast.AST) -> bool:
        for n in ast.walk(node):
            if (isinstance(n, ast.BinOp) and isinstance(n.op, ast.Sub)
                    and not isinstance(n.left, ast.Constant) and not isinstance(n.right, ast.Constant)
                    and (self._has_clock(n.left) or self._has_clock(n.right))):
                return True  # clock - t0, t1 - t0, value - time.time(); not ``before - 1``
            if isinstance(n, ast.Name) and (n.id in self.elapsed or any(w in n.id.lower() for w in ELAPSED_NAMES)):
                return True
            if isinstance(n, ast.Attribute) and any(w in n.attr.lower() for w in ELAPSED_NAMES):
                return True
        return False

    def _targets(self, node: ast.AST) -> list[str]:
        return [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]

    def visit_Assign(self, node: ast.Assign) -> None:
        self._assigned([t for tgt in node.targets for t in self._targets(tgt)], node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._assigned(self._targets(node.target), node.value)
        self.generic_visit(node)

    def _assigned(self, names: list[str], value: ast.AST) -> None:
        if self._is_elapsed(value):
            self.elapsed.update(names)
        elif self._has_clock(value):
            self.clock.update(names)

    def visit_Assert(self, node: ast.Assert) -> None:
        line = self.lines[node.lineno - 1] if node.lineno <= len(self.lines) else ""
        if OPT_OUT not in line:
            for cmp in (n for n in ast.walk(node.test) if isinstance(n, ast.Compare)):
                operands = [cmp.left, *cmp.comparators]
                for i, op in enumerate(cmp.ops):
                    left, right = operands[i], operands[i + 1]
                    upper = (isinstance(op, ast.Lt | ast.LtE) and self._is_elapsed(left)) or \
                            (isinstance(op, ast.Gt | ast.GtE) and self._is_elapsed(right))
                    if upper:
                        self.found.append((node.lineno, line.strip()))
                        break
        self.generic_visit(node)


def wallclock_asserts(path: Path) -> list[tuple[int, str]]:
    """``(line, source)`` of every assert in ``path`` that bounds an elapsed time from above."""
    source = path.read_text()
    lines = source.splitlines()
    tree = ast.parse(source, str(path))
    found: list[tuple[int, str]] = []
    scopes = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)] or [tree]
    for fn in scopes:
        v = _Scope(lines)
        for stmt in fn.body:  # nested functions are scopes of their own but see the outer names too
            v.visit(stmt)
        found.extend(v.found)
    return sorted(set(found))


def test_the_lint_catches_the_usual_shapes(tmp_path):
    sample = tmp_path / "test_sample.py"
    sample.write_text(
        "import time\n"
        "def test_a():\n"
        "    t0 = time.monotonic()\n"
        "    assert time.monotonic() - t0 < 2\n"               # 4
        "    elapsed = time.perf_counter() - t0\n"
        "    assert elapsed <= 1.5, elapsed\n"                  # 6
        "    before, latency = 1, 2\n"
        "    assert 1.0 > latency\n"                            # 8
        "    assert abs(now[0] - time.time()) < 5\n"            # 9
        "    assert time.monotonic() - t0 >= 0.8\n"             # lower bound: allowed
        "    assert elapsed < 9  # wallclock-ok: a reason\n"    # opted out
        "    assert len([1]) < 2\n"                             # no clock
        "    assert ok and out.stats.took_s < 3\n"              # 13
        "    before = time.time()\n"
        "    assert before - 1 <= 7 <= before + 1\n"            # a bracket around a reading: allowed
    )
    assert [n for n, _ in wallclock_asserts(sample)] == [4, 6, 8, 9, 13]


def test_no_wallclock_assertions_in_the_suite():
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        if any(path.is_relative_to(x) for x in EXCLUDED) or path == Path(__file__).resolve():
            continue
        offenders += [f"{path.relative_to(TESTS.parent)}:{n}: {src}" for n, src in wallclock_asserts(path)]
    assert not offenders, ("wall-clock assertions (wait on a condition with a deadline instead; latency belongs "
                           "in tests/bench):\n" + "\n".join(offenders))


def test_bench_lines_carry_the_core_keys():
    from tests.bench.benchlib import CORE_KEYS, Result

    line = Result("x", 0.5, 2.0, "≥2×", True, {"events": 3}, modelled="baseline: modelled").to_json()
    assert tuple(line)[:len(CORE_KEYS)] == CORE_KEYS and line["floor"] is None and line["ratio"] == 4.0
    assert line["modelled"] == "baseline: modelled" and line["events"] == 3
    clash = Result("x", 1, 1, "t", True, {"baseline": "a note that would hide the figure"})
    try:
        clash.to_json()
    except ValueError:
        pass
    else:
        raise AssertionError("an extra key may not replace a core key")


def test_every_bench_exits_non_zero_when_it_misses():
    """``make bench`` runs them all and fails at the end when any script's exit status says it missed."""
    import re

    for path in sorted((TESTS / "bench").glob("bench_*.py")):
        text = path.read_text()
        assert "report(" in text, path.name
        assert not re.search(r"^\s*return 0\s*$", text, re.M), f"{path.name} exits 0 whatever its results"


def test_what_tests_and_tools_write_inside_the_repo_is_ignored():
    """``.ci/run`` fails on a dirty work tree after ``make test``: the places tests and tools write to
    inside the checkout (browser screenshots, the sandbox's var/, forge output, npm's install) must
    be ignored by git. Everything else a test writes goes to a tmp_path."""
    import shutil
    import subprocess

    repo = TESTS.parent
    if shutil.which("git") is None or not (repo / ".git").exists():
        import pytest

        pytest.skip("not a git checkout")
    written = ["artifacts/screenshots/overview.png", "var/sandbox/state.json", "contracts/out/X.sol/X.json",
               "contracts/cache/solidity-files-cache.json", "infra/toolchain/node_modules",
               "guard.db", "guard.db-wal", ".pytest_cache/v", ".hypothesis/examples/x"]
    not_ignored = [p for p in written if subprocess.run(["git", "check-ignore", "-q", "--no-index", p], cwd=repo,
                                                        capture_output=True, check=False).returncode != 0]
    assert not not_ignored, f"written by tests or tools but not ignored by git: {not_ignored}"


def test_the_slowest_first_list_names_files_that_exist():
    """``make test`` hands these to workers first; a renamed file would silently fall to the end."""
    from tests.conftest import SLOWEST_FIRST

    missing = [name for name in SLOWEST_FIRST if not (TESTS.parent / name).is_file()]
    assert not missing and len(set(SLOWEST_FIRST)) == len(SLOWEST_FIRST), missing
