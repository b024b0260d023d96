"""Previews of workspace files through the API, on real files a real stage wrote.

A stage copies generated samples into its workspace (a PNG, CSVs, JSON, a video made with
``cv2.VideoWriter`` and its detections); the project then waits at a gate, as a person
reviewing it would find it. Storage is a real SeaweedFS; FFmpeg reads the video from it
through a presigned URL.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import sys
from pathlib import Path

import pytest

from tests.fixtures.winslow import Harness
from winslow import previews
from winslow.previews.images import BOX_COLOUR
from winslow.storage import keys

cv2 = pytest.importorskip("cv2")
np = pytest.importorskip("numpy")

pytestmark = pytest.mark.slow

URL = "/api/v1/projects/look/workspace/preview"
FPS = 10
FRAMES = 64
SQUARE = 30


def square_x(frame: int) -> int:
    """Where the white square of the sample video is in ``frame``: it moves 4 px a frame."""
    return 4 * frame


def make_video(path: Path) -> None:
    """A 320x240 video: grey road, a white square moving right, one place per frame."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (320, 240))
    assert writer.isOpened()
    for frame in range(FRAMES):
        image = np.full((240, 320, 3), 80, dtype=np.uint8)
        x = square_x(frame)
        image[100 : 100 + SQUARE, x : x + SQUARE] = 255
        writer.write(image)
    writer.release()


def detections_csv() -> str:
    """The traffic example's format: one box a row (frame, x, y, w, h, ...)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["frame", "x", "y", "w", "h", "cx", "cy", "area"])
    for frame in range(FRAMES):
        x = square_x(frame)
        writer.writerow([frame, x, 100, SQUARE, SQUARE, x + 15, 115, SQUARE * SQUARE])
    return out.getvalue()


def make_samples(folder: Path) -> None:
    folder.mkdir()
    (folder / "clips").mkdir()
    make_video(folder / "clips" / "road.mp4")
    (folder / "clips" / "detections.csv").write_text(detections_csv())
    image = np.zeros((600, 800, 3), dtype=np.uint8)
    image[:, :400] = (0, 0, 255)  # red left half (BGR)
    image[:, 400:] = (255, 0, 0)  # blue right half
    cv2.imwrite(str(folder / "photo.png"), image)
    (folder / "speeds.csv").write_text(
        "vehicle,speed_kmh,colour,note\n1,42.5,red,\n2,57.5,blue,fast\n3,,red,\n4,50,green,\n"
    )
    (folder / "cells.tsv").write_text("a\tb\n1\tx\n2\ty\n")
    big_row = "123456,abcdefghij,3.25\n"
    (folder / "big.csv").write_text("id,text,value\n" + big_row * (5 * 1024 * 1024 // len(big_row)))
    records = [
        {"vehicle": i, "speed": 40 + i, "lane": "left" if i % 2 else "right"} for i in range(30)
    ]
    (folder / "vehicles.json").write_text(json.dumps(records))
    (folder / "summary.json").write_text(
        json.dumps({"count": 3, "speeds": [42.5, 57.5, 50], "ok": True})
    )
    (folder / "events.jsonl").write_text(
        "\n".join(json.dumps({"t": i, "what": "pass"}) for i in range(5))
    )
    (folder / "broken.json").write_text('{"count": 3,')
    (folder / "huge.json").write_text(
        "[" + ",".join(["1234567"] * (previews.JSON_MAX_BYTES // 8 + 10)) + "]"
    )
    (folder / "weights.bin").write_bytes(b"\0" * 100)


@pytest.fixture
def look(winslow: Harness, tmp_path: Path) -> dict:
    """A project whose first stage wrote the samples and that now waits at a gate."""
    samples = tmp_path / "samples"
    make_samples(samples)
    winslow.apply_pipeline(
        f"""
name: samples
stages:
  - name: make
    command: ["sh", "-c", "cp -R '{samples}/.' ."]
  - name: review
    gate: true
    command: ["true"]
