"""The project page in a real browser: variables, start, live log, pause, resume from a
stage, a failed stage's reason, kill with its confirmation, and a refusal in words."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from tests.ui.conftest import screenshot, show_tab
from winslow.api.routes.console_project import nomad_links, stage_rows
from winslow.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PIPELINE = """
name: ui-flow
variables:
  GREETING: {default: hello, description: what to say}
  TARGET: {required: true, description: who}
stages:
  - name: prepare
    command: ["sh", "-c", "echo ${GREETING} ${TARGET} > greeting.txt; echo prepared"]
  - name: work
    command: ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do echo step $i; sleep 1; done"]
  - name: finish
    command: ["sh", "-c", "cat greeting.txt; test -z \\"$FAIL\\" || exit 3"]
"""


def expect():
    return pytest.importorskip("playwright.sync_api").expect


def run_rows(page, stage: str):
    return page.locator(f'#timeline tbody[data-stage="{stage}"] tr.run')


def test_project_page_steers_a_pipeline_live(page, console, tmp_path) -> None:
    check = expect()
    file = tmp_path / "ui-flow.yaml"
    file.write_text(PIPELINE)
    console.cli("pipeline", "apply", str(file))
    console.cli("project", "create", "flow", "--pipeline", "ui-flow", "--label", "ulm")
    page.goto("/projects/flow")
    state = page.locator("#project-state")
    check(state).to_have_text("idle")
    assert page.title() == "flow · idle · Winslow"
    show_tab(page, "Variables")

    # The required TARGET is flagged; a bad new name is refused before asking the server.
    target = page.locator('#variable-rows tr[data-variable="TARGET"]')
    check(target).to_have_class(re.compile(r"\bmissing\b"))
    check(target).to_contain_text("required: no value")
    check(page.get_by_label("Value of GREETING")).to_have_attribute("placeholder", "hello")
    page.get_by_label("Name", exact=True).fill("1BAD")
    page.get_by_label("Value", exact=True).fill("x")
    page.get_by_role("button", name="Add variable").click()
    check(page.locator("#new-variable-problem")).to_contain_text("“1BAD” is not a valid name")
    page.get_by_label("Name", exact=True).fill("")
    page.get_by_label("Value", exact=True).fill("")

    page.get_by_label("Value of TARGET").fill("world")
    check(target).not_to_have_class(re.compile(r"\bmissing\b"))
    page.get_by_role("button", name="Save variables").click()
    check(page.locator("#variables-status")).to_contain_text("Saved: TARGET=world")
    assert console.json("project", "show", "flow")["variables"] == {"TARGET": "world"}

    # Start; the log panel follows the running stage and shows its lines live.
    page.get_by_role("button", name="Start", exact=True).click()
    check(state).to_have_text("running")
    show_tab(page, "Log")
    check(page.locator("#log-panel")).to_contain_text("step 2", timeout=20_000)
    show_tab(page, "Overview")
    work = run_rows(page, "work")
    check(work.get_by_role("button", name=re.compile(r"^Run \d+$"))).to_have_attribute(
        "aria-pressed", "true"
    )
    check(page.locator("#log-run")).to_contain_text("work")
    check(work.locator("td.duration")).to_have_text(re.compile(r"^\d+ s$"))
    screenshot(page, "project")

    # Pause lets `work` finish, then the project is paused before `finish`.
    page.get_by_role("button", name="Pause after current stage").click()
    check(state).to_have_text("pausing")
    check(page.locator("#project-reason")).to_have_text("pausing after the current stage")
    check(state).to_have_text("paused", timeout=20_000)
    check(work.locator(".state")).to_have_text("succeeded")
    check(page.locator('#timeline tbody[data-stage="finish"]')).to_contain_text("not run yet")

    # Resume from the first stage: new runs, the earlier ones stay listed, dimmed.
    page.get_by_label("Resume from", exact=True).select_option("prepare")
    page.get_by_role("button", name="Resume from stage").click()
    check(run_rows(page, "prepare")).to_have_count(2)
    check(page.locator("#timeline tr.run.superseded")).to_have_count(2, timeout=10_000)
    check(run_rows(page, "prepare").first).to_have_class(re.compile(r"\bsuperseded\b"))
    check(run_rows(page, "prepare").last).not_to_have_class(re.compile(r"\bsuperseded\b"))

    # A person picks an earlier run (keyboard); it stays picked until they follow the
    # current one.
    follow = page.get_by_role("button", name="Follow the current run")
    check(follow).to_be_hidden()
    old = run_rows(page, "prepare").first.locator(".run-pick")
    old.focus()
    page.keyboard.press("Enter")
    check(old).to_have_attribute("aria-pressed", "true")
    check(page.locator("#log-run")).to_contain_text("prepare · attempt 1 · succeeded · superseded")
    check(page.locator("#log-panel")).to_contain_text("prepared")
    follow.click()
    check(old).to_have_attribute("aria-pressed", "false")
    check(follow).to_be_hidden()

    # New values for the stages still to come: `finish` will fail with exit code 3.
    show_tab(page, "Variables")
    page.get_by_label("Value of GREETING").fill("hi")
    page.get_by_label("Name", exact=True).fill("FAIL")
    page.get_by_label("Value", exact=True).fill("1")
    page.get_by_role("button", name="Add variable").click()
    check(page.get_by_label("Value of FAIL")).to_have_value("1")
    page.get_by_role("button", name="Save variables").click()
    check(page.locator("#variables-status")).to_contain_text("Saved: GREETING=hi, FAIL=1")

    check(state).to_have_text("failed", timeout=40_000)
    show_tab(page, "Overview")
    failed = run_rows(page, "finish").last
    check(failed.locator(".state")).to_have_text("failed")
    check(failed.locator("td.exit")).to_have_text("3")
    check(failed.locator("td.reason")).to_have_text("exited with code 3")
    check(page.locator("#project-reason")).to_contain_text("exited with code 3")
    shown = console.json("project", "show", "flow")
    tail = [r for r in shown["runs"] if r["stage"] == "finish"][-1]["log_tail"]
    assert tail, "the failed run has last log lines"
    pre = page.locator('#timeline tbody[data-stage="finish"] details.tail pre')
    check(pre).to_be_visible()
    for line in tail:  # records are "<time> <stream> | <text>"; the page shows local time
        text = line.split(" | ", 1)[-1].strip()
        if text:
            check(pre).to_contain_text(text)
    check(pre).to_contain_text("exited with code 3")
    check(page.get_by_role("button", name="Kill…")).to_be_disabled()
    screenshot(page, "project-failed")

    # Every command is in the history, newest first.
    show_tab(page, "History")
    history = page.locator("#history-rows li")
    check(history.first).not_to_have_text("started")
    texts = history.all_inner_texts()
    assert any("variables: GREETING=hi, FAIL=1" in t for t in texts)
    started = next(i for i, t in enumerate(texts) if t.endswith("started"))
    resumed = next(i for i, t in enumerate(texts) if "resumed from stage 'prepare'" in t)
    assert resumed < started

    # Kill asks first, naming the running stage; Cancel leaves it running.
    page.get_by_label("Resume from", exact=True).select_option("work")
    page.get_by_role("button", name="Resume from stage").click()
    check(page.locator("#log-panel")).to_contain_text("step 1", timeout=20_000)
    kill = page.get_by_role("button", name="Kill…")
    check(kill).to_be_enabled()
    check(page.get_by_label("Resume from", exact=True)).to_be_disabled()
    check(page.locator("#resume-from-why")).to_contain_text("stage 'work' has ended")
    kill.click()
    dialog = page.get_by_role("dialog")
    check(dialog).to_be_visible()
    check(dialog).to_contain_text("Stage 'work' of 'flow' will be stopped now")
    assert page.evaluate("document.activeElement.id") == "kill-cancel"
    screenshot(page, "project-kill-dialog")
    dialog.get_by_role("button", name="Cancel").click()
    check(dialog).to_be_hidden()
    assert page.evaluate("document.activeElement.id") == "kill"
    check(state).to_have_text("running")

    kill.click()
    dialog.get_by_role("button", name="Kill now").click()
    check(state).to_have_text("paused", timeout=20_000)
    check(run_rows(page, "work").last.locator(".state")).to_have_text("cancelled")
    check(page.locator("#project-reason")).to_contain_text("was killed")

    # A refusal from the server reaches the person in words.
    page.get_by_label("Resume from", exact=True).select_option("finish")
    page.get_by_role("button", name="Resume from stage").click()
    check(page.get_by_role("alert")).to_contain_text(
        "Stage 'finish' needs stage 'work', which has no successful run yet"
    )
    check(state).to_have_text("paused")

    # A link to one run (the nodes page has them) shows that run, followed or loaded.
    # Run ids count across the server's projects: read this project's.
    runs = console.json("project", "show", "flow")["runs"]
    prepared = min(r["id"] for r in runs if r["stage"] == "prepare")
    worked = min(r["id"] for r in runs if r["stage"] == "work")
    page.goto(f"/projects/flow#run-{prepared}")
    first = run_rows(page, "prepare").first.locator(".run-pick")
    check(first).to_have_attribute("aria-pressed", "true")
    check(page.locator("#log-run")).to_contain_text(f"run {prepared} · prepare")
    page.goto(f"/projects/flow#run-{worked}")
    page.reload()
    check(run_rows(page, "work").first.locator(".run-pick")).to_have_attribute(
        "aria-pressed", "true"
    )
    check(first).to_have_attribute("aria-pressed", "false")
    check(page.locator("#log-panel")).to_contain_text("step 10")


def test_a_project_waiting_for_variables_says_which(page, console, tmp_path) -> None:
    check = expect()
    file = tmp_path / "ui-flow.yaml"
    file.write_text(PIPELINE)
    console.cli("pipeline", "apply", str(file))
    console.cli("project", "create", "waits", "--pipeline", "ui-flow", "--start")
    console.wait_for("waits", {"awaiting_input"})
    page.goto("/projects/waits")
    check(page.locator("#project-waiting")).to_have_text(
        "Stage 'prepare' needs the variable TARGET: set it under Variables, save, then Resume."
    )
    target = page.locator('#variable-rows tr[data-variable="TARGET"]')
    check(target).to_have_class(re.compile(r"\bwaited\b"))
    check(target).to_contain_text("the project waits for this")
    check(page.locator('#timeline tbody[data-stage="prepare"]')).to_contain_text(
        "waits for the variables TARGET"
    )
    check(page.locator("#log-note")).to_contain_text("No run yet")

    # The message's "Variables" opens that tab; a change made elsewhere shows up live, and
    # the person's own edit is kept.
    page.locator("#project-waiting").get_by_role("button", name="Variables").click()
    check(page.get_by_role("tab", name="Variables")).to_be_focused()
    check(page.get_by_role("tab", name="Variables")).to_have_attribute("aria-selected", "true")
    page.get_by_label("Value of TARGET").fill("world")
    console.cli("project", "env", "waits", "GREETING=servus")
    check(page.get_by_label("Value of GREETING")).to_have_value("servus")
    check(page.get_by_label("Value of TARGET")).to_have_value("world")
    page.get_by_role("button", name="Save variables").click()
    check(page.locator("#variables-status")).to_have_text("Saved: TARGET=world. Resume to go on.")
    page.get_by_role("button", name="Resume", exact=True).click()
    check(page.locator("#project-state")).to_have_text(re.compile("running|succeeded"))
    check(page.locator("#project-waiting")).to_be_hidden()


def test_unknown_project_is_a_page_with_the_way_back(page) -> None:
    check = expect()
    response = page.goto("/projects/no-such-thing")
    assert response.status == 404
    check(page.get_by_role("heading", name="No project “no-such-thing”")).to_be_visible()
    page.get_by_role("link", name="Back to all projects").click()
    page.get_by_role("heading", name="Projects").wait_for()


def test_runs_link_to_their_nomad_job_only_on_nomad() -> None:
    settings = Settings(nomad_addr="http://nomad.lab:4646", nomad_namespace="vision")
    nomad = SimpleNamespace(backend=SimpleNamespace(name="nomad"), settings=settings)
    local = SimpleNamespace(backend=SimpleNamespace(name="local"), settings=settings)
    assert nomad_links(nomad) == {"base": "http://nomad.lab:4646/ui", "namespace": "vision"}
    assert nomad_links(local) is None
    own = Settings(nomad_ui_url="https://nomad.example/ui/", nomad_namespace="default")
    assert nomad_links(SimpleNamespace(backend=nomad.backend, settings=own)) == {
        "base": "https://nomad.example/ui",
        "namespace": "default",
    }


def test_stages_list_what_they_wait_for() -> None:
    pipeline = {
        "stages": [
            {"name": "a"},
            {"name": "b", "gate": True},
            {"name": "c", "needs": ["a"], "description": "side"},
            {"name": "d", "confirmation": "once"},
        ]
    }
    assert stage_rows(pipeline) == [
        {"name": "a", "description": "", "needs": [], "gate": False, "confirmation": "never"},
        {"name": "b", "description": "", "needs": ["a"], "gate": True, "confirmation": "always"},
        {
            "name": "c",
            "description": "side",
            "needs": ["a"],
            "gate": False,
            "confirmation": "never",
        },
        {"name": "d", "description": "", "needs": ["c"], "gate": True, "confirmation": "once"},
    ]
