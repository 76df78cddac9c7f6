"""Entry point of the ``rollguard`` command.

Each area registers one click group here; keep this file a table of contents.
"""

from __future__ import annotations

import importlib
import sys

import click
from click.shell_completion import ShellComplete

from rollguard import __version__
from rollguard.cli import extras

# (module, attribute) of each sub-command group; imported lazily so that `rollguard --help`
# stays fast and one area's heavy imports (FastAPI, kopf) do not slow another's commands.
SUBCOMMANDS: dict[str, tuple[str, str, str]] = {
    "canary": ("rollguard.cli.canary_cmd", "canary", "Run, follow and steer CanaryRollouts."),
    "operator": ("rollguard.cli.operator_cmd", "operator", "Run the kopf operator."),
    "catalog": ("rollguard.cli.catalog_cmd", "catalog", "Failure catalogs: validate, default, match, rollback."),
    "api": ("rollguard.cli.api_cmd", "api", "Failures service: serve, migrate, tokens."),
    "failures": ("rollguard.cli.failures_cmd", "failures", "Failures jobs: aggregate, prune, synth."),
    "flags": ("rollguard.cli.flags_cmd", "flags", "Feature flags: list, get, enable, disable, signoff."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = SUBCOMMANDS.get(cmd_name)
        if spec is None:
            return None
        module, attr, help_text = spec
        extra = extras.COMMAND_EXTRAS.get(cmd_name)
        absent = extras.missing(extra) if extra else []
        if extra and absent:
            return extras.stand_in(cmd_name, extra, absent, help_text)
        cmd = getattr(importlib.import_module(module), attr)
        assert isinstance(cmd, click.Command)
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, SUBCOMMANDS[name][2]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rollguard")
def cli() -> None:
    """rollguard: failure catalogs, feature flags and canary rollouts on Kubernetes.

    Run `rollguard COMMAND --help` for the options of each command.
    """


def main() -> None:
    """The ``rollguard`` command."""
    cli()


def kubectl_plugin() -> None:
    """``kubectl-rollguard``: kubectl runs it for ``kubectl rollguard ...`` with the same arguments."""
    cli(prog_name="kubectl rollguard")


def kubectl_complete() -> None:
    """``kubectl_complete-rollguard``: kubectl (>= 1.26) runs it to complete ``kubectl rollguard ...``.

    kubectl passes the words after ``rollguard``, the last one being the word under the cursor
    (empty for a new word), and reads what cobra's ``__complete`` prints: one choice a line
    (``value<TAB>description``), then ``:<directive>``: 4 (no file completion) unless a choice
    is a path, then 0 (the shell's default completion).
    """
    words = sys.argv[1:] or [""]
    args, incomplete = words[:-1], words[-1]
    completer = ShellComplete(cli, {}, "kubectl rollguard", "_KUBECTL_ROLLGUARD_COMPLETE")
    choices = completer.get_completions(args, incomplete)
    for choice in choices:
        if choice.type == "plain":
            help_text = (choice.help or "").partition("\n")[0]
            click.echo(f"{choice.value}\t{help_text}" if help_text else choice.value)
    click.echo(":0" if any(c.type in ("file", "dir") for c in choices) else ":4")


if __name__ == "__main__":
    main()
