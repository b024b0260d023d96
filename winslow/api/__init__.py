"""The HTTP API (FastAPI) under ``/api/v1``: REST for every command, SSE for live views."""
