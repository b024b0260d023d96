"""The planner's rules: small named answers, asked in order, the first that answers wins.

As in Prefect's orchestration rules (``core_policy.py``), each rule says in its docstring
when it applies and what it answers, and a policy (an ordered tuple) says which rules are
asked. There are two policies:

- ``PROJECT_RULES`` answer for the whole project: ``(Situation) -> Decision | None``, where
  ``None`` means "does not apply, ask the next rule".
- ``STAGE_RULES`` answer for one stage: ``(Situation, Stage) -> StageAnswer | None``. Every
  stage the project may start is asked in pipeline order; the answers are gathered into a
  ``Plan`` (``Situation.plan``) that the later project rules read.

A ``Situation`` is computed once per decision: the current runs, which are active, what is
retried and what stopped the project, each stage's status, the values and results stages
see. Rules only read it, so each can be tested on a small hand-built project.

A stage whose ``when`` condition is false gets one run in the state ``skipped`` that says
why; a stage all of whose needs were skipped is skipped too, so a route not taken ends
quietly while a join of a taken and an untaken route still runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from winslow.core.models import Project, Run
from winslow.core.planning.decisions import Decision, MoveProject, SkipRun, StartRun
from winslow.core.planning.runs import (
    RunSet,
    StageStatus,
    current_run_sets,
    effective_variables,
    missing_variables,
    needs_confirmation,
    results_view,
    stage_status,
    tolerated,
)
from winslow.core.states import (
    ADVANCING_PROJECT_STATES,
    UNSUCCESSFUL_RUN_STATES,
    ProjectState,
    StageRunState,
)
from winslow.pipeline.conditions import ConditionError, evaluate
from winslow.pipeline.model import Pipeline, Stage, SweepWorkspace, combination_key

DONE_STAGE_STATUSES = frozenset({StageStatus.SUCCEEDED, StageStatus.SKIPPED})
"""Where a stage must stand for the stages that need it to go on."""


# --- After a run ended badly: retry it, or stop the project ----------------------------


def retry_of(stage: Stage, run: Run) -> StartRun | None:
    """Retry a failed or lost run while the stage's retry policy allows.

    Applies to an unsuccessful current run that was neither killed nor asked to stop.
    Answers the next attempt of the same combination, naming how the run ended.
    """
    if run.state not in UNSUCCESSFUL_RUN_STATES:
        return None
    if run.state is StageRunState.CANCELLED or run.cancel_requested:
        return None
    limit = stage.retry.on_lost if run.state is StageRunState.LOST else stage.retry.on_failure
    if run.attempt > limit:
        return None
    return StartRun(
        stage.name, run.attempt + 1, f"retry after: {describe_end(run)}", dict(run.combination)
    )


def stops_the_project(stage: Stage, run: Run) -> bool:
    """An unsuccessful run with no retry left stops the project.

    Killed runs stop it too. A failure a lenient sweep tolerates (``continue_on_failure``)
    does not: the sweep goes on with its other combinations.
    """
    return (
        run.state in UNSUCCESSFUL_RUN_STATES
        and retry_of(stage, run) is None
        and not tolerated(stage, run)
    )


def describe_end(run: Run) -> str:
    """Say how ``run`` ended badly, in the words of a project's reason."""
    which = f"stage '{run.stage}'" + (f" [{run.combination_key}]" if run.combination else "")
    if run.state is StageRunState.FAILED:
        what = run.reason or (
            f"exited with code {run.exit_code}" if run.exit_code is not None else "failed"
        )
        return f"{which} (run {run.id}) failed: {what}"
    if run.state is StageRunState.LOST:
        return f"{which} (run {run.id}) was lost: {run.reason or 'no reason known'}"
    return f"{which} (run {run.id}) was killed"


# --- What the rules look at ------------------------------------------------------------


@dataclass(frozen=True)
class StageAnswer:
    """A stage rule's answer for one stage; an empty answer: nothing for it now."""

    starts: tuple[StartRun, ...] = ()
    skip: SkipRun | None = None
    wait: MoveProject | None = None
    """Ask a person first (variables, a gate); the first stage that asks is named."""
    fail: MoveProject | None = None
    """Fail the project, whatever the other stages would do."""


NOTHING_NOW = StageAnswer()


