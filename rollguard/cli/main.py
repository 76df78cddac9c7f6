"""Entry point of the ``rollguard`` command.

Each area registers one click group here; keep this file a table of contents.
"""

from __future__ import annotations

import importlib

import click

from rollguard import __version__

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
        module, attr, _help = spec
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
    cli()


if __name__ == "__main__":
    main()
