"""The two pages of Nomad's web UI that Winslow's console links to: a job and an allocation.

Real Nomad serves its single-page UI at ``/ui/`` for every path below it; the page then
reads ``/v1/...`` and shows the job (``/ui/jobs/<id>@<namespace>``) or the allocation
(``/ui/allocations/<id>``), or its "Not Found" page. The stand-in has no UI: it answers
those two paths with a small HTML page naming what the real UI would show, and a 404 where
the real one would say "Not Found", so a browser test can follow a console link and see
where it lands.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

if TYPE_CHECKING:
    from .standin import NomadStandin

__all__ = ["add_ui_routes"]


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    text = (
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}"
        f" - Nomad</title></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(text, status_code=status)


def add_ui_routes(app: FastAPI, standin: NomadStandin) -> None:
    state = standin.state

    @app.get("/ui/jobs/{name}")
    def ui_job(name: str) -> HTMLResponse:
        # The UI names a job "<id>@<namespace>"; a bare id is one of "default".
        job_id, at, namespace = name.rpartition("@")
        if not at:
            job_id, namespace = name, "default"
        with state.lock:
            job = state.job(namespace, job_id)
            status = job.get("Status", "") if job else ""
        if job is None:
            return _page(
                "Not Found", f"<p>No job {escape(job_id)} in {escape(namespace)}.</p>", 404
            )
        return _page(
            f"Job {job_id}",
            f"<dl><dt>Namespace</dt><dd data-namespace>{escape(namespace)}</dd>"
            f"<dt>Status</dt><dd data-status>{escape(str(status))}</dd></dl>",
        )

    @app.get("/ui/allocations/{alloc_id}")
    def ui_allocation(alloc_id: str) -> HTMLResponse:
        with state.lock:
            alloc = state.allocs.get(alloc_id)
            job_id = alloc.get("JobID", "") if alloc else ""
        if alloc is None:
            return _page("Not Found", f"<p>No allocation {escape(alloc_id)}.</p>", 404)
        return _page(
            f"Allocation {alloc_id}", f"<p>Of job <span data-job>{escape(str(job_id))}</span>.</p>"
        )