@dataclass(frozen=True)
class Plan:
    """The stage rules' answers for every stage the project may start, in pipeline order."""

    starts: tuple[StartRun, ...] = ()
    """Retries first, then new runs."""
    skips: tuple[SkipRun, ...] = ()
    waiting: MoveProject | None = None
    failure: MoveProject | None = None


@dataclass(frozen=True)
class Situation:
    """Everything the rules read, computed once per decision by ``Situation.of``."""

    project: Project
    pipeline: Pipeline
    runs: Sequence[Run]
    """Every run, superseded ones too: a gate that asks "once" looks at them all."""
    current: Mapping[str, RunSet]
    active: tuple[Run, ...]
    allowed: frozenset[str]
    """The stages that may start: the "run only this stage" ones, else every stage."""
    retries: tuple[StartRun, ...]
    stopped: tuple[Run, ...]
    """Current runs that stop the project (``stops_the_project``), in pipeline order."""
    status: Mapping[str, StageStatus]
    values: Mapping[str, str]
    results: Mapping[str, Any]

    @classmethod
    def of(cls, project: Project, pipeline: Pipeline, runs: Sequence[Run]) -> Situation:
        """Look at ``project`` and its runs once, for every rule to read."""
        current = current_run_sets(runs)
        allowed = project.hold_after or frozenset(stage.name for stage in pipeline.stages)
        # "Run only this stage, then pause": nothing else may start, nothing else stops it.
        allowed_runs = [
            (stage, run)
            for stage in pipeline.stages
            if stage.name in allowed
            for run in current.get(stage.name, {}).values()
        ]
        retries = (retry_of(stage, run) for stage, run in allowed_runs)
        return cls(
            project=project,
            pipeline=pipeline,
            runs=runs,
            current=current,
            active=tuple(
                run for run_set in current.values() for run in run_set.values() if run.active
            ),
            allowed=allowed,
            retries=tuple(retry for retry in retries if retry is not None),
            stopped=tuple(run for stage, run in allowed_runs if stops_the_project(stage, run)),
            status={s.name: stage_status(s, current.get(s.name, {})) for s in pipeline.stages},
            values=effective_variables(pipeline, project.variables),
            results=results_view(pipeline, current),
        )

    def run_set(self, stage: Stage) -> RunSet:
        """The stage's current runs by combination key."""
        return self.current.get(stage.name, {})

    def open_combinations(self, stage: Stage) -> list[dict[str, str]]:
        """The stage's combinations with neither a current run nor a retry about to start."""
        taken = set(self.run_set(stage)) | {
            combination_key(dict(retry.combination))
            for retry in self.retries
            if retry.stage == stage.name
        }
        return [combo for combo in stage.combinations if combination_key(combo) not in taken]

    def needs_of(self, stage: Stage) -> list[str]:
        """The stages ``stage`` waits for."""
        return self.pipeline.needs_of(stage.name)

    def missing_variables(self, stage: Stage) -> list[str]:
        """The variables ``stage`` cannot start without, sorted."""
        return missing_variables(self.pipeline, stage, self.values)

    @cached_property
    def plan(self) -> Plan:
        """What ``STAGE_RULES`` answer for every stage, asked once and only when read."""
        return plan_stages(self)


# --- Stage rules -----------------------------------------------------------------------


def only_the_held_stage_may_start(situation: Situation, stage: Stage) -> StageAnswer | None:
    """After "run only this stage", no other stage starts.

    Applies to a stage outside the project's ``hold_after``; answers nothing for it.
    """
    return NOTHING_NOW if stage.name not in situation.allowed else None


def skipped_stage_stays_skipped(situation: Situation, stage: Stage) -> StageAnswer | None:
    """A stage with a current skipped run needs nothing more until a resume."""
    skipped = any(run.state is StageRunState.SKIPPED for run in situation.run_set(stage).values())
    return NOTHING_NOW if skipped else None


def started_stage_needs_no_new_run(situation: Situation, stage: Stage) -> StageAnswer | None:
    """A stage with a current run (or a retry) for every combination starts nothing new."""
    return NOTHING_NOW if not situation.open_combinations(stage) else None


def stage_waits_for_its_needs(situation: Situation, stage: Stage) -> StageAnswer | None:
    """A stage waits until every stage it needs succeeded or was skipped."""
    ready = all(
        situation.status.get(need, StageStatus.NOT_DONE) in DONE_STAGE_STATUSES
        for need in situation.needs_of(stage)
    )
    return None if ready else NOTHING_NOW


