"""The `tabserve` command: installed, every documented command line parses, one error path."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tabserve.cli.main import build_parser, main
from tests.servers import REPO

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
COMMAND_LINE = re.compile(r"^(?:\.venv/bin/)?tabserve (?P<args>[a-z].*)$")


def documented_command_lines() -> list[tuple[str, str]]:
    """Every `tabserve ...` line inside a code block of the README and docs/ (comments cut)."""
    found = []
    for document in DOCUMENTS:
        in_code = False
        for line in document.read_text().splitlines():
            if line.startswith("```"):
                in_code = not in_code
                continue
            match = COMMAND_LINE.match(line.split("  #")[0].strip()) if in_code else None
            if match:
                found.append((document.name, match["args"]))
    return found


def test_the_installed_command_runs() -> None:
    command = Path(sys.executable).with_name("tabserve")
    result = subprocess.run([str(command), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for name in ("train", "serve", "score", "stream", "monitor", "deploy"):
        assert f"    {name}" in result.stdout


@pytest.mark.parametrize(("document", "args"), documented_command_lines())
def test_every_documented_command_line_parses(document: str, args: str) -> None:
    argv = shlex.split(args)
    if "--help" in argv:
        with pytest.raises(SystemExit) as help_shown:
            build_parser().parse_args(argv)
        assert help_shown.value.code == 0, (document, args)
        return
    assert callable(build_parser().parse_args(argv).run), (document, args)


def test_the_documents_show_command_lines() -> None:
    assert len(documented_command_lines()) >= 15


def test_config_is_accepted_before_and_after_the_command() -> None:
    before = build_parser().parse_args(["--config", "a.yaml", "monitor"])
    after = build_parser().parse_args(["monitor", "--config", "b.yaml"])
    neither = build_parser().parse_args(["monitor"])
    assert (before.config, after.config, neither.config) == ("a.yaml", "b.yaml", None)


def test_a_bad_configuration_names_the_key_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "configuration.yaml"
    config.write_text("serving:\n  max_batch_recordz: 5\n")
    assert main(["score", "in.csv", "out.csv", "--config", str(config)]) == 2
    error = capsys.readouterr().err
    assert (
        error.startswith("error: invalid configuration") and "serving.max_batch_recordz: unknown key" in error
    )
    assert "Traceback" not in error
