"""The line format of a run's log, which the node writes and everyone else reads.

A run's log is UTF-8 text, one record per line::

    2026-11-25T08:12:03.123Z stdout | frame 12 of 900
    2026-11-25T08:12:03.130Z winslow | starting: python3 detect.py --note 'a\\nb'

``stdout`` and ``stderr`` (``STAGE_STREAMS``) are the stage's own output, cut into lines at
``\\n``, ``\\r\\n`` or a bare ``\\r`` and otherwise written as the stage printed it.
Every other stream is written by Winslow: ``winslow`` for its own events (runner,
stage-in, stage-exec, stage-out, the container follower), ``progress`` for what the
stage left in its progress file.

One record is always one line. The text of a line Winslow writes has its control
characters escaped (``escape_text``), so that whatever a variable, an argument or a file
name holds, it stays inside that one line and cannot pass for a line of the stage.
Results, log-parser series and progress are read from the stage's streams only
(``core/outputs.py``, ``core/progress.py``), never from ``winslow`` lines.

Names a stage wrote (files, folders, link targets) are shown to people with the same
escapes (``escape_name``), and with every other invisible character escaped too.

Pure: text in, text out.
"""

from __future__ import annotations

import re
import unicodedata

STAGE_STREAMS = frozenset({"stdout", "stderr"})
"""The streams that carry what the stage itself printed; every other stream is Winslow's."""

EVENT_STREAM = "winslow"
"""The stream of Winslow's own events."""

RECORD = re.compile(r"^(?P<stamp>\S+) (?P<stream>\S+) \| (?P<text>.*)$")
"""One log record, without its line end: its stamp, its stream and its text."""

_BIDI_AND_SEPARATORS = (
    0x061C,  # ARABIC LETTER MARK
    0x200E,  # LEFT-TO-RIGHT MARK
    0x200F,  # RIGHT-TO-LEFT MARK
    *range(0x202A, 0x202F),  # LRE, RLE, PDF, LRO, RLO
    *range(0x2066, 0x206A),  # LRI, RLI, FSI, PDI
    0x2028,  # LINE SEPARATOR
    0x2029,  # PARAGRAPH SEPARATOR
)

_ESCAPES: dict[int, str] = {
    **{code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F, *range(0x80, 0xA0))},
    0x09: "\\t",
    0x0A: "\\n",
    0x0D: "\\r",
    **{code: f"\\u{code:04x}" for code in _BIDI_AND_SEPARATORS},
}


def escape_text(text: str) -> str:
    """Return ``text`` with its control characters written as escapes, for a log line.

    Tab, line feed and carriage return become ``\\t``, ``\\n`` and ``\\r``; every other C0
    and C1 control character and DEL becomes ``\\xHH`` (``\\x1b`` for ESC, ``\\x85`` for
    NEL); the bidirectional controls (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to
    U+2069) and the line and paragraph separators U+2028 and U+2029 become ``\\uHHHH``.
    Everything else, backslashes included, stays as it is: the result is for people to
    read, not to be decoded again.

    >>> escape_text("a\\nb\\x1b[31m\\u202egnp.exe")
    'a\\\\nb\\\\x1b[31m\\\\u202egnp.exe'
    """
    return text.translate(_ESCAPES)


INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
"""The Unicode categories a name is never shown with: control and formatting characters
(bidi controls, zero-width ones, U+FEFF), surrogates, line and paragraph separators. The
same that ``storage/keys.py`` refuses in a name a person creates."""


def escape_name(name: str) -> str:
    """Return ``name`` as it may be shown in a listing: ``escape_text`` of it, and every
    other character of ``INVISIBLE_CATEGORIES`` written ``\\uHHHH`` (``\\UHHHHHHHH`` beyond
    the BMP).

    A stage may write any name into its workspace: ``evil\\u202egpj.sh`` shows raw as
    ``evilhs.jpg``, and a zero-width space makes two different names look alike. Escaped,
    a listing shows what the name holds. Only for showing: links and downloads go on
    using the name itself. Console listings (``ui/static/js/api.js`` ``escapeName``)
    follow the same rules.

    >>> escape_name("evil\\u202egpj.sh in\\u200bbox\\x1b[31m")
    'evil\\\\u202egpj.sh in\\\\u200bbox\\\\x1b[31m'
    """
    if name.isprintable():
        # Nothing invisible (printable excludes every category above): the common case.
        return name
    return "".join(_escape_char(char) for char in name)


def _escape_char(char: str) -> str:
    code = ord(char)
    if code in _ESCAPES:
        return _ESCAPES[code]
    if unicodedata.category(char) not in INVISIBLE_CATEGORIES:
        return char
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"
