"""The Nomad job a stage run becomes: schema-valid, literal where Nomad interpolates, no keys.

Env files are read back with the Nomad stand-in's ``parse_env_file``, a line-for-line
port of hashicorp/go-envparse (the JSON-escape version Nomad vendors), so a round trip
here is the round trip on a Nomad client. Golden files hold the jobs of
the traffic example; ``UPDATE_GOLDEN=1`` rewrites them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.nomad_standin.envfile import EnvParseError, parse_env_file
from winslow.backends.base import RunSpec
from winslow.backends.nomad.config import NomadConfig
from winslow.backends.nomad.envfile import choose_delimiters, deliver_args, encode_env_file
from winslow.backends.nomad.jobschema import RenderedJobInvalidError, validate_jobspec
from winslow.backends.nomad.jobspec import render_jobspec
from winslow.core.models import Project, Run
from winslow.core.planner import effective_variables
from winslow.core.resources import GpuRequest, ResourceRequest
from winslow.core.states import ProjectState, StageRunState
from winslow.defaults import FOLLOW_DRAIN_SECONDS
from winslow.engine.specs import build_spec
from winslow.errors import SubmitRejectedError
from winslow.pipeline.load import load_pipeline_file

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = Path(__file__).parent / "golden"
"""The reference the package's schema was copied from, where a checkout has it beside it."""
ACCESS_KEY = "AKIAWINSLOWACCESS0001"
TOOLS_IMAGE = "registry.lab:5000/winslow-tools:0.1.0"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYsecretKEY"

# ---------------------------------------------------------------------------------------
# The env-file parser Nomad clients use (the stand-in's port of hashicorp/go-envparse)


def test_port_matches_envparse_readme_example():
    line = 'SOME_KEY = normal unquoted \\text \'plus single quoted\\\' "\\"double quoted " # EOL'
    assert parse_env_file(line) == {
        "SOME_KEY": 'normal unquoted \\text plus single quoted\\ "double quoted '
    }


def test_port_refuses_raw_control_characters_like_envparse():
    with pytest.raises(EnvParseError, match="0x01 is an invalid value character"):
        parse_env_file('A="x\x01y"\n')


# ---------------------------------------------------------------------------------------
# Specs and configs


def make_spec(**changes) -> RunSpec:
    spec = RunSpec(
        job_id="winslow-ulm-0603-p7-run-41",
        project_id="p7",
        project_name="ulm-0603",
        pipeline="traffic",
        stage="detect",
        run_id=41,
        attempt=1,
        command=("python3", "detect.py", "--min-area", "150"),
        env={"WINSLOW_PROJECT": "ulm-0603", "WINSLOW_STAGE": "detect", "WINSLOW_RUN": "41"},
        resources=ResourceRequest(cpus=2, memory_mb=2048),
        inputs=("videos/road.mp4",),
        workspace_sources=("workspaces/p7/40/",),
        workspace_prefix="workspaces/p7/41/",
        log_key="logs/p7/41.log",
        timeout_seconds=600,
    )
    return dataclasses.replace(spec, **changes)


def make_config(**changes) -> NomadConfig:
    config = NomadConfig(
        allow_host_commands=True,
        s3_endpoint="http://s3.internal:8333",
        s3_bucket="winslow",
        datacenters=("dc1",),
        winslow_image=TOOLS_IMAGE,
    )
    return dataclasses.replace(config, **changes)


def task(job, name):
    (found,) = [t for t in job["TaskGroups"][0]["Tasks"] if t["Name"] == name]
    return found


def literal_env(job_task, dest="secrets/stage.env"):
    (entry,) = [t for t in job_task.get("Templates", []) if t["DestPath"] == dest]
    assert entry["Envvars"] is True
    assert entry["LeftDelim"] not in entry["EmbeddedTmpl"]
    assert entry["RightDelim"] not in entry["EmbeddedTmpl"]
    return parse_env_file(entry["EmbeddedTmpl"])


