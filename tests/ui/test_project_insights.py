"""The project page shows what runs measured and lets a person steer one run: a stage's
log-parser series as charts (one run, or several overlaid), resource usage, sweep
values, a skipped stage's reason, and "Redo with changes" with its per-run overrides."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import httpx
import pytest

from tests.fixtures.server import Server
from tests.ui.conftest import admin_token, screenshot, show_tab
from winslow.api.routes.console_project import stage_settings
from winslow.pipeline.load import load_pipeline_text

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LOSSES = ["0.9", "0.7", "0.55", "0.4", "0.35"]

PIPELINE = f"""
name: ui-insights
variables:
  LR: {{default: "0.1", description: learning rate}}
  QUALITY: {{default: low}}
stages:
  - name: train
    command:
      - sh
      - -c
      - |
        for v in {" ".join(LOSSES)}; do echo loss=$v; sleep 0.2; done
        echo lr=${{LR}}
        echo WINSLOW_RESULT: best=0.35
        echo WINSLOW_RESULT: converged=true
    log_parsers: [{{name: train, pattern: 'loss=(?P<loss>[0-9.]+)'}}]
  - name: polish
    when: 'QUALITY == "high"'
    command: ["sh", "-c", "echo polishing"]
"""

SWEEP = """
name: ui-sweep
stages:
  - name: train
    sweep: {over: {LR: ["0.1", "0.5"], BATCH: ["8"]}}
    command: ["sh", "-c", "echo loss=${LR}; sleep 0.2; echo loss=0.05"]
    log_parsers: [{name: train, pattern: 'loss=(?P<loss>[0-9.]+)'}]
"""

SLOW = """
name: ui-slow
stages:
  - name: crunch
    command:
      - sh
      - -c
      - |
        echo loss=1
        sleep 3
        echo loss=0.5
        i=0; while [ $i -lt 3000000 ]; do i=$((i+1)); done
        sleep 10
    log_parsers: [{name: crunch, pattern: 'loss=(?P<loss>[0-9.]+)'}]
