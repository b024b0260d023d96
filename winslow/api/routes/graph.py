"""The graph of a pipeline, or of a project coloured by its runs, for the console to draw.

The model is computed in ``core/graph.py``; these routes only find the definition and
the runs. A project's graph is of the definition the project follows, which may differ
from the pipeline file's current one.
"""

from __future__ import annotations

from fastapi import APIRouter

from winslow.api.access import PipelineReader, ProjectReader
from winslow.api.deps import ContextDep, CurrentUser
from winslow.api.routes import API_V1
from winslow.core.graph import Graph, pipeline_graph, project_graph
from winslow.errors import NotFoundError
from winslow.pipeline.model import Pipeline

router = APIRouter(prefix=API_V1, tags=["graph"])


@router.get("/pipelines/{name}/graph", response_model=Graph)
def show_pipeline_graph(
    _access: PipelineReader, name: str, context: ContextDep, _user: CurrentUser
) -> Graph:
    """The stages of pipeline ``name`` and the ``needs`` between them."""
    good, broken = context.pipelines.load_all()
    if name not in good:
        raise NotFoundError(
            f"No loadable pipeline '{name}'; `winslow pipeline list` shows them"
            + (" and the files that fail to load." if broken else ".")
        )
    return pipeline_graph(good[name])


@router.get("/projects/{ref}/graph", response_model=Graph)
def show_project_graph(
    _access: ProjectReader, ref: str, context: ContextDep, _user: CurrentUser
) -> Graph:
    """The project's stages coloured by their current runs, its skipped routes and the
    gate it waits at."""
    project = context.store.get_project(ref)
    runs = context.store.runs(project.id)
    return project_graph(Pipeline.model_validate(project.pipeline), runs, project)