def stage_after_skipped_needs_is_skipped(situation: Situation, stage: Stage) -> StageAnswer | None:
    """A stage all of whose needs were skipped is skipped too (a route not taken).

    Applies when the stage needs something and every need is skipped; one succeeded need
    is enough for it to run (a join of a taken and an untaken route).
    """
    needs = situation.needs_of(stage)
    if not needs or any(situation.status.get(need) is not StageStatus.SKIPPED for need in needs):
        return None
    reason = f"every stage it needs was skipped ({', '.join(needs)})"
    return StageAnswer(skip=SkipRun(stage.name, reason, {"needs_skipped": needs}))


def condition_decides(situation: Situation, stage: Stage) -> StageAnswer | None:
    """A ``when`` condition that is false skips the stage, naming the values it saw.

    Applies before the stage's first current run. A condition that cannot be evaluated
    fails the project rather than skipping a day of GPU work, unless variables are missing
    (then ``stage_waits_for_variables`` asks for them). A true condition lets the next
    rules answer.
    """
    if stage.when is None or situation.run_set(stage):
        return None
    try:
        verdict = evaluate(stage.when, situation.results, situation.values)
    except ConditionError as exc:
        if situation.missing_variables(stage):
            return None
        reason = (
            f"stage '{stage.name}' cannot decide whether to run: {exc}; "
            "fix the condition or the results, then resume"
        )
        return StageAnswer(fail=MoveProject(ProjectState.FAILED, reason))
    if verdict.passed:
        return None
    data = {"condition": stage.when, "values": verdict.values}
    return StageAnswer(skip=SkipRun(stage.name, verdict.describe(stage.when), data))


def stage_waits_for_variables(situation: Situation, stage: Stage) -> StageAnswer | None:
    """A stage that lacks variables waits for a person to set them, naming them.

    Those its own gate asks for are left to the gate, which asks before the stage starts.
    """
    missing = situation.missing_variables(stage)
    if stage.ask is not None and gate_will_ask(situation, stage):
        asked = {item.name for item in stage.ask.inputs}
        missing = [name for name in missing if name not in asked]
    if not missing:
        return None
    reason = f"stage '{stage.name}' needs the variables {', '.join(missing)}; set them, then resume"
    waiting_for = {"stage": stage.name, "variables": missing}
    return StageAnswer(wait=MoveProject(ProjectState.AWAITING_INPUT, reason, waiting_for))


def gate_will_ask(situation: Situation, stage: Stage) -> bool:
    """Whether the stage's gate stops it for a person before its next start."""
    if situation.run_set(stage) or stage.name in situation.project.approved_gates:
        return False
    return needs_confirmation(stage, situation.runs)


def gate_waits_for_a_person(situation: Situation, stage: Stage) -> StageAnswer | None:
    """A stage that needs confirmation waits at its gate until a person lets it start.

    Applies before the stage's first current run (a sweep asks once for all its
    combinations), when its confirmation mode asks now and no approval is waiting for it.
    """
    if not gate_will_ask(situation, stage):
        return None
    reason = f"stage '{stage.name}' waits for a person; resume to start it"
    waiting_for = {"stage": stage.name, "gate": stage.name}
    return StageAnswer(wait=MoveProject(ProjectState.AWAITING_INPUT, reason, waiting_for))


def shared_sweep_starts_one_combination(situation: Situation, stage: Stage) -> StageAnswer | None:
    """A sweep with one shared workspace runs its combinations one after another.

    Each combination continues where the one before left the workspace, so while one
    runs (or is retried) nothing starts; otherwise the first open combination starts.
    """
    if stage.sweep is None or stage.sweep.workspace is not SweepWorkspace.SHARED:
        return None
    busy = any(run.active for run in situation.run_set(stage).values()) or any(
        retry.stage == stage.name for retry in situation.retries
    )
    if busy:
        return NOTHING_NOW
    first = situation.open_combinations(stage)[:1]
    return StageAnswer(starts=_first_runs(situation, stage, first))


def ready_stage_starts(situation: Situation, stage: Stage) -> StageAnswer | None:
    """A stage no earlier rule held back starts every open combination at once."""
    return StageAnswer(starts=_first_runs(situation, stage, situation.open_combinations(stage)))


