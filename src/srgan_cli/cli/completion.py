"""``srgan completion SHELL``: print the shell completion script for ``srgan``.

click writes the script (``click.shell_completion``). When the user presses Tab, the shell
runs ``srgan`` again with ``_SRGAN_COMPLETE`` set, and click's ``main`` answers with the
matching commands, options and choices before any command runs, so completion stays as
quick as ``srgan --help``: no TensorFlow, numpy or Pillow is imported.
"""

from __future__ import annotations

import click

from srgan_cli.cli.options import CONTEXT_SETTINGS

SHELLS: tuple[str, ...] = ("bash", "zsh", "fish")
PROG_NAME = "srgan"
COMPLETE_VAR = "_SRGAN_COMPLETE"
"""The variable click's ``main`` looks for: '_' + the program name in upper case + '_COMPLETE'."""

COMPLETION_EPILOG = """\b
Install (one line, then open a new shell):
  bash:  echo 'eval "$(srgan completion bash)"' >> ~/.bashrc
  zsh:   echo 'eval "$(srgan completion zsh)"' >> ~/.zshrc
  fish:  srgan completion fish > ~/.config/fish/completions/srgan.fish
"""


@click.command(epilog=COMPLETION_EPILOG, context_settings=CONTEXT_SETTINGS)
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish)."""
    click.echo(completion_script(ctx.find_root().command, shell))


def completion_script(command: click.Command, shell: str) -> str:
    """click's completion script for ``command`` (the ``srgan`` group) in ``shell``."""
    from click.shell_completion import get_completion_class

    completer = get_completion_class(shell)
    if completer is None:  # click.Choice already refuses other names; this is for callers
        raise click.BadParameter(f"unsupported shell {shell!r}; choose one of {SHELLS}")
    return completer(command, {}, PROG_NAME, COMPLETE_VAR).source()
