"""``python -m service``: the command line lives in :mod:`service.cli.commands`."""

from service.cli.commands import cli

if __name__ == "__main__":
    cli()
