"""At least 20 malformed policy files, each rejected with file:line and what is wrong.

Each fixture in ``malformed/`` starts with ``# expect: LINE TEXT`` (and optionally
``# replaces: NAME`` on the next line). It is loaded together with the example policies (so
cross-file references resolve; a ``replaces`` fixture stands in for that example file) and must
fail on exactly that line of that file, with TEXT in the message.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from primeguard.domain.errors import PolicyLoadError
from primeguard.policy import load_bundle
from tests.unit.policy.helpers import example_files

FIXTURES = sorted((Path(__file__).parent / "malformed").glob("*.yaml"))


def _expectation(path: Path) -> tuple[int, str, str | None]:
    lines = path.read_text(encoding="utf-8").splitlines()
    m = re.match(r"# expect: (\d+) (.+)$", lines[0])
    assert m, f"{path.name}: first line must be '# expect: LINE TEXT'"
    r = re.match(r"# replaces: (\S+)$", lines[1]) if len(lines) > 1 else None
    return int(m.group(1)), m.group(2), r.group(1) if r else None


def test_there_are_at_least_20_fixtures() -> None:
    assert len(FIXTURES) >= 20


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_malformed_policy_is_rejected_at_its_line(fixture: Path) -> None:
    line, text, replaces = _expectation(fixture)
    files = example_files()
    if replaces:
        del files[replaces]
    files[fixture.name] = fixture.read_text(encoding="utf-8")
    with pytest.raises(PolicyLoadError) as info:
        load_bundle(files, root="policies")
    err = info.value
    assert err.file == f"policies/{fixture.name}", str(err)
    assert err.line == line, str(err)
    assert text in err.reason, str(err)
    assert str(err).startswith(f"policies/{fixture.name}:{line}: ")
