"""Quotas: a stage that would take its owner or its group past a limit waits, with the
reason on the run, and starts once a run of theirs ends.

The pure part (``core/quota.py``) is checked from values; the engine part with real
stages that wait for a file the test writes (host processes of the local backend, or
jobs of the Nomad stand-in with GPUs), real SeaweedFS and real SQLite, read through the
API the console reads.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.winslow import Harness
from winslow.core.quota import (
    Amounts,
    Limits,
    QuotaLedger,
    Subject,
    describe_use,
    refusal,
    use_by_subject,
)

VISION = Subject("group", "vision")
ANA = Subject("user", "ana")


# -- the pure part ------------------------------------------------------------------------


def test_a_group_at_its_gpu_limit_refuses_with_the_reason_a_person_reads() -> None:
    reason = refusal(VISION, Limits(gpus=8), Amounts(gpus=8), Amounts(gpus=2))
    assert reason == "group vision uses 8 of 8 GPUs; this stage needs 2 more"
    assert refusal(VISION, Limits(gpus=8), Amounts(gpus=6), Amounts(gpus=2)) is None


def test_cpus_and_memory_are_told_in_the_consoles_units() -> None:
    limits = Limits(cpus=32, memory_mb=64 * 1024)
    held = Amounts(cpus=30, memory_mb=60 * 1024)
    assert refusal(ANA, limits, held, Amounts(cpus=4)) == (
        "user ana uses 30 of 32 CPUs; this stage needs 4 more"
    )
    assert refusal(ANA, limits, held, Amounts(cpus=2, memory_mb=8192)) == (
        "user ana uses 60.0 GiB of 64.0 GiB memory; this stage needs 8.0 GiB more"
    )
    # Fractions that add up to the limit exactly fit.
    assert refusal(ANA, Limits(cpus=0.3), Amounts(cpus=0.1 + 0.1), Amounts(cpus=0.1)) is None


def test_a_stage_bigger_than_the_whole_quota_says_waiting_will_not_help() -> None:
    reason = refusal(VISION, Limits(gpus=4), Amounts(), Amounts(gpus=6))
    assert reason == (
        "group vision may use 4 GPUs at once and this stage needs 6; an admin can raise "
        "the quota, or change the stage's requirements and resume"
    )


def test_an_amount_the_stage_does_not_ask_for_never_holds_it_back() -> None:
    # The GPU limit was lowered under what runs hold; a CPU-only stage still starts.
    assert refusal(VISION, Limits(gpus=2, cpus=8), Amounts(gpus=4, cpus=1), Amounts(cpus=1)) is None


def test_missing_or_null_amounts_are_no_limit() -> None:
    assert Limits.from_json(None).unlimited
    assert Limits.from_json({"gpus": None}).unlimited
    assert Limits.from_json({"cpus": 4}) == Limits(cpus=4.0)
    ledger = QuotaLedger({ANA: Limits.from_json({})}, {ANA: Amounts(gpus=100)})
    assert ledger.refusal("ana", "vision", Amounts(cpus=64, memory_mb=10**6, gpus=8)) is None


def test_runs_count_for_their_owner_and_their_group() -> None:
    use = use_by_subject(
        [
            ("ana", "vision", Amounts(cpus=2, memory_mb=1024, gpus=1)),
            ("ben", "vision", Amounts(cpus=1, memory_mb=512, gpus=2)),
            ("ana", None, Amounts(cpus=4)),
            ("", None, Amounts(cpus=8)),  # a project from before owners: nobody's
        ]
    )
    assert use == {
        ANA: Amounts(cpus=6, memory_mb=1024, gpus=1),
        Subject("user", "ben"): Amounts(cpus=1, memory_mb=512, gpus=2),
        VISION: Amounts(cpus=3, memory_mb=1536, gpus=3),
    }


def test_a_run_taken_in_a_round_counts_for_the_next_one() -> None:
    ledger = QuotaLedger({VISION: Limits(gpus=8)}, {VISION: Amounts(gpus=6)})
    need = Amounts(gpus=2)
    assert ledger.refusal("ana", "vision", need) is None
    ledger.take("ana", "vision", need)
    assert ledger.refusal("ben", "vision", need) == (
        "group vision uses 8 of 8 GPUs; this stage needs 2 more"
    )
    assert ledger.refusal("ben", None, need) is None  # not charged to vision: not held


def test_the_users_quota_is_told_before_the_groups() -> None:
    ledger = QuotaLedger(
        {ANA: Limits(cpus=2), VISION: Limits(cpus=2)},
        {ANA: Amounts(cpus=2), VISION: Amounts(cpus=2)},
    )
    assert ledger.refusal("ana", "vision", Amounts(cpus=1)) == (
        "user ana uses 2 of 2 CPUs; this stage needs 1 more"
    )


def test_use_is_described_against_the_limits_it_has() -> None:
    text = describe_use(Limits(gpus=8, memory_mb=65536), Amounts(cpus=12, memory_mb=49152, gpus=6))
    assert text == "uses 6 of 8 GPUs, 12 CPUs, 48.0 GiB of 64.0 GiB memory"


# -- the engine, with real stages ---------------------------------------------------------

HOLD = """
name: hold
variables:
  RELEASE: {required: true}
