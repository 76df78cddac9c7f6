"""One release, one version: the package's version is written once (rollguard/__init__.py, which
pyproject.toml reads), and the chart's appVersion, the changelog and the Argo CD example name the
same release. The chart's own `version` is semver and moves with it (docs/install.md#versions)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

import rollguard

REPO = Path(__file__).resolve().parents[2]
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def _chart() -> dict[str, str]:
    chart = yaml.safe_load((REPO / "charts" / "rollguard" / "Chart.yaml").read_text())
    assert isinstance(chart, dict)
    return chart


def test_the_package_version_is_written_once() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"]["path"] == "rollguard/__init__.py"
    assert SEMVER.match(rollguard.__version__), rollguard.__version__


def test_the_chart_names_the_package_release() -> None:
    chart = _chart()
    assert str(chart["appVersion"]) == rollguard.__version__
    assert SEMVER.match(str(chart["version"])), chart["version"]
    assert str(chart["version"]) == rollguard.__version__  # released together, see docs/install.md#versions


def test_the_changelog_has_an_entry_for_the_release() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(rollguard.__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M)


def test_the_argocd_example_installs_this_release() -> None:
    app = next(yaml.safe_load_all((REPO / "deploy" / "argocd" / "application.yaml").read_text()))
    source = app["spec"]["source"]
    assert source["targetRevision"] == f"v{rollguard.__version__}"
    assert source["helm"]["valuesObject"]["image"]["tag"] == rollguard.__version__


def test_the_license_is_apache_2() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (REPO / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    assert "Copyright 2026 The rollguard authors" in text
