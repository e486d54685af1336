"""``python -m srgan_cli``: the same command as the ``srgan`` console script."""

from srgan_cli.cli import main

if __name__ == "__main__":
    main(prog_name="srgan")
