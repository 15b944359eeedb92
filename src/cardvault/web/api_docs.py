"""The API's interactive docs at ``/api/v1/docs``: Swagger UI served from the package.

FastAPI's own page loads Swagger UI from a public CDN with an inline start-up script, so it
needed an exemption from the Content-Security-Policy and fails where the service has no
way out to the internet. This page loads the vendored copy (``static/vendor/swagger-ui``,
replaced by ``scripts/update-swagger-ui``) and a start-up script of ours, and keeps the
strict policy every other page has.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

PAGE = """<!DOCTYPE html>
<html lang="en-GB">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cardvault API: interactive documentation</title>
<link rel="icon" href="/favicon.ico">
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">
</head>
<body>
<main id="swagger-ui" data-openapi-url="/api/v1/openapi.json"></main>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/ui/api-docs.js"></script>
</body>
</html>
"""


@router.get("/api/v1/docs")
def api_docs() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Cache-Control": "no-cache"})
