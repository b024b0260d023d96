"""Where the job template lives and the Jinja environment that renders it as JSON.

The template ships inside the package (``winslow/jobspecs``) and is found through
``importlib.resources``, so an installed Winslow needs nothing from a checkout;
``NomadConfig.jobspecs_dir`` (``WINSLOW_NOMAD_JOBSPECS_DIR``) points elsewhere only to
try a changed template. Every value the template writes must pass ``| tojson`` (the
environment's ``finalize`` refuses any other output), so no quote, newline or backslash
in a value can break the document.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

if TYPE_CHECKING:
    from winslow.backends.nomad.config import NomadConfig

TEMPLATE_NAME = "stage.json.j2"
"""The job template, in the jobspecs folder."""


def packaged_jobspecs_dir() -> Path:
    """Return ``jobspecs/`` of the installed ``winslow`` package: the template and schema."""
    # The package is installed as files, never zipped, so this is a real folder.
    return Path(str(resources.files("winslow") / "jobspecs"))


def jobspecs_dir(config: NomadConfig) -> Path:
    """Return the folder of the job template: ``config.jobspecs_dir``, else the package's."""
    return Path(config.jobspecs_dir) if config.jobspecs_dir else packaged_jobspecs_dir()


@functools.lru_cache(maxsize=4)
def load_template(folder: Path) -> jinja2.Template:
    """Return ``stage.json.j2`` of ``folder``, in an environment that only writes JSON.

    Rendering raises ``TypeError`` when the template outputs a value without ``| tojson``
    or a macro writes invalid JSON; both are bugs in the template.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        finalize=_only_json,
        keep_trailing_newline=True,
    )
    env.filters["tojson"] = _tojson
    env.filters["fragment"] = _fragment
    return env.get_template(TEMPLATE_NAME)


class _JsonText(str):
    """Text that ``tojson`` produced, the only kind the template may output."""

    __slots__ = ()


def _tojson(value: object) -> _JsonText:
    return _JsonText(json.dumps(value, ensure_ascii=False, allow_nan=False))


def _fragment(text: str) -> _JsonText:
    """A macro's output, checked to be one JSON value and re-encoded."""
    try:
        return _tojson(json.loads(text))
    except json.JSONDecodeError as exc:
        raise TypeError(f"a macro of {TEMPLATE_NAME} wrote invalid JSON: {exc}") from exc


def _only_json(value: object) -> object:
    if isinstance(value, _JsonText):
        return value
    raise TypeError(f"the job template output {value!r} without `| tojson`; fix {TEMPLATE_NAME}")
