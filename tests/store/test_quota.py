"""Quotas in the store, on SQLite and on PostgreSQL: the limits of users and groups, what
the runs handed to the backend and not ended hold per project owner and charged group,
and the ledger an engine round holds stages back by."""

from __future__ import annotations

import pytest

from tests.fixtures.postgres import ON_BOTH_DATABASES
from winslow.core.models import Project
from winslow.core.quota import Amounts, Limits, Subject
from winslow.core.resources import GpuRequest, ResourceRequest
from winslow.core.states import StageRunState
from winslow.store import people
from winslow.store.quota import RoundQuotas, quota_ledger, quota_limits, quota_use
from winslow.store.repo import Store

pytestmark = ON_BOTH_DATABASES

PIPELINE = {"name": "p", "stages": [{"name": "detect", "command": ["true"]}]}
ANA, BEN = Subject("user", "ana"), Subject("user", "ben")
VISION, TRAFFIC = Subject("group", "vision"), Subject("group", "traffic")


def create(store: Store, name: str, owner: str, group: str | None = None) -> Project:
    return store.create_project(
        name=name,
        pipeline_name="p",
        pipeline=PIPELINE,
        labels=(),
        variables={},
        actor=owner,
        charged_group=group,
    )


def add_run(
    store: Store,
    project: Project,
    state: StageRunState = StageRunState.RUNNING,
    *,
    submitted: bool = True,
    cpus: float = 1.0,
    memory_mb: int = 0,
    gpus: int = 0,
) -> None:
    with store.project_transaction(project.id) as tx:
        tx.add_run(
            stage="detect",
            attempt=1,
            state=state,
            submitted=submitted,
            cpus=cpus,
            memory_mb=memory_mb,
            gpus=gpus,
        )


@pytest.fixture
def people_with_quotas(store: Store) -> Store:
    for name in ("ana", "ben"):
        people.create_user(store, name)
    for name in ("vision", "traffic"):
        people.create_group(store, name)
    people.update_user(store, "ana", quota={"gpus": 2, "cpus": None, "memory_mb": None})
    people.update_group(store, "vision", quota={"gpus": 8, "cpus": 32.5, "memory_mb": 65536})
    return store


def test_limits_of_every_user_and_group_those_without_a_quota_unlimited(
    people_with_quotas: Store,
) -> None:
    store = people_with_quotas
    assert quota_limits(store) == {
        ANA: Limits(gpus=2),
        BEN: Limits(),
        VISION: Limits(gpus=8, cpus=32.5, memory_mb=65536),
        TRAFFIC: Limits(),
    }
    assert quota_limits(store, [ANA, VISION, Subject("group", "nobody")]) == {
        ANA: Limits(gpus=2),
        VISION: Limits(gpus=8, cpus=32.5, memory_mb=65536),
    }
    assert quota_limits(store, [BEN]) == {BEN: Limits()}
    assert quota_limits(store, []) == {}


def test_a_cleared_quota_is_no_limit(people_with_quotas: Store) -> None:
    store = people_with_quotas
    people.update_user(store, "ana", quota=None)
    people.update_group(store, "vision", quota=None)
    limits = quota_limits(store)
    assert limits[ANA].unlimited and limits[VISION].unlimited
    assert quota_ledger(store).limits == {}


def test_use_counts_submitted_runs_not_ended_for_owner_and_charged_group(store: Store) -> None:
    ulm = create(store, "ulm", "ana", "vision")
    berlin = create(store, "berlin", "ana")
    paris = create(store, "paris", "ben", "vision")
    add_run(store, ulm, cpus=2.5, memory_mb=4096, gpus=1)
    add_run(store, ulm, StageRunState.PENDING, cpus=1.0, memory_mb=1024, gpus=2)
    add_run(store, berlin, cpus=0.5, memory_mb=512)
    add_run(store, paris, gpus=4, cpus=4.0, memory_mb=8192)
    # Neither the backend's yet nor any more: they hold nothing.
    add_run(store, ulm, StageRunState.PENDING, submitted=False, gpus=8)
    for ended in (StageRunState.SUCCEEDED, StageRunState.FAILED, StageRunState.CANCELLED):
        add_run(store, paris, ended, gpus=8)

    assert quota_use(store) == {
        ANA: Amounts(cpus=4.0, memory_mb=5632, gpus=3),
        BEN: Amounts(cpus=4.0, memory_mb=8192, gpus=4),
        VISION: Amounts(cpus=7.5, memory_mb=13312, gpus=7),
    }


def test_projects_without_runs_hold_nothing(people_with_quotas: Store) -> None:
    create(people_with_quotas, "ulm", "ana", "vision")
    assert quota_use(people_with_quotas) == {}


def test_the_ledger_holds_the_subjects_with_a_quota_and_what_their_runs_hold(
    people_with_quotas: Store,
) -> None:
    store = people_with_quotas
    ulm = create(store, "ulm", "ben", "vision")
    add_run(store, ulm, gpus=7)

    ledger = quota_ledger(store)

    assert ledger.limits == {ANA: Limits(gpus=2), VISION: Limits(8, 32.5, 65536)}
    assert ledger.use[VISION] == Amounts(cpus=1.0, memory_mb=0, gpus=7)
    assert ledger.refusal("ben", "vision", Amounts(gpus=2)) == (
        "group vision uses 7 of 8 GPUs; this stage needs 2 more"
    )
    assert ledger.refusal("ben", None, Amounts(gpus=2)) is None  # ben has no quota


def test_without_any_quota_the_ledger_is_empty(store: Store) -> None:
    people.create_user(store, "ana")
    add_run(store, create(store, "ulm", "ana"), gpus=4)
    ledger = quota_ledger(store)
    assert (ledger.limits, ledger.use) == ({}, {})


def test_a_round_counts_each_run_it_submits_against_the_last_slot(
    people_with_quotas: Store,
) -> None:
    store = people_with_quotas
    ulm = create(store, "ulm", "ana", "vision")
    add_run(store, ulm, gpus=1)
    one_gpu = ResourceRequest(cpus=1.0, memory_mb=512, gpu=GpuRequest(count=1))
    round_quotas = RoundQuotas(store)

    assert round_quotas.refusal(ulm, one_gpu) is None
    round_quotas.take(ulm, one_gpu)
    assert round_quotas.refusal(ulm, one_gpu) == (
        "user ana uses 2 of 2 GPUs; this stage needs 1 more"
    )