def _first_runs(
    situation: Situation, stage: Stage, combinations: list[dict[str, str]]
) -> tuple[StartRun, ...]:
    reason = "its needs succeeded" if situation.needs_of(stage) else "first stage"
    return tuple(StartRun(stage.name, 1, reason, combo) for combo in combinations)


StageRule = Callable[[Situation, Stage], StageAnswer | None]

STAGE_RULES: tuple[StageRule, ...] = (
    only_the_held_stage_may_start,
    skipped_stage_stays_skipped,
    started_stage_needs_no_new_run,
    stage_waits_for_its_needs,
    stage_after_skipped_needs_is_skipped,
    condition_decides,
    stage_waits_for_variables,
    gate_waits_for_a_person,
    shared_sweep_starts_one_combination,
    ready_stage_starts,
)
"""Asked in this order for each stage; the last one always answers."""


def answer_for_stage(situation: Situation, stage: Stage) -> StageAnswer:
    """Return the first answer ``STAGE_RULES`` give for ``stage``."""
    for rule in STAGE_RULES:
        answer = rule(situation, stage)
        if answer is not None:
            return answer
    raise AssertionError("ready_stage_starts, the last stage rule, always answers")


def plan_stages(situation: Situation) -> Plan:
    """Ask the stage rules for every stage in pipeline order and gather their answers.

    The first failure ends the asking: it is the answer, whatever the others would be.
    """
    starts = list(situation.retries)
    skips: list[SkipRun] = []
    waiting: MoveProject | None = None
    for stage in situation.pipeline.stages:
        answer = answer_for_stage(situation, stage)
        if answer.fail is not None:
            return Plan(failure=answer.fail)
        starts.extend(answer.starts)
        if answer.skip is not None:
            skips.append(answer.skip)
        waiting = waiting or answer.wait
    return Plan(tuple(starts), tuple(skips), waiting)


# --- Project rules ---------------------------------------------------------------------


def only_advancing_projects_move(situation: Situation) -> Decision | None:
    """A project that is not running, pausing or failing needs nothing."""
    if situation.project.state in ADVANCING_PROJECT_STATES:
        return None
    return Decision()


def pausing_project_settles(situation: Situation) -> Decision | None:
    """A pausing project waits for its active runs, then settles; nothing new starts.

    Applies to a pausing project. Answers an empty decision while a run is active; then
    ``failed`` when a run failed or was lost with no retry left, else ``paused`` (naming a
    kill, if there was one). A retry that is due does not start; a resume runs its stage
    again.
    """
    if situation.project.state is not ProjectState.PAUSING:
        return None
    if situation.active:
        return Decision()
    killed = [run for run in situation.stopped if run.state is StageRunState.CANCELLED]
    failed = [run for run in situation.stopped if run.state is not StageRunState.CANCELLED]
    if failed:
        return Decision(move=MoveProject(ProjectState.FAILED, describe_end(failed[0])))
    reason = describe_end(killed[0]) if killed else "paused after the current stage"
    return Decision(move=MoveProject(ProjectState.PAUSED, reason))


def failed_branch_lets_the_others_go_on(situation: Situation) -> Decision | None:
    """A branch that failed past its retries shows at once; branches that do not need it go on.

    Applies to a running or failing project whose stopping runs all failed or were lost
    (a kill stops everything: ``stopped_run_ends_the_project``), while another run is
    active or another stage can start or be skipped. Answers those starts and skips; a
    running project moves to ``failing``, naming the failure and what still runs. Stages
    that need the failed one never start (``stage_waits_for_its_needs``). Once nothing
    else can happen it does not apply, and the next rule fails the project.
    """
    stopped = situation.stopped
    if not stopped or any(run.state is StageRunState.CANCELLED for run in stopped):
        return None
    plan = situation.plan
    going_on = sorted({run.stage for run in situation.active} | {s.stage for s in plan.starts})
    if not going_on and not plan.skips:
        return None
    move = None
    if situation.project.state is ProjectState.RUNNING and going_on:
        move = MoveProject(ProjectState.FAILING, failing_reason(stopped[0], going_on))
    return Decision(starts=plan.starts, skips=plan.skips, move=move)


def failing_reason(failed: Run, going_on: Sequence[str]) -> str:
    """Say which run failed and which stages go on before the project ends failed: "stage
    'report' (run 7) failed: exited with code 2; the project ends failed once stage 'infer'
    has ended"."""
    names = ", ".join(f"'{name}'" for name in going_on)
    verb = "has" if len(going_on) == 1 else "have"
    return f"{describe_end(failed)}; the project ends failed once stage {names} {verb} ended"


