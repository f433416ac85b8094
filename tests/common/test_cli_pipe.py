"""``telbill ... | head``: a reader that goes away ends the command quietly (exit 141, no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_closed_pipe_ends_the_command_without_a_traceback() -> None:
    # `head -c 0` exits at once, so the command's first line of output meets a closed pipe
    proc = subprocess.run(f"'{sys.executable}' -m pipelines.cli catalogue validate | head -c 0; "
                          "echo ${PIPESTATUS[0]} >&2", shell=True, executable="/bin/bash", cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout == ""
    assert proc.stderr.strip() == "141", proc.stderr