"""
    )
    winslow.create("look", "samples", start=True)
    winslow.engine.run_until_idle()
    project = winslow.show("look")
    assert project["state"] == "awaiting_input", project
    return project["runs"][0]


def decode(url: str):
    head, _, data = url.partition(",")
    assert head == "data:image/jpeg;base64"
    return cv2.imdecode(np.frombuffer(base64.b64decode(data), dtype=np.uint8), cv2.IMREAD_COLOR)


def near(pixel, colour, tolerance: int = 60) -> bool:
    return all(abs(int(a) - int(b)) <= tolerance for a, b in zip(pixel, colour, strict=True))


def test_a_csv_shows_its_first_rows_and_column_stats(winslow: Harness, look) -> None:
    answer = winslow.api.get(URL, params={"path": "speeds.csv", "rows": 2})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["kind"], body["run"], body["version"], body["source"]) == (
        "table",
        look["id"],
        1,
        "workspace",
    )
    table = body["table"]
    assert table["columns"] == ["vehicle", "speed_kmh", "colour", "note"]
    assert table["rows"] == [["1", "42.5", "red", ""], ["2", "57.5", "blue", "fast"]]
    assert (table["rows_read"], table["truncated"]) == (4, False)
    stats = {s["name"]: s for s in table["stats"]}
    speed = stats["speed_kmh"]
    assert (speed["numeric"], speed["count"], speed["empty"]) == (True, 3, 1)
    assert (speed["min"], speed["max"], speed["mean"]) == (42.5, 57.5, 50.0)
    assert (stats["colour"]["numeric"], stats["colour"]["distinct"]) == (False, 3)
    assert (stats["note"]["count"], stats["note"]["empty"]) == (1, 3)
    tsv = winslow.api.get(URL, params={"path": "cells.tsv"}).json()["table"]
    assert (tsv["delimiter"], tsv["columns"], tsv["rows"]) == (
        "\t",
        ["a", "b"],
        [["1", "x"], ["2", "y"]],
    )


def test_a_big_csv_is_read_only_up_to_the_cap(winslow: Harness, look) -> None:
    table = winslow.api.get(URL, params={"path": "big.csv"}).json()["table"]
    assert table["bytes_read"] == previews.TABLE_MAX_BYTES
    assert table["truncated"] is True
    # Only whole lines within the cap count: the header, then full rows.
    row = len("123456,abcdefghij,3.25\n")
    assert table["rows_read"] == (previews.TABLE_MAX_BYTES - len("id,text,value\n")) // row
    assert len(table["rows"]) == 50
    value = next(s for s in table["stats"] if s["name"] == "value")
    assert (value["min"], value["max"], value["count"]) == (3.25, 3.25, table["rows_read"])


def test_json_shows_bounded_and_summarised(winslow: Harness, look) -> None:
    body = winslow.api.get(URL, params={"path": "vehicles.json", "rows": 5}).json()
    document = body["document"]
    assert (body["kind"], document["type"], document["length"]) == ("json", "array", 30)
    shown = json.loads(document["text"])
    assert shown[:5] == [
        {"vehicle": i, "speed": 40 + i, "lane": "left" if i % 2 else "right"} for i in range(5)
    ]
    assert shown[5] == "… 25 more items"
    keys_seen = {k["name"]: (k["types"], k["count"]) for k in document["keys"]}
    assert keys_seen == {
        "vehicle": (["number"], 30),
        "speed": (["number"], 30),
        "lane": (["string"], 30),
    }
    speed = next(s for s in document["table"]["stats"] if s["name"] == "speed")
    assert (speed["min"], speed["max"]) == (40, 69)

    summary = winslow.api.get(URL, params={"path": "summary.json"}).json()["document"]
    assert (summary["type"], summary["length"], summary["table"]) == ("object", 3, None)
    assert {k["name"]: k["types"] for k in summary["keys"]} == {
        "count": ["number"],
        "speeds": ["array"],
        "ok": ["boolean"],
    }
    lines = winslow.api.get(URL, params={"path": "events.jsonl"}).json()["document"]
    assert (lines["format"], lines["items_read"]) == ("jsonl", 5)
    assert lines["table"]["rows"][4] == ["4", "pass"]


def test_an_image_gets_a_bounded_thumbnail(winslow: Harness, look) -> None:
    image = winslow.api.get(URL, params={"path": "photo.png"}).json()["image"]
    assert (image["width"], image["height"]) == (320, 240)
    assert (image["original_width"], image["original_height"]) == (800, 600)
    pixels = decode(image["url"])
    assert pixels.shape == (240, 320, 3)
    assert near(pixels[120, 60], (0, 0, 255)) and near(pixels[120, 260], (255, 0, 0))
    small = winslow.api.get(URL, params={"path": "photo.png", "size": 100}).json()["image"]
    assert (small["width"], small["height"]) == (100, 75)


def test_video_frames_at_chosen_times_carry_their_boxes(winslow: Harness, look) -> None:
    answer = winslow.api.get(URL, params={"path": "clips/road.mp4", "times": "1, 2.5"})
    assert answer.status_code == 200, answer.text
    video = answer.json()["video"]
    assert (video["fps"], video["frame_count"], video["width"], video["height"]) == (
        FPS,
        FRAMES,
        320,
        240,
    )
    assert video["detections"] == "clips/detections.csv"
    assert [(f["index"], f["time"], f["boxes"]) for f in video["frames"]] == [
        (10, 1.0, 1),
        (25, 2.5, 1),
    ]
    for frame in video["frames"]:
        pixels = decode(frame["url"])
        assert pixels.shape == (240, 320, 3) == (frame["height"], frame["width"], 3)
        x = square_x(frame["index"])
        # The frame is the one asked for: its square is where that frame has it...
        assert pixels[115, x + 15].min() > 200
        # ...and the box of that frame is drawn on its edge, in the box colour.
        assert near(pixels[100, x + 15], BOX_COLOUR), pixels[100, x + 15]
        assert near(pixels[115, x], BOX_COLOUR), pixels[115, x]
    evenly = winslow.api.get(URL, params={"path": "clips/road.mp4", "frames": 4}).json()["video"]
    assert [f["index"] for f in evenly["frames"]] == [8, 24, 40, 56]
    bare = winslow.api.get(
        URL, params={"path": "clips/road.mp4", "times": "1", "detections": "none"}
    ).json()["video"]
    assert (bare["detections"], bare["frames"][0]["boxes"]) == (None, 0)
    assert "without boxes" in bare["note"]
    assert not near(decode(bare["frames"][0]["url"])[100, square_x(10) + 15], BOX_COLOUR)
    small = winslow.api.get(
        URL, params={"path": "clips/road.mp4", "times": "0", "size": 160}
    ).json()["video"]
    assert (small["frames"][0]["width"], small["frames"][0]["height"]) == (160, 120)


def test_a_pool_video_takes_its_boxes_from_the_workspace(
    winslow: Harness, look, tmp_path: Path
) -> None:
    make_video(tmp_path / "pool.mp4")
    winslow.context.objects.upload_file(tmp_path / "pool.mp4", keys.resource_key("videos/road.mp4"))
    answer = winslow.api.get(
        URL,
        params={
            "path": "videos/road.mp4",
            "source": "pool",
            "times": "3",
            "detections": "clips/detections.csv",
        },
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["source"], body["size"]) == ("pool", (tmp_path / "pool.mp4").stat().st_size)
    frame = body["video"]["frames"][0]
    assert (frame["index"], frame["boxes"]) == (30, 1)
    assert near(decode(frame["url"])[100, square_x(30) + 15], BOX_COLOUR)
    # Without a detections file at the top of the workspace, the frames come bare.
    bare = winslow.api.get(
        URL, params={"path": "videos/road.mp4", "source": "pool", "times": "3"}
    ).json()
    assert bare["video"]["detections"] is None


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"path": "weights.bin"}, 422, "has no preview"),
        ({"path": "nope.csv"}, 404, "No file 'nope.csv'"),
        ({"path": "speeds.csv", "kind": "audio"}, 422, "kind"),
        ({"path": "broken.json"}, 422, "not JSON"),
        ({"path": "huge.json"}, 413, "Download it"),
        ({"path": "clips/road.mp4", "times": "soon"}, 422, "times=0,12.5,60"),
        (
            {"path": "clips/road.mp4", "detections": "gone.csv"},
            404,
            "No detections file 'gone.csv'",
        ),
        ({"path": "speeds.csv", "kind": "video"}, 422, "cannot open this file as a video"),
        ({"path": "speeds.csv", "source": "pool"}, 422, "Only videos"),
        ({"path": "videos/none.mp4", "source": "pool"}, 404, "resource pool"),
        ({"path": "../etc/passwd"}, 422, ".."),
    ],
)
def test_what_cannot_be_previewed_says_why(winslow: Harness, look, params, status, words) -> None:
    answer = winslow.api.get(URL, params=params)
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]


def test_without_opencv_videos_answer_what_to_install(winslow: Harness, look, monkeypatch) -> None:
    # A server without OpenCV: importing cv2 fails there, as here once it is hidden.
    monkeypatch.setitem(sys.modules, "cv2", None)
    answer = winslow.api.get(URL, params={"path": "clips/road.mp4"})
    assert answer.status_code == 501
    assert "pip install opencv-python-headless numpy" in answer.json()["detail"]
    assert answer.json()["code"] == "http_501"
    # Tables need no OpenCV.
    assert winslow.api.get(URL, params={"path": "speeds.csv"}).status_code == 200


# -- the pure parts, without a server ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("boxes.csv", "frame,x,y,w,h,label\n3,10,20,30,40,car\n4,1,1,1,1,\n"),
        ("boxes.csv", "Frame,X1,Y1,X2,Y2,Class\n3,10,20,40,60,car\n"),
        (
            "boxes.json",
            json.dumps([{"frame": 3, "x": 10, "y": 20, "w": 30, "h": 40, "label": "car"}]),
        ),
        (
            "boxes.json",
            json.dumps({"3": [{"x1": 10, "y1": 20, "x2": 40, "y2": 60, "class": "car"}]}),
        ),
        ("boxes.json", json.dumps({"frames": {"3": [[10, 20, 30, 40]], "4": [[1, 1, 1, 1]]}})),
        (
            "boxes.jsonl",
            json.dumps({"frame": 3, "x": 10, "y": 20, "w": 30, "h": 40, "track": "car"}) + "\n",
        ),
    ],
)
def test_every_detections_format_gives_the_same_box(name: str, text: str) -> None:
    from winslow.previews.video import read_detections

    found = read_detections(text.encode(), name, {3})
    assert list(found) == [3]  # frame 4 was not asked for
    (box,) = found[3]
    assert (box.x, box.y, box.w, box.h) == (10, 20, 30, 40)
    assert box.label in ("car", "")


def test_a_detections_csv_without_frames_says_what_it_needs() -> None:
    from winslow.previews import PreviewError
    from winslow.previews.video import read_detections

    with pytest.raises(PreviewError, match="no 'frame' column"):
        read_detections(b"x,y,w,h\n1,2,3,4\n", "d.csv", {0})


def test_frames_are_picked_evenly_or_at_the_times_asked() -> None:
    from winslow.previews import PreviewError
    from winslow.previews.video import VideoInfo, pick_frames

    info = VideoInfo(fps=25, frame_count=1000, width=3840, height=2160)
    assert pick_frames(info, [], 4) == [125, 375, 625, 875]
    assert pick_frames(info, [0, 1, 1.01, 999], 4) == [0, 25, 999]  # 1.01 s is frame 25 too
    with pytest.raises(PreviewError, match="0 or more"):
        pick_frames(info, [-1], 4)
    with pytest.raises(PreviewError, match="at most 12"):
        pick_frames(info, [float(t) for t in range(13)], 4)
