"""Commands the chart's docs and NOTES.txt give a user, run with the real helm binary.

- `helm show crds` prints kopf's peering CRDs (the chart's crds/ folder), each as its own YAML
  document: a file that does not start with `---` silently merges into the one before it.
  rollguard's own CRDs are templates (`helm upgrade` upgrades them), not in `helm show crds`.
- Every number in values.yaml can be given with `--set` as well as in a `-f` file: helm parses
  `--set` numbers as int64 and YAML numbers as float64, and a template comparing two values of
  different kinds fails ("incompatible types for comparison").
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from tests.support.helm import CHART, Helm, helm

# One worker runs this module under pytest-xdist: its module fixture is built once.
pytestmark = pytest.mark.xdist_group("chart-user-commands")


@pytest.fixture(scope="module")
def h() -> Helm:
    return helm()


def _crd_names(text: str) -> list[str]:
    return sorted(d["metadata"]["name"] for d in yaml.safe_load_all(text) if d)


def test_helm_show_crds_prints_each_crd_of_the_charts_crds_folder_as_its_own_document(h: Helm) -> None:
    shown = _crd_names(h("show", "crds", str(CHART)).stdout)
    in_folder = sorted(n for p in (CHART / "crds").glob("*.yaml") for n in _crd_names(p.read_text()))
    assert shown == in_folder == ["clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"]


def _integer_leaves(values: Any, prefix: str = "") -> dict[str, int]:
    out: dict[str, int] = {}
    if isinstance(values, dict):
        for k, v in values.items():
            out.update(_integer_leaves(v, f"{prefix}{k}."))
    elif isinstance(values, int) and not isinstance(values, bool):
        out[prefix.rstrip(".")] = values
    return out


def test_every_number_in_values_can_be_given_with_set(h: Helm) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    numbers = _integer_leaves(values)
    assert "operator.metricsPort" in numbers and "operator.healthPort" in numbers
    api = ("--set", "api.enabled=true")  # so that the API's numbers are rendered too
    default = h("template", "r", str(CHART), *api).stdout
    # Each number given with --set, as a user types it, renders exactly as the default does.
    args = [a for path, n in sorted(numbers.items()) for a in ("--set", f"{path}={n}")]
    assert h("template", "r", str(CHART), *api, *args).stdout == default


def test_ports_given_with_set_are_compared_as_numbers(h: Helm) -> None:
    out = h("template", "r", str(CHART), "--set", "operator.metricsPort=9100",
            "--set", "operator.healthPort=9101").stdout
    assert "9100" in out and "9101" in out
    clash = h("template", "r", str(CHART), "--set", "operator.metricsPort=9100", "--set", "operator.healthPort=9100",
              check=False)
    assert clash.returncode != 0
    assert "operator.healthPort and operator.metricsPort must differ" in clash.stderr
