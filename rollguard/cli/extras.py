"""Which extra a command needs, and what it says when that extra is not installed.

``pip install rollguard`` is the SDK alone (plus click, so that this command exists): the
packages of the operator, the failures service, the jobs and the Kubernetes client come with
extras. The extras' contents are declared once, in pyproject.toml; they are read back here from
the installed distribution's metadata, so a command checks for exactly what its extra lists
and says which extra to install instead of failing with a traceback deep inside an import.
"""

from __future__ import annotations

import re
from importlib import metadata

import click

DIST = "rollguard"

# The extra each top-level command needs (the others, `catalog`, need only the SDK).
COMMAND_EXTRAS = {
    "canary": "cli",
    "flags": "cli",
    "operator": "operator",
    "api": "api",
    "failures": "jobs",
}

_EXTRA_MARKER = re.compile(r"""^\s*extra\s*==\s*["']([^"']+)["']\s*$""")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(extra: str) -> list[str]:
    """The project names the extra lists in the installed metadata; [] when rollguard is not
    installed (run from a checkout through PYTHONPATH: nothing to compare against)."""
    try:
        declared = metadata.requires(DIST) or []
    except metadata.PackageNotFoundError:
        return []
    names = []
    for req in declared:
        spec, _, marker = req.partition(";")
        m = _EXTRA_MARKER.match(marker)
        name = _NAME.match(spec)
        if m and name and _normalise(m.group(1)) == _normalise(extra):
            names.append(name.group(1))
    return names


def missing(extra: str) -> list[str]:
    """The projects of ``extra`` that are not installed, in the order pyproject.toml lists them."""
    absent = []
    for name in requirements(extra):
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            absent.append(name)
    return absent


def message(command: str, extra: str, absent: list[str]) -> str:
    return (f"`{command}` needs the '{extra}' extra (not installed: {', '.join(absent)}); "
            f"`pip install rollguard` is the SDK alone. Install it with: pip install 'rollguard[{extra}]'")


def require(extra: str, command: str) -> None:
    """Stop with a message naming the extra when any of its packages is missing."""
    absent = missing(extra)
    if absent:
        raise click.ClickException(message(command, extra, absent))


def stand_in(name: str, extra: str, absent: list[str], help_text: str) -> click.Command:
    """A command in place of one whose extra is missing: any arguments, even --help, say which
    extra to install (exit 1), so neither a traceback nor an unknown-option error hides it."""

    @click.pass_context
    def explain(ctx: click.Context, args: tuple[str, ...]) -> None:
        sub = args[:1] if args and not args[0].startswith("-") else ()
        raise click.ClickException(message(" ".join([ctx.command_path, *sub]), extra, absent))

    return click.Command(name, callback=explain, help=f"{help_text} (needs: pip install 'rollguard[{extra}]')",
                         params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
                         context_settings={"ignore_unknown_options": True, "help_option_names": []})


__all__ = ["COMMAND_EXTRAS", "message", "missing", "require", "requirements", "stand_in"]