"""


def expect():
    return pytest.importorskip("playwright.sync_api").expect


@pytest.fixture
def winslow_server(module_server: Server) -> Server:
    # Each test here makes its own project, so one server serves them all.
    return module_server


def api(console: Server, method: str, endpoint: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(
        method,
        console.addr + "/api/v1" + endpoint,
        headers={"Authorization": f"Bearer {admin_token(console)}"},
        timeout=30,
        **kwargs,
    )


def runs_of(console: Server, project: str, stage: str) -> list[dict[str, Any]]:
    return [r for r in console.json("project", "show", project)["runs"] if r["stage"] == stage]


def start(console: Server, tmp_path, text: str, pipeline: str, project: str) -> dict[str, Any]:
    file = tmp_path / f"{pipeline}.yaml"
    file.write_text(text)
    console.cli("pipeline", "apply", str(file))
    console.cli("project", "create", project, "--pipeline", pipeline, "--start")
    return console.wait_for(project, {"succeeded", "failed", "paused"}, timeout=90)


def loss_chart(page):
    return page.locator('#metric-charts figure[data-chart="train/loss"]')


def test_a_stage_that_prints_losses_charts_every_point(page, console, tmp_path) -> None:
    check = expect()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    shown = start(console, tmp_path, PIPELINE, "ui-insights", "charts")
    assert shown["state"] == "succeeded", shown
    train = runs_of(console, "charts", "train")[-1]

    page.goto(f"/projects/charts#run-{train['id']}")
    show_tab(page, "Run details")
    check(page.locator("#run-title")).to_have_text(f"Run {train['id']} · train")
    chart = loss_chart(page)
    check(chart.locator("circle.series-point")).to_have_count(len(LOSSES))
    check(chart.locator("path.series-line")).to_have_count(1)
    check(chart.locator("svg")).to_have_attribute("data-points", str(len(LOSSES)))
    check(chart.locator("svg")).to_have_attribute("aria-label", re.compile(r"last 0\.35"))
    check(page.locator("#compare")).to_be_hidden()  # the stage has no other run yet

    # What the stage reported, as it reported it.
    details = page.locator("#run-details")
    check(details.locator('[data-result="best"]')).to_have_text("best0.35")
    check(details.locator('[data-result="converged"] dd')).to_have_text("true")
    assert train["results"] == {"best": 0.35, "converged": True}

    link = page.locator("#run-metrics a.csv")
    check(link).to_have_attribute(
        "href", f"/api/v1/projects/{shown['id']}/runs/{train['id']}/series.csv"
    )
    rows = list(csv.DictReader(io.StringIO(page.request.get(link.get_attribute("href")).text())))
    assert [float(r["value"]) for r in rows if r["field"] == "loss"] == [float(v) for v in LOSSES]
    check(page.locator("#run-usage a.csv")).to_have_attribute(
        "href", f"/api/v1/projects/{shown['id']}/runs/{train['id']}/usage.csv"
    )
    screenshot(page, "project-insights-chart")
    assert errors == []


def test_two_runs_of_a_stage_compared_show_two_lines_and_a_legend(page, console, tmp_path) -> None:
    check = expect()
    start(console, tmp_path, PIPELINE, "ui-insights", "compare")
    console.cli("project", "resume", "compare", "--from", "train")
    console.wait_for("compare", {"succeeded", "failed", "paused"}, timeout=60)
    first, second = (r["id"] for r in runs_of(console, "compare", "train"))

    page.goto(f"/projects/compare#run-{second}")
    show_tab(page, "Run details")
    check(loss_chart(page).locator("circle.series-point")).to_have_count(len(LOSSES))
    page.locator("#compare").get_by_label(re.compile(rf"^Run {first} ")).check()
    chart = loss_chart(page)
    check(chart.locator("path.series-line")).to_have_count(2)
    check(chart.locator("circle.series-point")).to_have_count(2 * len(LOSSES))
    legend = page.locator("#compare-legend li")
    check(legend).to_have_count(2)
    check(legend.nth(0)).to_contain_text(f"Run {second}")
    check(legend.nth(1)).to_contain_text(f"Run {first}")
    check(legend.nth(1).locator("a.csv")).to_have_attribute(
        "href", re.compile(rf"/runs/{first}/series\.csv$")
    )
    screenshot(page, "project-insights-compare")

    page.get_by_role("button", name="This run alone").click()
    check(chart.locator("path.series-line")).to_have_count(1)
    check(page.locator("#compare-legend")).to_be_hidden()


def test_redo_with_changes_overrides_one_run_only(page, console, tmp_path) -> None:
    check = expect()
    start(console, tmp_path, PIPELINE, "ui-insights", "redo")
    before = runs_of(console, "redo", "train")
    assert [r["variables"].get("LR") for r in before] == ["0.1"]
    first = before[0]["id"]

    page.goto(f"/projects/redo#run-{first}")
    show_tab(page, "Run details")
    page.locator("#run-details").get_by_role("button", name="Redo with changes…").click()
    dialog = page.get_by_role("dialog")
    check(dialog).to_be_visible()
    check(dialog.get_by_label("Redo from stage")).to_have_value("train")
    dialog.get_by_label("Name of variable 1").fill("LR")
    check(dialog.get_by_label("Value of variable 1")).to_have_attribute("placeholder", "now: 0.1")
    dialog.get_by_label("Value of variable 1").fill("0.5")
    dialog.get_by_label("Comment").fill("try a higher rate")
    dialog.get_by_label("Run only this stage, then pause").check()

    # A refusal from the API is shown in the dialog, which stays open with what was typed.
    dialog.get_by_label("Memory").fill("0")
    dialog.get_by_role("button", name="Redo", exact=True).click()
    check(dialog.get_by_role("alert")).to_contain_text("Not redone:")
    check(dialog.get_by_role("alert")).to_contain_text(re.compile("memory", re.I))
    check(dialog).to_be_visible()
    assert len(runs_of(console, "redo", "train")) == 1
    screenshot(page, "project-redo-dialog")

    dialog.get_by_label("Memory").fill("")
    dialog.get_by_role("button", name="Redo", exact=True).click()
    check(dialog).to_be_hidden()
    rows = page.locator('#timeline tbody[data-stage="train"] tr.run')
    check(rows).to_have_count(2)
    check(page.locator("#project-state")).to_have_text("paused", timeout=30_000)

    after = runs_of(console, "redo", "train")
    assert after[0]["variables"]["LR"] == "0.1"  # the earlier run is untouched
    assert api(console, "GET", f"/projects/redo/runs/{first}").json()["variables"]["LR"] == "0.1"
    assert after[0]["overrides"] == {}
    assert after[1]["variables"]["LR"] == "0.5"
    assert after[1]["overrides"]["variables"] == {"LR": "0.5"}
    assert after[1]["overrides"]["comment"] == "try a higher rate"
    assert console.json("project", "show", "redo")["variables"].get("LR") is None
    polish = runs_of(console, "redo", "polish")
    assert len(polish) == 1, "only train ran again, then the project paused"

    second = after[1]["id"]
    show_tab(page, "Overview")
    check(rows.nth(1).locator(".changed-tag")).to_be_visible()
    check(rows.nth(0).locator(".changed-tag")).to_have_count(0)
    page.locator(f'#timeline [data-key="run-{second}"]').click()
    details = page.locator("#run-details")
    check(details.locator('[data-variable="LR"] dd')).to_contain_text("0.5")
    check(details.locator('[data-variable="LR"] dd')).to_contain_text("changed for this run")
    check(details.locator("#run-overrides")).to_contain_text("LR=0.5")
    check(details.locator("#run-overrides blockquote")).to_have_text("try a higher rate")
    page.locator(f'#timeline [data-key="run-{first}"]').click()
    check(details.locator('[data-variable="LR"] dd')).to_have_text("0.1")
    check(details.locator("#run-overrides")).to_have_count(0)
    screenshot(page, "project-redo-done")


def test_redo_as_an_earlier_run_was(page, console, tmp_path) -> None:
    check = expect()
    start(console, tmp_path, PIPELINE, "ui-insights", "like")
    first = runs_of(console, "like", "train")[0]["id"]
    console.cli("project", "env", "like", "LR=0.9")
    console.cli("project", "resume", "like", "--from", "train")
    console.wait_for("like", {"succeeded", "failed", "paused"}, timeout=60)

    page.goto(f"/projects/like#run-{first}")
    show_tab(page, "Run details")
    page.locator("#run-details").get_by_role("button", name=f"Redo as run {first} was…").click()
    dialog = page.get_by_role("dialog")
    check(dialog.get_by_role("heading")).to_have_text(f"Redo as run {first} was")
    check(dialog.get_by_label("As an earlier run was")).to_have_value(str(first))
    check(dialog.get_by_label("Name of variable 1")).to_be_focused()
    dialog.get_by_role("button", name="Redo", exact=True).click()
    check(dialog).to_be_hidden()
    check(page.locator('#timeline tbody[data-stage="train"] tr.run')).to_have_count(3)
    console.wait_for("like", {"succeeded", "failed", "paused"}, timeout=60)
    latest = runs_of(console, "like", "train")[-1]
    assert latest["variables"]["LR"] == "0.1"  # as run `first` was, not the project's 0.9
    assert latest["overrides"]["like_run"] == first

    # The new run says what it redoes; variables it got back from that run are no news.
    show_tab(page, "Overview")
    page.locator(f'#timeline [data-key="run-{latest["id"]}"]').click()
    details = page.locator("#run-details")
    check(details.locator("#run-overrides")).to_contain_text(f"as run {first} was")
    check(details.locator("#run-overrides")).not_to_contain_text("LR=")
    check(details.locator('[data-variable="LR"] dd')).to_have_text("0.1")


def test_a_skipped_stage_says_why(page, console, tmp_path) -> None:
    check = expect()
    shown = start(console, tmp_path, PIPELINE, "ui-insights", "skips")
    assert shown["state"] == "succeeded", shown
    polish = runs_of(console, "skips", "polish")[-1]
    assert polish["state"] == "skipped"
    assert "QUALITY" in polish["reason"]

    page.goto("/projects/skips")
    row = page.locator('#timeline tbody[data-stage="polish"] tr.run')
    badge = row.locator(".state")
    check(badge).to_have_text("skipped")
    check(row.locator("td.reason")).to_have_text(polish["reason"])
    # --skip, not the paused/awaiting colour; read web-first, as the row may be redrawn.
    check(badge).to_have_css("color", "rgb(86, 61, 124)")
    check(page.locator('#timeline tbody[data-stage="polish"] th.stage')).to_contain_text(
        'runs when QUALITY == "high"'
    )
    row.get_by_role("button", name=re.compile(r"^Run \d+$")).click()
    check(page.locator("#run-details .skip-reason")).to_have_text(f"Skipped: {polish['reason']}")
    check(page.locator("#metrics-note")).to_contain_text("was skipped")
    screenshot(page, "project-skipped")


def test_a_sweep_shows_each_runs_values_and_compares_them(page, console, tmp_path) -> None:
    check = expect()
    start(console, tmp_path, SWEEP, "ui-sweep", "sweep")
    train = runs_of(console, "sweep", "train")
    assert sorted(r["combination"]["LR"] for r in train) == ["0.1", "0.5"]

    page.goto(f"/projects/sweep#run-{train[0]['id']}")
    rows = page.locator('#timeline tbody[data-stage="train"] tr.run')
    check(rows).to_have_count(2)
    for run, row in zip(train, rows.all(), strict=True):
        combo = ", ".join(f"{k}={v}" for k, v in run["combination"].items())
        check(row.locator(".combination")).to_have_text(combo)
    check(page.locator('#timeline tbody[data-stage="train"] th.stage')).to_contain_text(
        "sweeps LR \u00d7 BATCH"
    )
    show_tab(page, "Run details")
    page.get_by_role("button", name="All 2 current runs").click()
    chart = loss_chart(page)
    check(chart.locator("path.series-line")).to_have_count(2)
    legend = page.locator("#compare-legend li")
    check(legend).to_have_count(2)
    for run in train:
        check(page.locator("#compare-legend")).to_contain_text(
            f"Run {run['id']} · LR={run['combination']['LR']}, BATCH=8"
        )
    screenshot(page, "project-sweep")


def test_a_running_stage_charts_its_series_and_usage_live(page, console, tmp_path) -> None:
    check = expect()
    file = tmp_path / "slow.yaml"
    file.write_text(SLOW)
    console.cli("pipeline", "apply", str(file))
    console.cli("project", "create", "busy", "--pipeline", "ui-slow", "--start")
    console.wait_for("busy", {"running"})
    page.goto("/projects/busy#details")  # a link to the tab of the run's charts
    check(page.locator("#run-metrics .live-tag")).to_be_visible()
    # The chart follows the log while the stage runs.
    loss = page.locator('#metric-charts figure[data-chart="crunch/loss"]')
    check(loss.locator("circle.series-point")).to_have_count(2, timeout=20_000)
    assert console.json("project", "show", "busy")["runs"][0]["state"] == "running"
    cpu = page.locator('#usage-charts figure[data-meter="cpu_percent"]')
    check(cpu.locator("circle.series-point")).not_to_have_count(0, timeout=30_000)
    check(page.locator('#usage-charts figure[data-meter="memory_mb"]')).to_be_visible()
    check(page.locator('#usage-peaks [data-meter="cpu_percent"]')).to_contain_text(
        re.compile(r"CPU peak [\d.]+ %")
    )
    check(page.locator('#usage-peaks [data-meter="memory_mb"]')).to_contain_text(
        re.compile(r"Memory peak [\d.]+ (B|KiB|MiB|GiB)")
    )
    screenshot(page, "project-usage")
    console.cli("project", "kill", "busy")
    console.wait_for("busy", {"paused"})


def test_stage_settings_tell_the_page_what_a_redo_may_change() -> None:
    definition = load_pipeline_text(PIPELINE).model_dump(mode="json")
    definition["stages"].append(
        {
            "name": "tune",
            "image": "ghcr.io/lab/tune:2",
            "requirements": {"cpus": 4, "memory": 8192, "gpu": {"count": 1}},
            "sweep": {"over": {"LR": ["0.1", "0.5"], "BATCH": ["8"]}},
        }
    )
    settings = stage_settings(definition)
    assert settings["train"] == {
        "image": None,
        "cpus": 1.0,
        "memory_mb": 512,
        "gpus": 0,
        "when": None,
        "sweep": [],
        "parsers": ["train"],
    }
    assert settings["polish"]["when"] == 'QUALITY == "high"'
    assert settings["polish"]["parsers"] == []
    assert settings["tune"] == {
        "image": "ghcr.io/lab/tune:2",
        "cpus": 4,
        "memory_mb": 8192,
        "gpus": 1,
        "when": None,
        "sweep": ["LR", "BATCH"],
        "parsers": [],
    }


CHART_OF = """async ([count, lines]) => {
  const { lineChart, MAX_MARKERS } = await import("/static/js/charts.js");
  const figure = lineChart({
    title: "loss",
    lines: Array.from({ length: lines }, (_, l) => ({
      label: `Run ${l + 1}`,
      points: Array.from({ length: count }, (_, i) => ({ x: i, y: 1 / (i + 1) + l })),
    })),
  });
  document.querySelector("main").append(figure);
  const svg = figure.querySelector("svg");
  return {
    max: MAX_MARKERS,
    points: svg.dataset.points,
    dots: svg.querySelectorAll("circle.series-point").length,
    paths: svg.querySelectorAll("path.series-line").length,
    legend: [...figure.querySelectorAll(".chart-legend li")].map((li) => li.textContent.trim()),
    label: svg.getAttribute("aria-label"),
  };
}"""


def test_a_chart_of_many_points_draws_the_line_without_dots(page) -> None:
    page.goto("/nodes")
    few = page.evaluate(CHART_OF, [10, 2])
    assert (few["dots"], few["paths"], few["points"]) == (20, 2, "20")
    assert few["legend"] == ["Run 1", "Run 2"]
    assert few["label"].startswith("loss. Run 1: 10 points, last 0.1, lowest 0.1, highest 1;")
    many = page.evaluate(CHART_OF, [few["max"] + 1, 1])
    assert (many["dots"], many["paths"], many["points"]) == (0, 1, str(few["max"] + 1))
