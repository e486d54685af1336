"""``srgan completion SHELL``: the script is printed, can be sourced, and completes."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from click.testing import CliRunner

from srgan_cli.cli import main
from srgan_cli.cli.completion import COMPLETE_VAR, SHELLS


def completion(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env, prog_name="srgan")


@pytest.mark.parametrize("shell", SHELLS)
def test_script_for_each_shell(shell):
    result = completion("completion", shell)
    assert result.exit_code == 0, result.output
    assert COMPLETE_VAR in result.stdout and "srgan" in result.stdout
    assert len(result.stdout.splitlines()) > 3


def test_unknown_shell_is_a_usage_error():
    result = completion("completion", "tcsh")
    assert result.exit_code == 2 and "tcsh" in result.stderr


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_script_can_be_sourced(tmp_path):
    script = tmp_path / "srgan.bash"
    script.write_text(completion("completion", "bash").stdout)
    done = subprocess.run(
        ["bash", "-c", f"source {script} && complete -p srgan"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "-F _srgan_completion srgan" in done.stdout


def test_the_shell_gets_commands_and_choices_back():
    """What the sourced script asks srgan at Tab, answered without running a command."""

    def ask(words: str, index: int) -> list[str]:
        env = {COMPLETE_VAR: "bash_complete", "COMP_WORDS": words, "COMP_CWORD": str(index)}
        return completion(env=env).stdout.splitlines()

    assert "plain,upscale" in ask("srgan up", 1)
    assert "plain,completion" in ask("srgan comp", 1)
    assert ask("srgan upscale x --format ", 4) == [
        f"plain,{f}" for f in ("png", "jpeg", "webp", "tiff")
    ]
