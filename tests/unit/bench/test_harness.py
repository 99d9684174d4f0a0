"""The bench harness's bookkeeping: every scenario fits the time budget in both modes, and the
table and time report say per database what was met and what was missed. No scenario runs here."""
from __future__ import annotations

import json

import pytest

from bench import harness
from bench.infra import Database, ScenarioResult, goal
from bench.scenarios import Scenario, discover

BOTH = [Database("sqlite"), Database("postgresql", "postgres://postgres@127.0.0.1:5432/syncsite_bench")]


def test_every_scenario_has_quick_sizes_that_differ_from_its_full_ones():
    for scenario in discover():
        assert scenario.params(True) != scenario.params(False), f"{scenario.name} ignores --quick"


def test_all_scenarios_on_both_databases_fit_in_twenty_minutes():
    planned, text = harness.plan(discover(), BOTH, quick=False)
    assert planned <= harness.BUDGET[0], text


def test_quick_run_on_one_database_fits_in_two_minutes():
    planned, text = harness.plan(discover(), BOTH[1:], quick=True)
    assert planned <= harness.BUDGET[1], text


def test_a_scenario_without_an_allowance_gets_the_default_and_the_plan_counts_its_databases():
    class Bare(Scenario):
        name = "bare"
        databases = ("postgresql",)

    bare = Bare()
    assert harness.allowance_of(bare, quick=False) == harness.DEFAULT_ALLOWANCE[0]
    assert harness.lanes_of(bare, BOTH) == [BOTH[1]]
    assert harness.lanes_of(bare, BOTH[:1]) == [BOTH[0]], "without its database it still runs (smoke)"
    planned, _ = harness.plan([bare], BOTH, quick=False)
    assert planned == harness.DEFAULT_ALLOWANCE[0] + 2 * harness.SETUP_ALLOWANCE[0]


def test_plan_says_when_the_allowances_exceed_the_budget():
    class Greedy(Scenario):
        name = "greedy"
        allowance = (harness.BUDGET[0], 1)

    _, text = harness.plan([Greedy()], BOTH, quick=False)
    assert "OVER" in text


def _result(db: str, value: float, seconds: float, allowance: float = 60.0) -> ScenarioResult:
    res = ScenarioResult("stock-push", db, seconds=seconds, allowance=allowance)
    res.add("full wb wall/bound", value, "x", goal("<=", 1.2), scales="flat past 3 bursts")
    return res


def test_table_has_a_value_and_verdict_per_database_and_how_the_figure_scales():
    out = harness.table([_result("sqlite", 1.06, 50), _result("postgresql", 1.7, 70)])
    header, _, row = out.splitlines()
    assert header.split()[:5] == ["scenario", "figure", "goal", "sqlite", "postgresql"]
    assert "1.06 x met" in row and "1.70 x MISSED" in row
    assert "<= 1.20 x" in row and "flat past 3 bursts" in row


def test_time_report_flags_a_scenario_over_its_allowance_and_the_total_against_the_budget():
    report = harness.time_report([_result("sqlite", 1.0, 50), _result("postgresql", 1.0, 70)],
                                 setup={"sqlite": 2.0, "postgresql": 3.0}, total=1300.0, quick=False, complete=True)
    assert "OVER on postgresql" in report and "OVER on sqlite" not in report
    assert "budget make bench < 1200 s: MISSED" in report
    quick = harness.time_report([_result("postgresql", 1.0, 5, allowance=10)], setup={}, total=90.0, quick=True,
                                complete=True)
    assert "budget --quick < 120 s: met" in quick and "OVER" not in quick


@pytest.mark.parametrize("quick, expected", [(False, "--db both"), (True, "one database")])
def test_databases_default_to_both_and_quick_to_one(monkeypatch, quick, expected):
    monkeypatch.setattr(harness, "postgres_reachable", lambda url: "")
    dbs, _ = harness.databases(None, quick)
    assert [d.kind for d in dbs] == (["postgresql"] if quick else ["sqlite", "postgresql"]), expected


def test_merged_results_keep_the_run_and_machine_speed_that_measured_each_entry(tmp_path):
    path = tmp_path / "results.json"
    first = {"date": "run-1", "machine": {"git": "aaa", "cpu_calibration_s": 0.5}}
    harness.write_results(path, [_result("sqlite", 1.0, 50), _result("postgresql", 1.0, 70)], meta=first, merge=True)
    second = {"date": "run-2", "machine": {"git": "bbb", "cpu_calibration_s": 0.25}}
    harness.write_results(path, [_result("postgresql", 1.1, 60)], meta=second, merge=True)
    saved = json.loads(path.read_text())
    by_db = {e["db"]: e["measured"] for e in saved["results"]}
    assert by_db["sqlite"] == {"date": "run-1", "git": "aaa", "cpu_calibration_s": 0.5}
    assert by_db["postgresql"] == {"date": "run-2", "git": "bbb", "cpu_calibration_s": 0.25}
    assert saved["merged_with_previous_run_of"] == "run-1"
