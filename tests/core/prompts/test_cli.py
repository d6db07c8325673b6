"""``chorus prompts`` as an operator runs it: a real process on the embedded Redis of a data dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

_SCRIPT = Path(sys.executable).with_name("chorus")
CHORUS = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-c", "from core.cli import main; main()"]
ROOT = Path(__file__).resolve().parents[3]

FILE = """\
# kept in git
format: chorus-prompts/1
community: discord:4242
approval: on
prompts:
  persona: |-
    You are Captain Zorblax, poet of {community}.
    You love short sentences.
  style@x: Tiny. At most {max_chars} characters.
"""


def chorus(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("CHORUS_", "OPENAI_", "TELEGRAM_"))}
    environ.update({"CHORUS_DATA_DIR": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)})
    return subprocess.run(
        [*CHORUS, *args], input=stdin, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=environ
    )


def test_import_export_round_trip(tmp_path: Path) -> None:
    (tmp_path / "in.yaml").write_text(FILE)
    dry = chorus(tmp_path, "prompts", "import", "in.yaml", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "discord:4242: would change 3" in dry.stdout and "persona: new text" in dry.stdout
    assert chorus(tmp_path, "prompts", "list").stdout == ""  # the dry run stored nothing

    done = chorus(tmp_path, "prompts", "import", "in.yaml", "-m", "from git")
    assert done.returncode == 0 and "discord:4242: changed 3" in done.stdout, done.stderr
    assert chorus(tmp_path, "prompts", "list").stdout == "discord:4242\tpersona, style@x\n"

    assert chorus(tmp_path, "prompts", "export", "discord:4242", "-o", "out.yaml").returncode == 0
    exported = (tmp_path / "out.yaml").read_bytes()
    assert b"approval: 'on'" in exported and b"You love short sentences." in exported
    again = chorus(tmp_path, "prompts", "import", "out.yaml")
    assert "changed 0" in again.stdout
    assert chorus(tmp_path, "prompts", "export", "discord:4242").stdout.encode() == exported

    toml = chorus(tmp_path, "prompts", "export", "discord:4242", "--format", "toml", "-o", "out.toml")
    assert toml.returncode == 0
    into_other = chorus(tmp_path, "prompts", "import", "out.toml", "--community", "telegram:-100")
    assert "telegram:-100: changed 3" in into_other.stdout
    copied = chorus(tmp_path, "prompts", "export", "telegram:-100").stdout
    assert copied.encode() == exported.replace(b"discord:4242", b"telegram:-100")


def test_bad_input_is_one_clear_message_and_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(FILE.replace("{community}", "{community.__class__}"))
    out = chorus(tmp_path, "prompts", "import", "bad.yaml")
    assert out.returncode == 2
    assert "persona: The persona prompt was not accepted" in out.stderr and "attribute access" in out.stderr
    assert "Traceback" not in out.stderr
    assert chorus(tmp_path, "prompts", "list").stdout == ""
    wrong = chorus(tmp_path, "prompts", "export", "discord:1}:x")
    assert wrong.returncode == 2 and "is not a community" in wrong.stderr


def test_prompts_edited_in_the_console_can_be_exported(tmp_path: Path) -> None:
    session = '/prompt set persona -m "for the newsletter" You are Ada\'s helper.\n/prompt history persona\n'
    run = chorus(tmp_path, "run", "--moderator", stdin=session)
    assert run.returncode == 0, run.stderr
    assert "The persona prompt is now v1." in run.stdout and "“for the newsletter”" in run.stdout
    exported = chorus(tmp_path, "prompts", "export", "console:local")
    assert "  persona: You are Ada's helper.\n" in exported.stdout
