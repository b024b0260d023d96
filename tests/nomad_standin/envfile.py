"""Parse a rendered ``env = true`` template the way Nomad does: a port of go-envparse.

Nomad loads such a template with ``envparse.Parse`` from hashicorp/go-envparse
(``client/allocrunner/taskrunner/template/template.go`` ``loadTemplateEnv``), then adds
the pairs to the task's environment without interpolating them. This module follows
that parser byte for byte (``envparse.go`` at its current revision), quirks included,
so a stand-in task sees exactly the values a real client would:

- each line is trimmed; blank lines and lines starting with ``#`` are skipped;
- ``KEY=value``: the key may carry an ``export `` prefix, must start with
  ``[A-Za-z_]`` and continue with ``[A-Za-z0-9_./]``;
- unquoted text is literal (a backslash stays a backslash) and ends at ``#``, which
  starts a comment and drops the whitespace before it;
- ``'single quotes'`` are literal; ``"double quotes"`` take JSON escapes only
  (``\\" \\\\ \\/ \\b \\f \\r \\n \\t \\uXXXX`` with surrogate pairs) and refuse any other;
- quoted and unquoted parts concatenate (``a"b"'c'`` is ``abc``);
- any byte below 0x20 inside a value (a literal tab too) is an error, as is an
  unmatched quote; a repeated key keeps the last value.
"""

from __future__ import annotations

__all__ = ["EnvParseError", "parse_env_file"]

# Go's unicode.IsSpace, which bytes.TrimSpace uses; str.strip would also eat \x1c-\x1f.
_GO_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_EXPORT = b"export "


class EnvParseError(ValueError):
    """A line go-envparse refuses; ``str()`` is go-envparse's own message."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"error on line {line}: {reason}")
        self.line = line
        self.reason = reason


def parse_env_file(data: bytes | str) -> dict[str, str]:
    """Return the variables of an env file; raise ``EnvParseError`` like go-envparse.

    ``data`` is the rendered file; str is encoded as UTF-8 first.
    """
    raw = data.encode() if isinstance(data, str) else data
    env: dict[str, str] = {}
    for number, line in enumerate(_scan_lines(raw), start=1):
        try:
            pair = _parse_line(line)
        except _LineError as exc:
            raise EnvParseError(number, str(exc)) from None
        if pair is not None:
            key, value = pair
            env[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "replace")
    return env


class _LineError(Exception):
    pass


def _scan_lines(raw: bytes) -> list[bytes]:
    """bufio.ScanLines: split on \\n, drop one trailing \\r, keep a last unterminated line."""
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _trim_space(value: bytes) -> bytes:
    text = value.decode("utf-8", "surrogateescape")
    start, end = 0, len(text)
    while start < end and text[start] in _GO_SPACE:
        start += 1
    while end > start and text[end - 1] in _GO_SPACE:
        end -= 1
    return text[start:end].encode("utf-8", "surrogateescape")


def _go_quote_byte(value: int) -> str:
    # Go's %q of a byte prints a character literal: 'x', or an escape for the unprintable.
    char = chr(value)
    return f"'{char}'" if char.isprintable() else f"'\\x{value:02x}'"


def _parse_line(line: bytes) -> tuple[bytes, bytes] | None:
    line = _trim_space(line)
    if not line or line.startswith(b"#"):
        return None
    if b"=" not in line:
        raise _LineError("missing =")
    raw_key, raw_value = line.split(b"=", 1)
    key, value = _trim_space(raw_key), _trim_space(raw_value)
    # Only strip "export " when a key name follows it (go-envparse's own guard).
    if len(key) > len(_EXPORT) and key.startswith(_EXPORT):
        key = key[len(_EXPORT) :]
    if not key:
        raise _LineError("empty key")
    first = key[0]
    if not (0x41 <= first <= 0x5A or 0x61 <= first <= 0x7A or first == 0x5F):
        raise _LineError(f"key must start with [A-Za-z_] but found {_go_quote_byte(first)}")
    for char in key[1:]:
        if not (chr(char).isascii() and (chr(char).isalnum() or chr(char) in "_./")):
            raise _LineError(
                f"key characters must be [A-Za-z0-9/_.] but found {_go_quote_byte(char)}"
            )
    if not value:
        return key, value
    return key, _parse_value(value)


def _parse_value(value: bytes) -> bytes:
    out = bytearray()
    last_significant = 0  # length of `out` up to its last non-blank unquoted byte
    mode = "normal"
    i = 0
    while i < len(value):
        byte = value[i]
        if byte < 32:
            raise _LineError(f"0x{byte:02x} is an invalid value character")
        if byte > 127:
            # Part of a multibyte UTF-8 character: passed through, never special.
            if mode == "escape":
                raise _LineError("multibyte characters disallowed in escape sequences")
            last_significant = len(out)
            out.append(byte)
            i += 1
            continue
        char = chr(byte)
        if mode == "normal":
            if char == '"':
                mode = "double"
            elif char == "'":
                mode = "single"
            elif char == "#":
                return bytes(out[:last_significant])
            elif char in " \t":
                out.append(byte)
            else:
                out.append(byte)
                last_significant = len(out)
        elif mode == "double":
            if char == '"':
                mode = "normal"
            elif char == "\\":
                mode = "escape"
            else:
                out.append(byte)
                last_significant = len(out)
        elif mode == "escape":
            simple = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "r": "\r"}
            simple.update({"n": "\n", "t": "\t"})
            if char in simple:
                out += simple[char].encode()
            elif char == "u":
                rune = _hex_rune(value[i + 1 :])
                i += 4
                if 0xD800 <= rune < 0xE000:
                    if len(value) < i + 6 or value[i + 1 : i + 3] != b"\\u":
                        raise _LineError("incomplete Unicode surrogate pair")
                    low = _hex_rune(value[i + 3 :])
                    i += 6
                    if 0xD800 <= rune < 0xDC00 and 0xDC00 <= low < 0xE000:
                        rune = 0x10000 + ((rune - 0xD800) << 10) + (low - 0xDC00)
                    else:
                        rune = 0xFFFD  # utf16.DecodeRune's answer to a broken pair
                out += chr(rune).encode("utf-8")
            else:
                raise _LineError(f'invalid escape sequence: "{char}"')
            last_significant = len(out)
            mode = "double"
        else:  # single quotes
            if char == "'":
                mode = "normal"
            else:
                out.append(byte)
                last_significant = len(out)
        i += 1
    if mode == "double":
        raise _LineError('unmatched "')
    if mode == "single":
        raise _LineError("unmatched '")
    if mode == "escape":
        raise _LineError("incomplete escape sequence")
    return bytes(out)


def _hex_rune(buf: bytes) -> int:
    if len(buf) < 4:
        raise _LineError("incomplete hex sequence")
    rune = 0
    for byte in buf[:4]:
        char = chr(byte)
        if char not in "0123456789abcdefABCDEF":
            raise _LineError(f'invalid hex character: "{char}"')
        rune = rune * 16 + int(char, 16)
    return rune
