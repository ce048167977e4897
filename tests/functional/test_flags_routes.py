"""A flag-routed rule is written only when the stored flag data can serve it: a flag it
lacks, or a mapped value the flag cannot take, is refused at route write naming both."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from orchestrator.cli.main import cli
from orchestrator.store import Store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flags.json"
ROUTE = """\
host: shop.example.com
variants:
  - {name: canary, version: v2, weight: 0}
  - {name: stable, version: v1, weight: 10000}
assignment:
  provider: launchdarkly
  flag: new-checkout
  context: {kind: user, key_from: "cookie:ld_uid"}
  variations: {"true": canary, "%s": stable}
  fallback: stable
"""


def _put(tmp_path: Path, false_key: str = "false") -> Result:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTE % false_key)
    return CliRunner().invoke(cli, ["routes", "put", str(path)])


def test_a_rule_whose_flag_has_no_data_is_refused(store: Store, tmp_path: Path) -> None:
    """GIVEN no flag data WHEN a rule routed by new-checkout is put THEN exit 2 naming the
    rule's flag field and the flag, and no route written."""
    result = _put(tmp_path)

    assert result.exit_code == 2, result.output
    assert "assignment.flag: flag 'new-checkout' is not in the flag data" in result.output
    assert store.get_routes("shop.example.com") == []


def test_a_rule_mapping_a_value_the_flag_lacks_is_refused(store: Store, tmp_path: Path) -> None:
    """GIVEN new-checkout synced (values true, false) WHEN a rule maps "off" THEN exit 2
    naming the value."""
    assert CliRunner().invoke(cli, ["flags", "sync", "--from-file", str(EXAMPLE)]).exit_code == 0

    result = _put(tmp_path, false_key="off")

    assert result.exit_code == 2
    assert "assignment.variations.off: flag 'new-checkout' has no such value" in result.output
    assert store.get_routes("shop.example.com") == []


def test_a_rule_the_data_serves_is_written(store: Store, tmp_path: Path) -> None:
    """GIVEN new-checkout synced WHEN the rule is put THEN it is written with its assignment."""
    assert CliRunner().invoke(cli, ["flags", "sync", "--from-file", str(EXAMPLE)]).exit_code == 0

    result = _put(tmp_path)

    assert result.exit_code == 0, result.output
    (rule,) = store.get_routes("shop.example.com")
    assert rule.assignment is not None and rule.assignment.flag == "new-checkout"


def test_routes_get_says_the_flag_chooses(store: Store, tmp_path: Path) -> None:
    """GIVEN a written flag-routed rule WHEN shown THEN the flag, its mapping and fallback."""
    assert CliRunner().invoke(cli, ["flags", "sync", "--from-file", str(EXAMPLE)]).exit_code == 0
    assert _put(tmp_path).exit_code == 0

    shown = CliRunner().invoke(cli, ["routes", "get", "shop.example.com"])

    assert shown.exit_code == 0
    assert "routed by flag new-checkout: {'true': 'canary', 'false': 'stable'}, else stable" in (
        shown.output
    )
