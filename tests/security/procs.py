"""Find the processes a test started, by what they hold open: a process with a file (its log, its
working directory) under the test's own directory is ours. Other sessions' anvils are never seen."""

from __future__ import annotations

import os
from pathlib import Path


def processes_using(directory: Path) -> dict[int, str]:
    """pid -> command line of every live process with a cwd or open file under ``directory``."""
    root = str(directory.resolve())
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            links = [os.readlink(entry / "cwd")]
            links += [os.readlink(fd) for fd in (entry / "fd").iterdir()]
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone, or not ours to look at
        if state == "Z":
            continue
        if any(link == root or link.startswith(root + "/") for link in links):
            found[int(entry.name)] = cmdline.strip()
    return found
