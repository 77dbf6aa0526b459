"""The policy file boundary: the one module of :mod:`primeguard.policy` that touches the file system.

It reads a policy directory into an in-memory bundle (relative path -> text), and offers the
directory forms of loading, linting and testing: each reads what it needs here, then hands the
data to the pure functions (:func:`~primeguard.policy.bundle.load_bundle`,
:func:`~primeguard.policy.lint.lint_bundle`, :func:`~primeguard.policy.cases.run_test_files`).
Every file goes through the hardened, size-capped reader (:func:`primeguard.safeyaml.read_yaml_text`).
A test (``tests/unit/policy/test_io_boundary.py``) keeps every other module of the package off files.

The bundle functions are re-exported here, so ``from primeguard.policy.loader import load_bundle``
keeps working.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path, PurePath

from primeguard.domain.errors import PolicyLoadError
from primeguard.policy.bundle import (
    CANONICAL_FORMAT,
    TEST_SUFFIXES,
    PolicyLoadErrors,
    canonical_content,
    check_bundle,
    content_hash,
    display_name,
    files_from_canonical,
    is_policy_file,
    is_test_file,
    load_bundle,
    normalise_address,
)
from primeguard.policy.cases import PolicyTestReport, failed_report, run_test_files
from primeguard.policy.lint import LintIssue, lint_bundle
from primeguard.policy.policyset import PolicySet
from primeguard.policy.yamlsrc import YamlSourceError
from primeguard.safeyaml import read_yaml_text


def read_policy_dir(directory: str | PurePath) -> dict[str, str]:
    """Policy files of ``directory`` (recursive, ``*_test.yaml`` excluded) as relative path -> text.

    Raises:
        PolicyLoadError: ``directory`` is not a directory, or a file cannot be read (``file:line``).
    """
    root = Path(directory)
    if not root.is_dir():
        raise PolicyLoadError("not a directory", file=str(root))
    files: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and is_policy_file(path.name) and not any(p.startswith(".") for p in path.parts):
            rel = path.relative_to(root).as_posix()
            try:
                files[rel] = read_yaml_text(path)  # size-capped, UTF-8 only
            except YamlSourceError as exc:
                raise PolicyLoadError(exc.message, file=str(path), line=exc.line) from None
    return files


def read_test_files(directory: str | PurePath) -> tuple[dict[str, str], dict[str, YamlSourceError]]:
    """The ``*_test.yaml`` files under ``directory`` (recursive): ``(texts, unreadable)``, both keyed
    by relative path; ``unreadable`` holds why each file that could not be read was refused, in
    directory order."""
    root = Path(directory)
    tests: dict[str, str] = {}
    unreadable: dict[str, YamlSourceError] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and is_test_file(path.name):
            rel = path.relative_to(root).as_posix()
            try:
                tests[rel] = read_yaml_text(path)  # size-capped, UTF-8 only
            except YamlSourceError as exc:
                unreadable[rel] = exc
    return tests, unreadable


def read_input_text(path: str | PurePath) -> str:
    """A YAML or JSON input file (``policy explain``) as text: size-capped, UTF-8 only.

    Raises:
        YamlSourceError: not a regular file, too large, or not UTF-8.
    """
    return read_yaml_text(Path(path))


def load(directory: str | PurePath) -> PolicySet:
    """Load and validate every policy file under ``directory``.

    Raises:
        PolicyLoadError: the first problem, as ``file:line: message``.
    """
    return load_bundle(read_policy_dir(directory), root=str(directory))


def lint_dir(directory: str | PurePath, *, now: datetime | None = None) -> list[LintIssue]:
    """Lint every policy file under ``directory`` (and note policy files without tests).

    Raises:
        PolicyLoadError: ``directory`` is not a directory, or a file cannot be read.
    """
    root = Path(directory)
    files = read_policy_dir(root)
    return lint_bundle(files, _test_file_names(root), root=str(directory), now=now)


def run_tests(directory: str | PurePath) -> PolicyTestReport:
    """Load the policy in ``directory`` and run every ``*_test.yaml`` under it."""
    root = Path(directory)
    try:
        policy = load(root)
    except PolicyLoadError as exc:
        return failed_report(str(exc))
    tests, unreadable = read_test_files(root)
    return run_test_files(policy, tests, unreadable)


def _test_file_names(root: Path) -> list[str]:
    return [path.relative_to(root).as_posix() for path in sorted(root.rglob("*"))
            if path.is_file() and is_test_file(path.name)]


__all__ = [
    "CANONICAL_FORMAT",
    "TEST_SUFFIXES",
    "PolicyLoadErrors",
    "canonical_content",
    "check_bundle",
    "content_hash",
    "display_name",
    "files_from_canonical",
    "is_policy_file",
    "is_test_file",
    "lint_dir",
    "load",
    "load_bundle",
    "normalise_address",
    "read_input_text",
    "read_policy_dir",
    "read_test_files",
    "run_tests",
]
