"""The pipeline as a graph in a real browser: boxes, edges, gates and `when` routes on the
pipeline page; states, a skipped route dimmed, the gate it waits at and a click that
selects a stage on the project page; 30 stages laid out without overlapping boxes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.ui.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROUTES = """
name: routes
description: A branch taken, a branch skipped, a sweep and a gate.
stages:
  - name: detect
    description: find the vehicles
    command: ["sh", "-c", "echo 'WINSLOW_RESULT: vehicles=0'"]
  - name: count
    needs: [detect]
    when: results.detect.vehicles > 0
    command: ["true"]
  - name: tune
    needs: [detect]
    sweep: {over: {LR: ["0.1", "0.01", "0.001"]}}
    command: ["sh", "-c", "echo tuned ${LR}"]
  - name: review
    needs: [count, tune]
    gate: true
    command: ["true"]
  - name: publish
    command: ["true"]
"""


def expect():
    return pytest.importorskip("playwright.sync_api").expect


def box(page, stage: str):
    return page.locator(f'.graph-node[data-stage="{stage}"]')


BOXES = """(root) => [...document.querySelectorAll(root + ' .graph-node')].map((node) => {
  const r = node.querySelector('.graph-box').getBoundingClientRect();
  const t = node.querySelector('.graph-name').getBoundingClientRect();
  return {stage: node.dataset.stage, box: [r.left, r.top, r.right, r.bottom],
          name: [t.left, t.top, t.right, t.bottom]};
})"""


AS_RGB = """(colour) => { const probe = document.createElement('b'); probe.style.color = colour;
  document.body.append(probe); const rgb = getComputedStyle(probe).color; probe.remove();
  return rgb; }"""
"""A CSS colour as the browser computes it (``rgb(...)``), to compare with an SVG fill."""


AXE = Path(__file__).resolve().parents[2] / "winslow" / "ui" / "node_modules" / "axe-core"


def serious_violations(page, selector: str) -> list[str]:
    """axe-core's serious and critical findings inside ``selector`` (the drawn graph)."""
    page.add_script_tag(path=str(AXE / "axe.min.js"))
    found = page.evaluate(
        "async (s) => (await axe.run(document.querySelector(s),"
        " { resultTypes: ['violations'] })).violations",
        selector,
    )
    return [
        f"{v['id']}: {v['help']} at {[n['target'] for n in v['nodes'][:3]]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def apply(console, tmp_path, text: str, name: str) -> None:
    file = tmp_path / f"{name}.yaml"
    file.write_text(text)
    console.cli("pipeline", "apply", str(file))


def test_pipeline_page_draws_the_branching_pipeline(page, console, tmp_path) -> None:
    check = expect()
    apply(console, tmp_path, ROUTES, "routes")
    page.goto("/pipelines/routes")

    check(page.locator("#pipeline-graph .graph-node")).to_have_count(5)
    check(page.locator("#pipeline-graph .graph-edge")).to_have_count(5)
    check(page.locator("#pipeline-graph .graph-caption")).to_contain_text(
        "Graph of pipeline routes: 5 stages"
    )
    # The gate is marked; the `when` route shows its condition and a dashed edge.
    check(box(page, "review").locator(".graph-gate")).to_have_text("gate")
    assert box(page, "detect").locator(".graph-gate").count() == 0
    check(box(page, "count").locator(".graph-when")).to_have_text(
        "when results.detect.vehicles > 0"
    )
    check(page.locator(".graph-edge.conditional")).to_have_count(1)
    # The sweep is one box, stacked, with a mark per combination.
    check(box(page, "tune")).to_have_class(re.compile(r"\bgraph-sweep\b"))
    check(box(page, "tune").locator(".graph-mark")).to_have_count(3)
    check(box(page, "tune").locator(".graph-sub")).to_have_text("not run yet · 0/3 done")
    label = box(page, "review").locator(":scope > title").text_content()
    assert label.startswith("review not run yet gate. stage review; gate: a person lets it start")
    assert "after count, tune" in label
    # The title names the box for assistive technology, as a role query sees it.
    check(
        page.get_by_role("link", name=re.compile(r"^count not run yet when results"))
    ).to_have_count(1)
    assert "find the vehicles" in box(page, "detect").locator(":scope > title").text_content()
    svg = page.locator("#pipeline-graph svg")
    assert svg.get_attribute("role") == "group"
    assert svg.get_attribute("aria-labelledby") == page.locator(
        "#pipeline-graph .graph-caption"
    ).get_attribute("id")
    screenshot(page, "graph-pipeline")
    if AXE.is_dir():
        assert serious_violations(page, "#pipeline-graph") == []

    # Keyboard: a box is a link to the stage's section.
    box(page, "count").focus()
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/pipelines/routes#stage-count$"))
    assert page.evaluate("() => document.querySelector(':target').id") == "stage-count"
    box(page, "review").click()
    page.wait_for_url(re.compile(r".*#stage-review$"))

    # Zoom out shrinks the drawing; Fit brings it back.
    width = float(svg.get_attribute("width"))
    page.get_by_role("button", name="Zoom out").click()
    assert float(page.locator("#pipeline-graph svg").get_attribute("width")) < width
    page.get_by_role("button", name="Fit to the width").click()
    assert float(page.locator("#pipeline-graph svg").get_attribute("width")) == width

    # Applying a changed definition redraws the graph.
    page.get_by_label("Definition (YAML)").fill(
        ROUTES + '  - name: archive\n    needs: [detect]\n    command: ["true"]\n'
    )
    page.get_by_role("button", name="Apply").click()
    check(page.locator("#pipeline-graph .graph-node")).to_have_count(6)
    check(page.locator("#pipeline-graph .graph-edge")).to_have_count(6)


def test_project_page_graph_shows_states_and_selects_a_stage(page, console, tmp_path) -> None:
    check = expect()
    apply(console, tmp_path, ROUTES, "routes")
    console.cli("project", "create", "graph-flow", "--pipeline", "routes")
    console.cli("project", "start", "graph-flow")
    console.wait_for("graph-flow", {"awaiting_input"})
    page.goto("/projects/graph-flow")

    graph = page.locator("#project-graph")
    check(graph.locator(".graph-node")).to_have_count(5)
    check(box(page, "detect")).to_have_attribute("data-state", "succeeded")
    check(box(page, "tune")).to_have_attribute("data-state", "succeeded")
    check(box(page, "tune").locator(".graph-mark[data-state=succeeded]")).to_have_count(3)
    check(box(page, "tune").locator(".graph-sub")).to_have_text("succeeded · 3/3 done")
    # The route the project did not take is dimmed, with its condition and why.
    count = box(page, "count")
    check(count).to_have_attribute("data-state", "skipped")
    check(count.locator(".graph-box")).not_to_have_css("stroke-dasharray", "none")
    check(box(page, "detect").locator(".graph-box")).to_have_css("stroke-dasharray", "none")
    # The graph is redrawn as the project's state arrives; a web-first check waits
    # for the redrawn edge instead of reading one that was just replaced.
    into = page.locator("#project-graph .graph-edge.skipped")
    check(into).to_have_css("opacity", re.compile(r"^0?\.[0-7]\d*$"))
    check(count.locator(".graph-when")).to_have_text("when results.detect.vehicles > 0")
    assert "results.detect.vehicles = 0" in count.locator(":scope > title").text_content()
    check(page.locator("#project-graph .graph-edge.skipped")).to_have_count(1)
    # The gate it waits at.
    review = box(page, "review")
    check(review).to_have_class(re.compile(r"\bgraph-waiting\b"))
    check(review.locator(".graph-gate")).to_have_text("waits here")
    assert "the project waits here" in review.locator(":scope > title").text_content()
    check(graph.locator(".graph-caption")).to_contain_text("1 skipped · waits at review")
    screenshot(page, "graph-project")
    if AXE.is_dir():
        assert serious_violations(page, "#project-graph") == []

    # The boxes take the console's state colours, in dark mode too.
    fills = """() => [
        getComputedStyle(document.querySelector('[data-stage=detect] .graph-box')).fill,
        getComputedStyle(document.documentElement).getPropertyValue('--ok-bg').trim()]"""
    light = page.evaluate(fills)
    page.emulate_media(color_scheme="dark")
    page.reload()
    check(box(page, "detect")).to_have_attribute("data-state", "succeeded")
    dark = page.evaluate(fills)
    assert light[0] != dark[0]
    for fill, variable in (light, dark):
        assert fill == page.evaluate(AS_RGB, variable)
    screenshot(page, "graph-project-dark")
    page.emulate_media(color_scheme="light")
    page.reload()
    check(box(page, "detect")).to_have_attribute("data-state", "succeeded")

    check(page.get_by_role("button", name=re.compile(r"^tune succeeded"))).to_have_count(1)
    # A click, or Enter on a focused box, asks the page to show that stage's runs.
    page.evaluate(
        "() => { window.picked = []; document.addEventListener('winslow:select-stage',"
        " (e) => window.picked.push(e.detail.stage)); }"
    )
    box(page, "tune").click()
    check(box(page, "tune")).to_have_class(re.compile(r"\bgraph-selected\b"))
    # The page shows the stage's latest run in its details tab.
    check(page.locator("#tab-details")).to_have_attribute("aria-selected", "true")
    check(page.locator("#log-run")).to_contain_text("· tune (LR=0.001)")
    page.get_by_role("tab", name="Overview").click()
    box(page, "detect").focus()
    page.keyboard.press("Enter")
    assert page.evaluate("() => window.picked") == ["tune", "detect"]
    assert box(page, "tune").get_attribute("role") == "button"
    assert box(page, "tune").get_attribute("tabindex") == "0"

    # Live: past the gate, the boxes follow the runs without a reload.
    page.get_by_role("tab", name="Overview").click()
    console.cli("project", "resume", "graph-flow")
    check(box(page, "publish")).to_have_attribute("data-state", "succeeded", timeout=30_000)
    check(review).to_have_attribute("data-state", "succeeded")
    check(review).not_to_have_class(re.compile(r"\bgraph-waiting\b"))
    check(review.locator(".graph-gate")).to_have_text("gate")
    screenshot(page, "graph-project-done")

    # Following a definition without `publish`: its run stays shown, as a removed box.
    apply(console, tmp_path, ROUTES.split("  - name: publish")[0], "routes")
    console.cli("project", "pipeline", "graph-flow", "routes")
    check(box(page, "publish")).to_have_class(re.compile(r"\bgraph-removed\b"))
    check(box(page, "publish").locator(".graph-sub")).to_have_text("removed · succeeded")
    assert (
        "removed from the pipeline" in box(page, "publish").locator(":scope > title").text_content()
    )
    check(graph.locator(".graph-caption")).to_contain_text("4 stages · 1 skipped · 1 removed")
    check(page.locator("#project-graph .graph-edge")).to_have_count(4)
    screenshot(page, "graph-project-removed")

    # Its first stage redone alone: what ran after it has run and is to run again (it
    # said "not run yet" beside the runs listed under it).
    console.cli("project", "resume", "graph-flow", "--from", "detect", "--only")
    console.wait_for("graph-flow", {"paused"})
    check(box(page, "detect").locator(".graph-sub")).to_have_text("succeeded · 2 runs")
    check(box(page, "review").locator(".graph-sub")).to_have_text("to run again")
    assert "to run again" in box(page, "review").locator(":scope > title").text_content()


def thirty_stages() -> str:
    """Three lanes of ten stages that fork from one source and meet at the end."""
    lines = ["name: wide", "stages:", "  - name: source", '    command: ["true"]']
    for lane in "abc":
        for i in range(1, 10):
            need = "source" if i == 1 else f"{lane}-step-{i - 1}"
            lines += [f"  - name: {lane}-step-{i}", f"    needs: [{need}]", '    command: ["true"]']
    lines += ["  - name: join-all-the-lanes-here", "    needs: [a-step-9, b-step-9, c-step-9]"]
    lines += ['    command: ["true"]', "    gate: true", "  - name: final-report"]
    lines += ['    command: ["true"]']
    return "\n".join(lines) + "\n"


def test_thirty_stages_are_laid_out_without_overlap(page, console, tmp_path) -> None:
    check = expect()
    apply(console, tmp_path, thirty_stages(), "wide")
    page.goto("/pipelines/wide")
    check(page.locator("#pipeline-graph .graph-node")).to_have_count(30)
    check(page.locator("#pipeline-graph .graph-edge")).to_have_count(31)

    boxes = page.evaluate(BOXES, "#pipeline-graph")
    assert len(boxes) == 30
    for i, one in enumerate(boxes):
        # Every name is drawn inside its own box (long ones shortened, never spilling).
        left, top, right, bottom = one["box"]
        n = one["name"]
        assert left <= n[0] and n[2] <= right and top <= n[1] and n[3] <= bottom, one
        for other in boxes[i + 1 :]:
            assert not overlap(one["box"], other["box"]), (one["stage"], other["stage"])
    # Readable: the boxes are not shrunk below 60 %, and the graph fits the width or
    # scrolls inside its own frame, never the page.
    widths = [b["box"][2] - b["box"][0] for b in boxes]
    assert min(widths) >= 200 * 0.6 - 1
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1366
    screenshot(page, "graph-thirty-stages")
