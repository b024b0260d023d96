"""Names a stage wrote, or that reached the pool's bucket past Winslow, as the CLI shows
them: invisible and control characters escaped (``\\u202e``, ``\\x1b``) and brackets as
typed, so a listing cannot show one name for another; ``--json`` keeps the names as they
are, and a download still fetches the file by its real name.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from tests.fixtures.server import Server
from tests.fixtures.spoofed import (
    INVISIBLE,
    LS,
    SPOOFED_FILE,
    SPOOFED_FOLDER,
    invisible,
    pool_store,
)
from winslow.core.logformat import escape_name
from winslow.storage.keys import resource_key

# The shell writes the names byte by byte (UTF-8 in octal), as any program may.
PIPELINE = r"""
name: spoofing
stages:
  - name: write
    command:
      - sh
      - -c
      - >-
        echo payload > "$(printf 'evil\342\200\256gpj.sh')";
        mkdir "$(printf 'in\342\200\213box')"; echo inner > "$(printf 'in\342\200\213box/a.txt')";
        ln -s "$(printf 'to\033[31mred\342\200\250x')" latest
"""

SPOOFED_LINK = f"to\x1b[31mred{LS}x"


@pytest.fixture(scope="module")
def server(module_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Server:
    """The module's server, with project ``spoof`` whose stage wrote the names above."""
    file = tmp_path_factory.mktemp("pipeline") / "spoofing.yaml"
    file.write_text(PIPELINE)
    module_server.cli("pipeline", "apply", str(file))
    module_server.cli("project", "create", "spoof", "--pipeline", "spoofing", "--start")
    module_server.wait_for("spoof", {"succeeded"})
    return module_server


@pytest.mark.slow
def test_workspace_listing_shows_invisible_characters_of_stage_written_names_escaped(
    server: Server,
) -> None:
    top = server.cli("workspace", "ls", "spoof").stdout
    everything = server.cli("workspace", "ls", "spoof", "--recursive").stdout

    assert invisible(top) == [] and invisible(everything) == []
    assert "evil\\u202egpj.sh" in top
    assert "in\\u200bbox/" in top
    assert "latest -> to\\x1b[31mred\\u2028x" in top
    assert "in\\u200bbox/a.txt" in everything


@pytest.mark.slow
def test_workspace_json_keeps_the_names_as_the_stage_wrote_them(server: Server) -> None:
    listed = server.json("workspace", "ls", "spoof")["data"]

    names = {entry["path"]: entry.get("link") for entry in listed}
    assert names == {SPOOFED_FILE: None, SPOOFED_FOLDER: None, "latest": SPOOFED_LINK}


@pytest.mark.slow
def test_workspace_download_fetches_the_real_name_and_says_it_escaped(
    server: Server, tmp_path: Path
) -> None:
    said = server.cli("workspace", "download", "spoof", SPOOFED_FILE, str(tmp_path)).stdout

    assert (tmp_path / SPOOFED_FILE).read_text() == "payload\n"
    assert invisible(said) == []
    assert said.strip() == f"downloaded {tmp_path}/evil\\u202egpj.sh"


@pytest.mark.slow
def test_pool_listing_shows_invisible_characters_and_brackets_as_they_are(
    server: Server, tmp_path: Path
) -> None:
    store = pool_store(server)
    store.put_bytes(resource_key(f"spoof/{SPOOFED_FILE}"), b"payload\n")
    store.put_bytes(resource_key(f"spoof/{SPOOFED_FOLDER}/a.txt"), b"inner\n")
    # Brackets are allowed in a name a person uploads; the terminal's markup must not eat
    # them (`[red]` hid itself), nor stop the listing (`[/]` closed nothing).
    (tmp_path / "alert.txt").write_text("x\n")
    server.cli("resources", "upload", str(tmp_path / "alert.txt"), "spoof/[red]alert.txt")
    server.cli("resources", "upload", str(tmp_path / "alert.txt"), "spoof/half[/]open.txt")

    listed = server.cli("resources", "ls", "spoof", "--recursive").stdout
    as_json = server.json("resources", "ls", "spoof", "--recursive")["data"]

    assert invisible(listed) == []
    names = [line.split()[0] for line in listed.splitlines()[1:]]
    assert sorted(names) == [
        "spoof/[red]alert.txt",
        "spoof/evil\\u202egpj.sh",
        "spoof/half[/]open.txt",
        "spoof/in\\u200bbox/a.txt",
    ]
    assert {entry["path"] for entry in as_json if not entry["is_dir"]} == {
        "spoof/[red]alert.txt",
        f"spoof/{SPOOFED_FILE}",
        "spoof/half[/]open.txt",
        f"spoof/{SPOOFED_FOLDER}/a.txt",
    }


@pytest.mark.slow
def test_pool_download_fetches_the_real_name_and_says_it_escaped(
    server: Server, tmp_path: Path
) -> None:
    pool_store(server).put_bytes(resource_key(f"fetch/{SPOOFED_FILE}"), b"payload\n")

    said = server.cli("resources", "download", f"fetch/{SPOOFED_FILE}", str(tmp_path)).stdout

    assert (tmp_path / SPOOFED_FILE).read_text() == "payload\n"
    assert invisible(said) == []
    assert said.strip() == f"downloaded fetch/evil\\u202egpj.sh to {tmp_path}/evil\\u202egpj.sh"


def test_a_name_is_shown_with_every_invisible_character_escaped_and_the_rest_as_it_is() -> None:
    everything = "".join(map(chr, range(0x110000)))
    shown = escape_name(everything)

    assert not [c for c in shown if unicodedata.category(c) in INVISIBLE]
    assert escape_name("a\ufeffb\u00adc\U000e0041\x85\t\ud800") == (
        "a\\ufeffb\\u00adc\\U000e0041\\x85\\t\\ud800"
    )
    kept = "Straße 東京 🚗 [red] a\\u202e C:\\path \u00a0 x"
    assert escape_name(kept) == kept


GATED = PIPELINE.replace("name: spoofing", "name: spoofing-gate") + (
    '  - name: look\n    command: ["true"]\n    gate: true\n    ask:\n      review: ["*.sh"]\n'
)


@pytest.mark.slow
def test_a_gate_lists_the_stage_written_files_to_review_escaped(
    server: Server, tmp_path: Path
) -> None:
    file = tmp_path / "gated.yaml"
    file.write_text(GATED)
    server.cli("pipeline", "apply", str(file))
    server.cli("project", "create", "spoof-gate", "--pipeline", "spoofing-gate", "--start")
    server.wait_for("spoof-gate", {"awaiting_input"})

    shown = server.cli("project", "show", "spoof-gate").stdout

    review = next(line for line in shown.splitlines() if "review:" in line)
    assert invisible(review) == []
    assert "evil\\u202egpj.sh" in review