def stopped_run_ends_the_project(situation: Situation) -> Decision | None:
    """A run that stops the project fails it, or pauses it when the run was killed.

    Applies when a current run stops the project (``stops_the_project``). Answers an empty
    decision while other runs are active, so they end first; the first stopped run is the
    reason, but a failing project ends failed by its first failure.
    """
    if not situation.stopped:
        return None
    if situation.active:
        return Decision()
    first = situation.stopped[0]
    failures = [run for run in situation.stopped if run.state is not StageRunState.CANCELLED]
    if situation.project.state is ProjectState.FAILING and failures:
        first = failures[0]
    state = ProjectState.PAUSED if first.state is StageRunState.CANCELLED else ProjectState.FAILED
    return Decision(move=MoveProject(state, describe_end(first)))


def undecidable_condition_fails_the_project(situation: Situation) -> Decision | None:
    """A stage whose condition cannot be evaluated fails the project (``condition_decides``)."""
    failure = situation.plan.failure
    return Decision(move=failure) if failure is not None else None


def ready_stages_start(situation: Situation) -> Decision | None:
    """While anything starts or still runs, the answer is the starts and skips only.

    Applies when a run starts (a retry or a stage's first runs) or a run is active; the
    project moves (waits, pauses, succeeds) only once nothing runs.
    """
    plan = situation.plan
    if not plan.starts and not situation.active:
        return None
    return Decision(starts=plan.starts, skips=plan.skips)


def untaken_routes_are_skipped(situation: Situation) -> Decision | None:
    """Stages that are skipped and nothing else: record the skips, then decide again."""
    skips = situation.plan.skips
    return Decision(skips=skips) if skips else None


def waiting_stage_asks_a_person(situation: Situation) -> Decision | None:
    """Nothing runs and a stage waits for variables or at a gate: await input, naming it."""
    waiting = situation.plan.waiting
    return Decision(move=waiting) if waiting is not None else None


def only_this_stage_then_pause(situation: Situation) -> Decision | None:
    """After "run only this stage" ran it and nothing else can start, the project pauses."""
    held = situation.project.hold_after
    if not held:
        return None
    names = ", ".join(f"'{name}'" for name in sorted(held))
    reason = f"ran only stage {names} as asked; resume to go on"
    return Decision(move=MoveProject(ProjectState.PAUSED, reason))


def finished_project_succeeds(situation: Situation) -> Decision | None:
    """Every stage succeeded or was skipped: the project succeeded, naming the skipped ones."""
    if any(status not in DONE_STAGE_STATUSES for status in situation.status.values()):
        return None
    skipped = [name for name, s in situation.status.items() if s is StageStatus.SKIPPED]
    reason = "every stage succeeded"
    if skipped:
        reason = f"every stage succeeded or was skipped (skipped: {', '.join(skipped)})"
    return Decision(move=MoveProject(ProjectState.SUCCEEDED, reason))


def stuck_project_pauses(situation: Situation) -> Decision | None:
    """Nothing can start, nothing runs, yet stages are left: pause and say so.

    This happens when a definition change removed what the remaining stages need;
    saying so beats asking again forever. Always answers, so it comes last.
    """
    reason = "no stage can start: the remaining stages need stages that have not succeeded"
    return Decision(move=MoveProject(ProjectState.PAUSED, reason))


ProjectRule = Callable[[Situation], Decision | None]

PROJECT_RULES: tuple[ProjectRule, ...] = (
    only_advancing_projects_move,
    pausing_project_settles,
    failed_branch_lets_the_others_go_on,
    stopped_run_ends_the_project,
    undecidable_condition_fails_the_project,
    ready_stages_start,
    untaken_routes_are_skipped,
    waiting_stage_asks_a_person,
    only_this_stage_then_pause,
    finished_project_succeeds,
    stuck_project_pauses,
)
"""Asked in this order; the first answer is the decision, and the last rule always answers."""


def apply_rules(situation: Situation) -> Decision:
    """Return the first answer ``PROJECT_RULES`` give for ``situation``."""
    for rule in PROJECT_RULES:
        decision = rule(situation)
        if decision is not None:
            return decision
    raise AssertionError("stuck_project_pauses, the last project rule, always answers")