def walk_strings(value, path=""):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk_strings(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk_strings(item, f"{path}/{index}")
    elif isinstance(value, str):
        yield path, value


VARIANTS = {
    "host command": (make_spec(), make_config(), {}),
    "docker image": (make_spec(image="ghcr.io/acme/detect:1.4"), make_config(), {}),
    "docker image without command": (
        make_spec(image="ghcr.io/acme/detect:1.4", command=()),
        make_config(allow_host_commands=False),
        {},
    ),
    "gpu with model and memory": (
        make_spec(
            image="ghcr.io/acme/detect:1.4",
            resources=ResourceRequest(4, 16384, GpuRequest(2, "A100|H100", 40960)),
        ),
        make_config(),
        {},
    ),
    "gpu count only": (
        make_spec(resources=ResourceRequest(1, 1024, GpuRequest(1))),
        make_config(),
        {},
    ),
    "with affinity": (make_spec(), make_config(), {"affinity_node": "gpu-node-3"}),
    "lost retries": (make_spec(), make_config(), {"lost_retries": 2}),
    "vault credentials": (
        make_spec(),
        make_config(credentials="vault", credentials_path="secret/data/winslow/s3"),
        {},
    ),
    "vault with role": (
        make_spec(),
        make_config(credentials="vault", vault_role="winslow-stages", region="eu"),
        {},
    ),
    "raw_exec tools": (make_spec(), make_config(tools_driver="raw_exec"), {}),
    "node cache, docker tools": (make_spec(), make_config(node_cache_dir="/var/cache/w"), {}),
    "node cache, container stage": (
        make_spec(image="ultralytics/yolo:8"),
        make_config(node_cache_dir="/var/cache/w"),
        {},
    ),
    "node cache, raw_exec tools": (
        make_spec(),
        make_config(node_cache_dir="/var/cache/w", tools_driver="raw_exec"),
        {},
    ),
    "nothing to transfer": (
        make_spec(inputs=(), workspace_sources=(), workspace_prefix="", log_key=""),
        make_config(),
        {},
    ),
}


@pytest.mark.parametrize("variant", VARIANTS, ids=list(VARIANTS))
def test_every_variant_matches_nomads_job_schema(variant):
    spec, config, options = VARIANTS[variant]
    job = render_jobspec(spec, config, **options)
    assert validate_jobspec(job) == []


def test_validate_names_the_misspelled_field():
    job = render_jobspec(make_spec(), make_config())
    job["TaskGroups"][0]["Tasks"][1]["KillTimout"] = 5
    job["TaskGroups"][0]["Tasks"][1]["Resources"]["CPU"] = "2000"
    problems = validate_jobspec(job)
    assert any(p.startswith("Job/TaskGroups/0/Tasks/1:") and "KillTimout" in p for p in problems)
    assert any(p.startswith("Job/TaskGroups/0/Tasks/1/Resources/CPU:") for p in problems)


def test_template_output_without_tojson_is_refused(tmp_path):
    (tmp_path / "stage.json.j2").write_text('{"ID": "{{ job_id }}"}')
    with pytest.raises(TypeError, match=r"without `\| tojson`"):
        render_jobspec(make_spec(), make_config(jobspecs_dir=str(tmp_path)))


def test_a_template_that_renders_an_invalid_job_is_a_bug_not_a_rejection(tmp_path):
    (tmp_path / "stage.json.j2").write_text('{"ID": {{ job_id | tojson }}, "Bogus": 1}')
    with pytest.raises(RenderedJobInvalidError) as caught:
        render_jobspec(make_spec(), make_config(jobspecs_dir=str(tmp_path)))
    assert caught.value.job_id == "winslow-ulm-0603-p7-run-41"
    assert any("Bogus" in problem for problem in caught.value.problems)


def test_job_id_name_type_and_meta():
    job = render_jobspec(
        make_spec(), make_config(extra_meta={"team": "vision", "winslow_run": "spoofed"})
    )
    assert job["ID"] == "winslow-ulm-0603-p7-run-41"
    assert job["Name"] == "ulm-0603 · detect · run 41 (attempt 1)"
    assert job["Type"] == "batch"
    assert job["Namespace"] == "default"
    assert "Region" not in job
    assert job["Datacenters"] == ["dc1"]
    assert job["Priority"] == 50
    assert job["Meta"] == {
        "team": "vision",
        "winslow_project": "ulm-0603",
        "winslow_project_id": "p7",
        "winslow_pipeline": "traffic",
        "winslow_stage": "detect",
        "winslow_run": "41",  # extra_meta cannot spoof ours: adoption reads them
        "winslow_attempt": "1",
        "winslow_managed": "true",
        "winslow_lost_retries": "0",
        "winslow_timeout_seconds": "600",
    }


def test_job_id_outside_the_prefix_is_rejected():
    with pytest.raises(SubmitRejectedError, match="WINSLOW_NOMAD_JOB_PREFIX"):
        render_jobspec(make_spec(), make_config(job_prefix="batch-"))


def test_nomad_never_restarts_reschedules_or_replaces_on_its_own():
    job = render_jobspec(make_spec(), make_config(), lost_retries=3)
    group = job["TaskGroups"][0]
    assert group["Name"] == "stage"
    assert group["Count"] == 1
    assert group["RestartPolicy"]["Attempts"] == 0
    assert group["RestartPolicy"]["Mode"] == "fail"
    # Nomad reschedules *failed* allocations and replaces lost ones regardless of this
    # policy; the engine's retry.on_lost makes a new run instead.
    assert group["ReschedulePolicy"]["Attempts"] == 0
    assert group["ReschedulePolicy"]["Unlimited"] is False
    assert group["ReschedulePolicy"]["DelayFunction"] == "constant"
    assert group["Disconnect"] == {"Replace": False}
    assert job["Meta"]["winslow_lost_retries"] == "3"


def test_affinity_prefers_the_node_only_when_given():
    assert "Affinities" not in render_jobspec(make_spec(), make_config())["TaskGroups"][0]
    job = render_jobspec(make_spec(), make_config(), affinity_node="gpu-node-3")
    assert job["TaskGroups"][0]["Affinities"] == [
        {"LTarget": "${node.unique.name}", "Operand": "=", "RTarget": "gpu-node-3", "Weight": 50}
    ]


def test_tasks_run_in_lifecycle_order():
    job = render_jobspec(make_spec(), make_config())
    tasks = job["TaskGroups"][0]["Tasks"]
    assert [t["Name"] for t in tasks] == ["stage-in", "main", "stage-out"]
    assert tasks[0]["Lifecycle"] == {"Hook": "prestart", "Sidecar": False}
    assert "Lifecycle" not in tasks[1]
    assert tasks[2]["Lifecycle"] == {"Hook": "poststop", "Sidecar": False}


def test_gpu_device_constraints_exact():
    spec = make_spec(resources=ResourceRequest(4, 16384, GpuRequest(2, "A100|H100", 40960)))
    main = task(render_jobspec(spec, make_config()), "main")
    assert main["Resources"] == {
        "Cores": 4,
        "MemoryMB": 16384,
        "Devices": [
            {
                "Name": "nvidia/gpu",
                "Count": 2,
                "Constraints": [
                    {"LTarget": "${device.model}", "RTarget": "A100|H100", "Operand": "regexp"},
                    {"LTarget": "${device.attr.memory}", "RTarget": "40960 MiB", "Operand": ">="},
                ],
            }
        ],
    }


def test_no_gpu_asks_for_no_device():
    main = task(render_jobspec(make_spec(), make_config()), "main")
    assert main["Resources"] == {"Cores": 2, "MemoryMB": 2048}


@pytest.mark.parametrize(
    ("cpus", "cores"), [(0.5, 1), (1, 1), (1.5, 2), (2.0, 2), (2.25, 3), (16, 16)]
)
def test_stage_cpus_become_whole_cores_rounded_up(cpus, cores):
    """Nomad reserves ``resources.cores`` whole and exclusively on whichever node it picks
    (scheduler/rank.go BinPackIterator: ``task.Resources.Cores`` from the node's usable
    cores), and refuses ``cpu`` beside ``cores`` (nomad/structs/structs.go
    ``Resources.Validate``: "Task can only ask for 'cpu' or 'cores' resource, not both").
    A fraction gets the next whole core: never less than the stage asked for."""
    spec = make_spec(resources=ResourceRequest(cpus, 1024))
    main = task(render_jobspec(spec, make_config()), "main")
    assert main["Resources"] == {"Cores": cores, "MemoryMB": 1024}
    # The tools share the node's CPU by MHz; they copy bytes, they do not compute.
    assert task(render_jobspec(spec, make_config()), "stage-in")["Resources"]["CPU"] == 200


@pytest.mark.parametrize(
    ("pattern", "rendered"),
    [
        ("4090", "(?:)4090"),
        ("80GB", "(?:)80GB"),
        ("40 GiB", "(?:)40 GiB"),
        ("-1", "(?:)-1"),
        ("1.5", "(?:)1.5"),
        ("1e3", "(?:)1e3"),
        ("0x1p-2", "(?:)0x1p-2"),
        ("Inf", "(?:)Inf"),
        ("nan", "(?:)nan"),
        ("true", "(?:)true"),
        ("F", "(?:)F"),
        ("A100", "A100"),
        ("A100|H100", "A100|H100"),
        ("RTX 40[0-9]0", "RTX 40[0-9]0"),
        ("(?i)rtx 4090", "(?i)rtx 4090"),
        ("4090$", "4090$"),
    ],
)
def test_model_patterns_nomad_would_read_as_numbers_stay_strings(pattern, rendered):
    """Nomad types a device constraint's right-hand side with ``ParseAttribute``
    (hashicorp/nomad plugins/shared/structs/attribute.go: an integer, a float, either with
    a known unit suffix, or a bool before a string), and ``regexp`` matches only two strings
    (scheduler/feasible.go ``checkAttributeConstraint``), so ``4090`` would never match and
    the job would stay blocked on "missing devices". An empty group in front parses as none
    of those and matches the same names."""
    spec = make_spec(resources=ResourceRequest(1, 1024, GpuRequest(1, pattern)))
    main = task(render_jobspec(spec, make_config()), "main")
    [device] = main["Resources"]["Devices"]
    assert device["Constraints"][0] == {
        "LTarget": "${device.model}",
        "RTarget": rendered,
        "Operand": "regexp",
    }


def test_node_pool_and_extra_constraints_reach_the_job():
    config = make_config(
        node_pool="gpu",
        constraints=(
            ("${node.class}", "=", "gpu"),
            ("${attr.unique.hostname}", "regexp", "^gpu-[0-9]+$"),
            ("${meta.maintenance}", "is_not_set", ""),
        ),
    )
    job = render_jobspec(make_spec(), config)
    assert job["NodePool"] == "gpu"
    assert job["Constraints"] == [
        {"LTarget": "${node.class}", "RTarget": "gpu", "Operand": "="},
        {"LTarget": "${attr.unique.hostname}", "RTarget": "^gpu-[0-9]+$", "Operand": "regexp"},
        {"LTarget": "${meta.maintenance}", "RTarget": "", "Operand": "is_not_set"},
    ]
    assert validate_jobspec(job) == []


def test_without_node_pool_or_constraints_the_job_names_neither():
    job = render_jobspec(make_spec(), make_config())
    assert "NodePool" not in job and "Constraints" not in job


def test_docker_stage_runs_its_command_in_the_workspace():
    spec = make_spec(image="ghcr.io/acme/detect:1.4", command=("python3", "detect.py", "-v"))
    job = render_jobspec(spec, make_config(allow_host_commands=False))
    main = task(job, "main")
    assert main["Driver"] == "docker"
    assert main["Config"] == {
        "image": "ghcr.io/acme/detect:1.4",
        "work_dir": "/alloc/workspace",
        "command": "python3",
        "args": ["detect.py", "-v"],
    }
    assert main["Env"] == {
        "WINSLOW_WORKSPACE": "/alloc/workspace",
        "WINSLOW_INPUTS": "/alloc/inputs",
    }
    assert main["KillSignal"] == "SIGTERM"
    assert "--merge-task-logs" in task(job, "stage-out")["Config"]["args"]


def test_container_stage_gets_a_log_follower_sidecar_beside_it():
    """A poststart sidecar: Nomad starts it once the main task has left ``pending`` and
    kills it once the main task is dead (client/allocrunner/tasklifecycle/coordinator.go
    ``isMainDone``; alloc_runner.go ``handleTaskStateUpdates``, ``TaskMainDead``)."""
    spec = make_spec(image="ghcr.io/acme/detect:1.4", command=("python3", "detect.py"))
    job = render_jobspec(spec, make_config(allow_host_commands=False))
    follow = task(job, "stage-follow")
    assert follow["Lifecycle"] == {"Hook": "poststart", "Sidecar": True}
    assert (follow["Driver"], follow["Config"]["image"]) == ("docker", TOOLS_IMAGE)
    assert follow["Config"]["command"] == "winslow"
    assert follow["Config"]["args"] == [
        "stage-follow",
        "--logs-dir",
        "${NOMAD_ALLOC_DIR}/logs",
        "--task",
        "main",
        "--log",
        "${NOMAD_ALLOC_DIR}/logs/winslow.log",
        "--workspace",
        "${NOMAD_ALLOC_DIR}/workspace",
    ]
    assert "volumes" not in follow["Config"]
    assert follow["Env"] == {} and follow["Templates"] == []  # no S3 keys: it needs none
    assert "Vault" not in follow and "Identities" not in follow
    # its drain ends before Nomad's kill timeout
    assert follow["KillTimeout"] > FOLLOW_DRAIN_SECONDS * 10**9
    assert "--merge-task-logs" in task(job, "stage-out")["Config"]["args"]  # what it missed
    assert validate_jobspec(job) == []


def test_host_stage_has_no_log_follower():
    job = render_jobspec(make_spec(), make_config())
    names = [t["Name"] for t in job["TaskGroups"][0]["Tasks"]]
    assert names == ["stage-in", "main", "stage-out"]


def test_host_stage_runs_through_stage_exec_with_its_timeout():
    main = task(render_jobspec(make_spec(), make_config(host_driver="exec")), "main")
    assert main["Driver"] == "exec"
    assert main["Config"]["command"] == "winslow"
    args = main["Config"]["args"]
    assert args[0] == "stage-exec"
    assert args[args.index("--workdir") + 1] == "${NOMAD_ALLOC_DIR}/workspace"
    assert args[args.index("--timeout") + 1] == "600"
    assert args[args.index("--log") + 1] == "${NOMAD_ALLOC_DIR}/logs/winslow.log"
    assert args[args.index("--") + 1 :] == ["python3", "detect.py", "--min-area", "150"]
    # the grace inside is shorter than Nomad's kill timeout, so stage-exec gets to SIGKILL
    assert int(args[args.index("--grace") + 1]) * 10**9 < main["KillTimeout"]


def test_command_only_stage_without_host_commands_is_rejected_clearly():
    with pytest.raises(SubmitRejectedError) as caught:
        render_jobspec(make_spec(), make_config(allow_host_commands=False))
    assert caught.value.message == (
        "Stage 'detect' has no image, and this Nomad cluster runs no commands directly on its "
        "nodes: set WINSLOW_NOMAD_ALLOW_HOST_COMMANDS=true to run it with Nomad's raw_exec "
        "driver, or give the stage an image."
    )


def test_raw_exec_tools_need_host_commands():
    with pytest.raises(SubmitRejectedError, match="WINSLOW_NOMAD_TOOLS_DRIVER=docker"):
        render_jobspec(
            make_spec(image="a:1"), make_config(tools_driver="raw_exec", allow_host_commands=False)
        )


def test_tools_tasks_name_the_transfers():
    job = render_jobspec(make_spec(), make_config())
    stage_in = task(job, "stage-in")
    assert stage_in["Driver"] == "docker"
    assert stage_in["Config"]["image"] == TOOLS_IMAGE
    assert stage_in["Config"]["command"] == "winslow"
    assert stage_in["Config"]["args"] == [
        "stage-in",
        "--workspace",
        "${NOMAD_ALLOC_DIR}/workspace",
        "--inputs",
        "${NOMAD_ALLOC_DIR}/inputs",
        "--log",
        "${NOMAD_ALLOC_DIR}/logs/winslow.log",
        "--source",
        "workspaces/p7/40/",
        "--input",
        "videos/road.mp4",
    ]
    stage_out = task(job, "stage-out")
    args = stage_out["Config"]["args"]
    assert args[args.index("--prefix") + 1] == "workspaces/p7/41/"
    assert args[args.index("--log-key") + 1] == "logs/p7/41.log"
    assert "--merge-task-logs" not in args  # stage-exec already logged the output
    assert stage_in["Env"] == {
        "WINSLOW_S3_ENDPOINT": "http://s3.internal:8333",
        "WINSLOW_S3_BUCKET": "winslow",
        "WINSLOW_S3_REGION": "us-east-1",
    }


def test_node_cache_reaches_stage_in_and_stage_out():
    # Stage-in fetches through the cache; stage-out adds what it published, so the next
    # stage on this node fetches nothing.
    config = make_config(node_cache_dir="/var/cache/w", node_cache_max_bytes=5 * 2**30)
    docker = render_jobspec(make_spec(), config)
    for name in ("stage-in", "stage-out"):
        tool = task(docker, name)
        assert tool["Config"]["volumes"] == ["/var/cache/w:/winslow-cache"]
        assert tool["Config"]["args"][-4:] == [
            "--cache",
            "/winslow-cache",
            "--cache-max",
            str(5 * 2**30),
        ]
    host = render_jobspec(
        make_spec(), make_config(node_cache_dir="/var/cache/w", tools_driver="raw_exec")
    )
    assert task(host, "stage-in")["Config"]["args"][-2:] == ["--cache", "/var/cache/w"]
    assert task(host, "stage-out")["Config"]["args"][-2:] == ["--cache", "/var/cache/w"]
    # A stage with nothing to move needs no cache (and no bind mount).
    bare = render_jobspec(make_spec(inputs=(), workspace_sources=(), workspace_prefix=""), config)
    assert "volumes" not in task(bare, "stage-in")["Config"]
    with pytest.raises(SubmitRejectedError, match="absolute path"):
        render_jobspec(make_spec(), make_config(node_cache_dir="cache"))


def test_the_stage_gets_its_own_folder_of_the_node_cache():
    """``WINSLOW_CACHE_DIR``: what a stage keeps between runs on a node (a TensorRT engine
    built for its GPU) lives in the node cache's ``stages`` folder."""
    config = make_config(node_cache_dir="/var/cache/w")
    container = task(render_jobspec(make_spec(image="ultralytics/yolo:8"), config), "main")
    assert container["Config"]["volumes"] == ["/var/cache/w/stages:/winslow/cache"]
    assert container["Env"]["WINSLOW_CACHE_DIR"] == "/winslow/cache"
    host = task(render_jobspec(make_spec(), config), "main")
    args = host["Config"]["args"]
    assert args[args.index("--stage-cache") + 1] == "/var/cache/w/stages"
    assert args.index("--stage-cache") < args.index("--")  # stage-exec's, not the stage's
    # exec's chroot shows no folder of the node; without a node cache there is none to give.
    isolated = task(
        render_jobspec(make_spec(), dataclasses.replace(config, host_driver="exec")), "main"
    )
    assert "--stage-cache" not in isolated["Config"]["args"]
    for job in (
        render_jobspec(make_spec(image="ultralytics/yolo:8"), make_config()),
        render_jobspec(make_spec(), make_config()),
    ):
        main = task(job, "main")
        assert "volumes" not in main["Config"] and "WINSLOW_CACHE_DIR" not in main["Env"]
        assert "--stage-cache" not in main["Config"].get("args", [])
        assert validate_jobspec(job) == []


@pytest.mark.parametrize("credentials", ["nomad-variables", "vault"])
def test_no_credential_appears_anywhere_in_the_job(credentials):
    # The config carries no keys at all; the storage config the server has does, and the
    # renderer never sees it. What the job holds is a reference the node resolves.
    config = make_config(credentials=credentials, credentials_path="nomad/jobs")
    spec = make_spec(env={"PLAIN": "value"})
    text = json.dumps(render_jobspec(spec, config))
    assert ACCESS_KEY not in text and SECRET_KEY not in text
    for path, value in walk_strings(json.loads(text)):
        name = path.rsplit("/", 1)[-1].upper()
        if "SECRET" in name or "ACCESS_KEY" in name or "PASSWORD" in name:
            pytest.fail(f"{path} holds a value: {value!r}")
        assert "WINSLOW_S3_SECRET_KEY=" not in value or "{{" in value, path


def test_s3_keys_come_from_a_nomad_variable_rendered_on_the_node():
    job = render_jobspec(make_spec(), make_config(credentials_path="nomad/jobs"))
    for name in ("stage-in", "stage-out"):
        (entry,) = [t for t in task(job, name)["Templates"] if t["DestPath"] == "secrets/s3.env"]
        assert entry["EmbeddedTmpl"] == (
            '{{ with nomadVar "nomad/jobs" }}'
            "WINSLOW_S3_ACCESS_KEY={{ .access_key | toJSON }}\n"
            "WINSLOW_S3_SECRET_KEY={{ .secret_key | toJSON }}\n"
            "{{ end }}"
        )
        assert entry["Envvars"] is True
        assert entry["ChangeMode"] == "noop"  # a rotated key must not restart a transfer
        assert entry["ErrMissingKey"] is True
        assert "LeftDelim" not in entry
        assert "Vault" not in task(job, name)
    main = task(job, "main")
    assert all(t["DestPath"] != "secrets/s3.env" for t in main.get("Templates", []))
    assert not any(k.startswith("WINSLOW_S3") for k in main["Env"])


def test_vault_credentials_use_workload_identity_and_kv2():
    config = make_config(
        credentials="vault", credentials_path="secret/data/winslow/s3", vault_role="stages"
    )
    job = render_jobspec(make_spec(), config)
    stage_out = task(job, "stage-out")
    assert stage_out["Vault"] == {"Role": "stages", "ChangeMode": "noop", "Env": False}
    assert stage_out["Identities"] == [
        {
            "Name": "vault_default",
            "Audience": ["vault.io"],
            "TTL": 3600 * 10**9,
            "ChangeMode": "noop",
        }
    ]
    (entry,) = [t for t in stage_out["Templates"] if t["DestPath"] == "secrets/s3.env"]
    assert entry["EmbeddedTmpl"].startswith('{{ with secret "secret/data/winslow/s3" }}')
    assert "{{ .Data.data.secret_key | toJSON }}" in entry["EmbeddedTmpl"]
    assert "Vault" not in task(job, "main")


def test_credentials_path_that_could_break_the_template_is_rejected():
    with pytest.raises(SubmitRejectedError, match="WINSLOW_NOMAD_CREDENTIALS_PATH"):
        render_jobspec(make_spec(), make_config(credentials_path='a" }}{{ env "X'))


NASTY = {
    "QUOTES": "say \"hi\" and 'bye'",
    "BACKSLASHES": "C:\\path\\to\\n\\t\\\\",
    "NEWLINES": "line 1\nline 2\r\nline 3\r",
    "TAB_AND_CONTROL": "a\tb\x01c\x1b[31mred\x7f",
    "DOLLAR_BRACE": "${NOMAD_ALLOC_DIR} $HOME ${X:-y} $${Z}",
    "PERCENT_BRACE": "%{ if true }x%{ endif }",
    "GO_TEMPLATE": '{{ env "SECRET" }} {{ .Data }} [[winslow:none x winslow:none]]',
    "HASH": "value # not a comment",
    "SPACES": "  leading and trailing  ",
    "UNICODE": "Ulm · Straße 🚗 日本 \u2028 end",
    "EXPORT_LIKE": "export FOO=bar",
    "EQUALS": "a=b=c",
    "EMPTY": "",
    "JSON": '{"a": [1, "two\\n"], "b": null}',
}


def test_nasty_env_values_reach_the_stage_exactly():
    spec = make_spec(env=NASTY)
    main = task(render_jobspec(spec, make_config()), "main")
    assert literal_env(main) == NASTY
    # Nothing of the user's in Env, which Nomad interpolates.
    assert set(main["Env"]) == {"WINSLOW_WORKSPACE", "WINSLOW_INPUTS"}


def test_env_file_round_trips_every_character():
    every = "".join(chr(c) for c in range(1, 0x250)) + "\U0001f680\ufffd\u2029"
    env = {"ALL": every, "REVERSED": every[::-1]}
    assert parse_env_file(encode_env_file(env)) == env


def test_delimiters_avoid_what_the_file_holds():
    assert choose_delimiters("A=1\n") == ("[[winslow:none", "winslow:none]]")
    content = encode_env_file({"A": "[[winslow:none", "B": "winslow:none:1]]"})
    left, right = choose_delimiters(content)
    assert (left, right) == ("[[winslow:none:2", "winslow:none:2]]")
    assert left not in content and right not in content


def test_env_nomad_cannot_carry_is_rejected_with_the_variable_named():
    with pytest.raises(SubmitRejectedError, match="variable BAD: it contains a NUL"):
        render_jobspec(make_spec(env={"BAD": "a\x00b"}), make_config())
    with pytest.raises(SubmitRejectedError, match="variable name 'not-a-name'"):
        render_jobspec(make_spec(env={"not-a-name": "x"}), make_config())
    with pytest.raises(SubmitRejectedError, match="NOMAD_ALLOC_DIR"):
        render_jobspec(make_spec(env={"NOMAD_ALLOC_DIR": "/tmp"}), make_config())
    with pytest.raises(SubmitRejectedError, match="64 KiB"):
        render_jobspec(make_spec(env={"HUGE": "x" * 70_000}), make_config())


def test_engine_paths_resolve_in_containers_and_stay_for_stage_exec_on_hosts():
    env = {"OUT": "${WINSLOW_WORKSPACE}/out.csv", "WINSLOW_WORKSPACE": "ignored"}
    command = ("python3", "${WINSLOW_INPUTS}/clip.mp4", "plain")
    docker = render_jobspec(
        make_spec(image="a:1", env=env, command=command), make_config(allow_host_commands=False)
    )
    main = task(docker, "main")
    assert main["Config"]["args"] == ["/alloc/inputs/clip.mp4", "plain"]
    assert literal_env(main) == {"OUT": "/alloc/workspace/out.csv"}
    host = task(render_jobspec(make_spec(env=env, command=command), make_config()), "main")
    args = host["Config"]["args"]
    tail = args[args.index("--") + 1 :]
    assert tail[0] == "python3" and tail[2] == "plain"
    index = args.index(tail[1])
    assert tail[1] == f"${{WINSLOW_ARG_{index}}}"
    assert literal_env(host) == {
        "OUT": "${WINSLOW_WORKSPACE}/out.csv",
        f"WINSLOW_ARG_{index}": "${WINSLOW_INPUTS}/clip.mp4",
    }


def test_escaped_engine_paths_stay_literal_in_containers_and_for_stage_exec():
    # Node text from the engine: $${...} is the literal ${...} (pipeline/interpolate.py).
    env = {"LIT": "$${WINSLOW_WORKSPACE}/x", "OUT": "${WINSLOW_WORKSPACE}/o"}
    command = ("run", "$${WINSLOW_INPUTS}", "${WINSLOW_INPUTS}", "$$$${WINSLOW_WORKSPACE}")
    docker = task(
        render_jobspec(make_spec(image="a:1", env=env, command=command), make_config()), "main"
    )
    delivered = [docker["Config"]["command"], *docker["Config"]["args"]]
    literal = literal_env(docker)
    delivered = [
        literal.get(a[2:-1], a) if a.startswith("${WINSLOW_ARG_") else a for a in delivered
    ]
    assert delivered == ["run", "${WINSLOW_INPUTS}", "/alloc/inputs", "$${WINSLOW_WORKSPACE}"]
    assert {k: literal[k] for k in env} == {
        "LIT": "${WINSLOW_WORKSPACE}/x",
        "OUT": "/alloc/workspace/o",
    }
    # On a host, stage-exec resolves them on the node: the node text reaches it as it is.
    host = task(render_jobspec(make_spec(env=env, command=command), make_config()), "main")
    assert {k: literal_env(host)[k] for k in env} == env


@pytest.mark.parametrize("image", [False, True], ids=["host", "docker"])
def test_arguments_nomad_would_interpolate_arrive_literally(image):
    nasty = ["${HOME}", "%{ if x }y%{ endif }", "cost: $5", "{{ .x }}", 'q"uote\nnl', "$${E}"]
    spec = make_spec(command=("echo", *nasty), image="alpine:3" if image else None)
    main = task(render_jobspec(spec, make_config()), "main")
    config = main["Config"]
    argv = [config["command"], *config.get("args", [])] if image else config["args"]
    literal = literal_env(main) if any("${WINSLOW_ARG_" in a for a in argv) else {}
    # What the process gets: Nomad replaces each ${WINSLOW_ARG_i} by its value, once.
    delivered = [literal.get(a[2:-1], a) if a.startswith("${WINSLOW_ARG_") else a for a in argv]
    assert delivered[-len(nasty) - 1 :] == ["echo", *nasty]
    for arg in argv:
        if arg.startswith("${WINSLOW_ARG_"):
            continue
        if arg.startswith("${NOMAD_ALLOC_DIR}"):
            continue  # ours, meant for Nomad
        assert "${" not in arg and "%{" not in arg, arg


def test_deliver_args_numbers_by_position():
    rendered, literal = deliver_args(["a", "${b}", "c", "%{d}"])
    assert rendered == ["a", "${WINSLOW_ARG_1}", "c", "${WINSLOW_ARG_3}"]
    assert literal == {"WINSLOW_ARG_1": "${b}", "WINSLOW_ARG_3": "%{d}"}


def test_inputs_with_dollar_brace_reach_stage_in_literally():
    spec = make_spec(inputs=("videos/${odd}.mp4",))
    stage_in = task(render_jobspec(spec, make_config()), "stage-in")
    args = stage_in["Config"]["args"]
    ref = args[args.index("--input") + 1]
    assert literal_env(stage_in, "secrets/args.env") == {ref[2:-1]: "videos/${odd}.mp4"}


def test_an_image_reference_nomad_would_interpolate_is_rejected():
    with pytest.raises(SubmitRejectedError, match="not a valid image reference"):
        render_jobspec(make_spec(image="${IMAGE}"), make_config())


# ---------------------------------------------------------------------------------------
# Golden jobs of the traffic example


T0 = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
TRAFFIC_STAGES = ("detect", "review", "track", "analyze")


def traffic_specs() -> dict[str, tuple[RunSpec, int]]:
    pipeline = load_pipeline_file(ROOT / "examples" / "traffic" / "pipeline.yaml")
    project = Project(
        id="p0c0ffee",
        name="ulm-0603",
        pipeline_name=pipeline.name,
        pipeline=pipeline.model_dump(mode="json"),
        state=ProjectState.RUNNING,
        version=1,
        created_at=T0,
        updated_at=T0,
        variables={
            "INPUT_VIDEO": "videos/ulm-0603.mp4",
            "EXAMPLES_DIR": "/opt/winslow/examples/traffic",
        },
    )
    values = effective_variables(pipeline, project.variables)
    runs: list[Run] = []
    specs: dict[str, tuple[RunSpec, int]] = {}
    for number, stage in enumerate(TRAFFIC_STAGES, start=1):
        run = Run(
            id=number,
            project_id=project.id,
            stage=stage,
            attempt=1,
            state=StageRunState.PENDING,
            created_at=T0,
            variables=dict(values),
            gpus=pipeline.stage(stage).requirements.gpu.count,
        )
        specs[stage] = (
            build_spec(project, pipeline, run, runs),
            pipeline.stage(stage).retry.on_lost,
        )
        done = dataclasses.replace(
            run,
            state=StageRunState.SUCCEEDED,
            workspace_prefix=specs[stage][0].workspace_prefix,
            node="gpu-node-1",
            ended_at=T0,
        )
        runs.append(done)
        if stage == "review":
            # What the review gate's questions set, as a person answering with the defaults.
            values = {**values, "MIN_TRACK_FRAMES": "8", "TRACK_GATE": "30"}
    return specs


@pytest.mark.parametrize("stage", TRAFFIC_STAGES)
def test_traffic_stage_matches_golden_job(stage):
    spec, on_lost = traffic_specs()[stage]
    config = make_config(credentials_path="nomad/jobs")
    affinity = "gpu-node-1" if spec.workspace_sources else None
    job = render_jobspec(spec, config, lost_retries=on_lost, affinity_node=affinity)
    text = json.dumps(job, indent=2, ensure_ascii=False) + "\n"
    golden = GOLDEN / f"traffic-{stage}.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"{golden} is missing; run with UPDATE_GOLDEN=1 to write it"
    assert text == golden.read_text(encoding="utf-8")
    assert validate_jobspec(job) == []


def test_traffic_detect_asks_nomad_for_a_gpu_and_for_none_once_fallen_back():
    """The detect stage asks for one ``nvidia/gpu``; a run the engine let fall back to the
    CPU (no node has a GPU; its ``gpu.count`` is then 0) asks Nomad for no device at all,
    and its host stage still gets its GPUs isolated, which leaves it none."""
    spec, on_lost = traffic_specs()["detect"]
    config = make_config(credentials_path="nomad/jobs")
    devices = task(render_jobspec(spec, config, lost_retries=on_lost), "main")["Resources"]
    assert devices["Devices"] == [{"Name": "nvidia/gpu", "Count": 1, "Constraints": []}]
    fallen = dataclasses.replace(
        spec, resources=dataclasses.replace(spec.resources, gpu=GpuRequest(cpu_fallback=True))
    )
    job = render_jobspec(fallen, config, lost_retries=on_lost)
    main = task(job, "main")
    assert main["Resources"] == {"Cores": 1, "MemoryMB": 1024}
    assert "--isolate-gpus" in main["Config"]["args"]
    assert validate_jobspec(job) == []


def test_container_stage_matches_golden_job():
    """The detect stage of the traffic example run in an image, with docker tools: the
    stage in its container, and the ``stage-follow`` sidecar that logs its output live."""
    spec, on_lost = traffic_specs()["detect"]
    spec = dataclasses.replace(
        spec, image="registry.lab:5000/traffic-detect:2.1", command=("python3", "detect.py")
    )
    job = render_jobspec(spec, make_config(credentials_path="nomad/jobs"), lost_retries=on_lost)
    text = json.dumps(job, indent=2, ensure_ascii=False) + "\n"
    golden = GOLDEN / "traffic-detect-container.json"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"{golden} is missing; run with UPDATE_GOLDEN=1 to write it"
    assert text == golden.read_text(encoding="utf-8")
    assert validate_jobspec(job) == []