stages:
  - name: work
    requirements: {cpus: 0.5, memory: 64}
    command: ["sh", "-c", "while [ ! -e \\"$RELEASE\\" ]; do sleep 0.05; done"]
"""

HOLD_GPU = """
name: hold-gpu
variables:
  RELEASE: {required: true}
stages:
  - name: train
    requirements: {cpus: 0.5, memory: 64, gpu: {count: 1}}
    command: ["sh", "-c", "while [ ! -e \\"$RELEASE\\" ]; do sleep 0.05; done"]
"""


def as_admin(winslow: Harness) -> dict[str, str]:
    token = winslow.context.store.create_token("boss", admin=True)
    return {"Authorization": f"Bearer {token}"}


def admin_call(winslow: Harness, admin: dict[str, str], method: str, path: str, body: Any) -> None:
    response = winslow.api.request(method, f"/api/v1{path}", json=body, headers=admin)
    assert response.status_code in (200, 201), response.text


def settle(winslow: Harness) -> None:
    """Reconcile until a round changes nothing (the running stages wait for their file)."""
    for _ in range(20):
        if not winslow.engine.reconcile_once(full=True):
            return
    raise AssertionError("the engine kept changing things")


def only_run(winslow: Harness, project: str) -> dict[str, Any]:
    (run,) = winslow.show(project)["runs"]
    return run  # type: ignore[no-any-return]


def quotas_of(winslow: Harness, **params: Any) -> dict[str, dict[str, Any]]:
    response = winslow.api.get("/api/v1/quotas", params=params)
    assert response.status_code == 200, response.text
    return {f"{q['kind']} {q['name']}": q for q in response.json()["data"]}


@pytest.mark.slow
def test_a_group_at_its_cpu_limit_keeps_a_stage_pending_until_a_run_ends(
    winslow: Harness, tmp_path: Path
) -> None:
    admin = as_admin(winslow)
    admin_call(winslow, admin, "POST", "/groups", {"name": "vision"})
    admin_call(winslow, admin, "PUT", "/groups/vision/members/tester", {"role": "maintainer"})
    admin_call(winslow, admin, "PATCH", "/groups/vision", {"quota": {"cpus": 0.5}})
    winslow.apply_pipeline(HOLD)
    first, second = tmp_path / "first", tmp_path / "second"
    winslow.create("first", "hold", group="vision", variables={"RELEASE": str(first)}, start=True)
    winslow.wait_until_running("first")

    waiting = ("second", "third")
    for name in waiting:
        variables = {"RELEASE": str(second)}
        winslow.create(name, "hold", group="vision", variables=variables, start=True)
    # The admin has no quota and no group: their project runs alongside.
    free = {"name": "free", "pipeline": "hold", "variables": {"RELEASE": str(second)}}
    response = winslow.api.post("/api/v1/projects", json=free | {"start": True}, headers=admin)
    assert response.status_code == 201, response.text
    winslow.wait_until_running("free")
    settle(winslow)
    held = only_run(winslow, "second")
    assert held["state"] == "pending"
    assert held["reason"] == "group vision uses 0.5 of 0.5 CPUs; this stage needs 0.5 more"
    assert only_run(winslow, "first")["state"] == "running"
    history = winslow.api.get("/api/v1/projects/second/history").json()["data"]
    assert any("is pending: group vision uses 0.5 of 0.5 CPUs" in e["message"] for e in history)

    seen = quotas_of(winslow)
    assert set(seen) == {"user tester", "group vision"}
    assert seen["group vision"]["limit"] == {"gpus": None, "cpus": 0.5, "memory_mb": None}
    assert seen["group vision"]["use"] == {"gpus": 0, "cpus": 0.5, "memory_mb": 64}
    assert seen["group vision"]["summary"] == "uses 0 GPUs, 0.5 of 0.5 CPUs, 64.0 MiB memory"
    assert seen["user tester"]["limit"] is None
    ana = {"Authorization": f"Bearer {winslow.context.store.create_token('ana')}"}
    refused = winslow.api.get("/api/v1/quotas", params={"everyone": "true"}, headers=ana)
    assert refused.status_code == 403, refused.text
    assert [q["name"] for q in winslow.api.get("/api/v1/quotas", headers=ana).json()["data"]] == [
        "ana"
    ]
    everyone = winslow.api.get("/api/v1/quotas", params={"everyone": "true"}, headers=admin)
    assert {f"{q['kind']} {q['name']}" for q in everyone.json()["data"]} >= {
        "user boss",
        "user tester",
        "group vision",
    }

    first.touch()
    deadline = time.monotonic() + 60
    while "running" not in (states := {p: only_run(winslow, p)["state"] for p in waiting}).values():
        assert time.monotonic() < deadline, f"neither waiting stage started: {states}"
        time.sleep(0.1)
        winslow.engine.reconcile_once()
    assert only_run(winslow, "first")["state"] == "succeeded"
    # Both waited for the one slot the first run freed: one got it, the other waits on.
    (still,) = [p for p, state in states.items() if state != "running"]
    assert (states[still], only_run(winslow, still)["reason"]) == ("pending", held["reason"])
    second.touch()
    winslow.engine.run_until_idle()
    states = [winslow.show(p)["state"] for p in ("first", "second", "third", "free")]
    assert states == ["succeeded"] * 4


@pytest.mark.slow
def test_a_user_at_their_gpu_limit_waits_on_nomad_until_their_run_ends(
    winslow_on_nomad: Harness, nomad_standin: Any, tmp_path: Path
) -> None:
    winslow = winslow_on_nomad
    nomad_standin.add_node("gpu-1", cpu_mhz=16000, gpus=[("Tesla V100", 16384)] * 2)
    admin = as_admin(winslow)
    admin_call(winslow, admin, "PATCH", "/users/tester", {"quota": {"gpus": 1}})
    winslow.apply_pipeline(HOLD_GPU)
    first, second = tmp_path / "first", tmp_path / "second"
    winslow.create("first", "hold-gpu", variables={"RELEASE": str(first)}, start=True)
    winslow.wait_until_running("first")
    winslow.create("second", "hold-gpu", variables={"RELEASE": str(second)}, start=True)
    settle(winslow)
    held = only_run(winslow, "second")
    assert held["state"] == "pending"
    assert held["reason"] == "user tester uses 1 of 1 GPUs; this stage needs 1 more"
    tester = quotas_of(winslow)["user tester"]
    assert (tester["limit"]["gpus"], tester["use"]["gpus"]) == (1, 1)

    first.touch()
    winslow.wait_until_running("second")
    assert only_run(winslow, "first")["state"] == "succeeded"
    # The first run's GPU went back; the second's is counted now.
    assert quotas_of(winslow)["user tester"]["use"]["gpus"] == 1
