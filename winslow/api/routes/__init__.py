"""The API's and the console's routes, one module per area.

Each API router carries ``API_V1`` in its own prefix, so that its routes are built once per
process and a new app takes them as they are (``api/app.py``).
"""

API_V1 = "/api/v1"
