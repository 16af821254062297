"""The web UI: server-rendered pages (Jinja2) with htmx and vendored cytoscape for graphs.

Pages live under ``/ui``; everything they need ships in the package (``templates/``,
``static/``), so there is no Node build at install. A browser authenticates once by pasting a
token into ``/ui/login``: the token is kept in an HttpOnly, SameSite=Strict cookie scoped to
``/ui`` and checked on every request like a bearer token (read scope; the UI only reads). With
auth off (loopback only) no login is needed.

Pages: bundle search with tag filters (results swapped in by htmx, the query in the URL),
bundle detail (files with sizes, hashes and download links, tags, params, data document,
direct lineage), and the interactive lineage graph (direction, depth, node cap in the URL;
click a node to open it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from assay.auth import tokens
from assay.bundles import operations
from assay.bundles.file_access import check_bundle_path, verified_file
from assay.bundles.lineage_graph import MAX_DEPTH, MAX_NODES, graph_dict, lineage_graph
from assay.bundles.pages import page_bundles
from assay.bundles.workspace import Workspace
from assay.core.errors import AssayError, AuthenticationRequired
from assay.server.api_bundles import BlobResponse
from assay.server.api_common import bundle_by_uuid, iso, parse_tags, workspace_of
from assay.server.problems import status_for

HERE = Path(__file__).parent
COOKIE = "assay_ui_token"
PREVIEW_CHARS = 20_000
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(prefix="/ui", include_in_schema=False)
Space = Annotated[Workspace, Depends(workspace_of)]


def mount_static(app: Any) -> None:
    app.mount("/ui/static", StaticFiles(directory=str(HERE / "static")), name="ui-static")


class LoginNeeded(Exception):
    """Raised by the UI's auth dependency: the handler answers with a redirect to login."""


async def ui_user(request: Request) -> str:
    state = request.app.state
    if not state.auth:
        return str(state.local_user)
    token = request.cookies.get(COOKIE)
    if not token:
        raise LoginNeeded()
    try:
        record = await run_in_threadpool(
            tokens.authenticate, token, "read", workspace=state.workspace
        )
    except AuthenticationRequired:
        raise LoginNeeded() from None
    return record.owner


User = Annotated[str, Depends(ui_user)]


def install(app: Any) -> None:
    """Static files, the bundle pages and the login redirect. The app factory includes the
    other page modules' routers (they import this module's helpers, so this one cannot import
    them)."""
    mount_static(app)
    app.include_router(router)

    @app.exception_handler(LoginNeeded)
    async def _login(request: Request, exc: LoginNeeded) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/login?{urlencode({'next': target})}", status_code=303)


def render(request: Request, template: str, user: str | None, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {"user": user, "iso": iso, **context})


def error_page(request: Request, user: str, error: AssayError, status: int) -> HTMLResponse:
    response = render(request, "error.html", user, error=error)
    response.status_code = status
    return response


# -- login ----------------------------------------------------------------------------------
@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/ui/") -> HTMLResponse:
    return render(request, "login.html", None, next=_safe_next(next), error=None)


def _safe_next(target: str) -> str:
    # Only paths inside the UI: never an absolute URL (open redirect).
    return target if target.startswith("/ui/") and not target.startswith("//") else "/ui/"


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    target = _safe_next((form.get("next") or ["/ui/"])[0])
    try:
        await run_in_threadpool(
            tokens.authenticate, token, "read", workspace=request.app.state.workspace
        )
    except AssayError as exc:
        refused = render(request, "login.html", None, next=target, error=exc.message)
        refused.status_code = 401
        return refused
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        token,
        httponly=True,
        samesite="strict",
        path="/ui",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/logout")
def logout() -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


# -- search ---------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def search(
    request: Request,
    user: User,
    workspace: Space,
    context: str | None = None,
    name: str | None = None,
    tag: Annotated[list[str] | None, Query()] = None,
    cursor: str | None = None,
) -> HTMLResponse:
    contexts = operations.list_contexts(workspace)
    chosen = context or (contexts[0].name if contexts else None)
    tag_text = [t for t in (tag or []) if t.strip()]
    page, error = None, None
    if chosen is not None:
        try:
            page = page_bundles(
                workspace,
                chosen,
                name=name or None,
                tags=parse_tags(tag_text),
                limit=50,
                cursor=cursor or None,
            )
        except AssayError as exc:
            error = exc.message
    next_url = None
    if page is not None and page.next_cursor:
        query = [("context", chosen), ("name", name or "")] + [("tag", t) for t in tag_text]
        next_url = "/ui/?" + urlencode([*query, ("cursor", page.next_cursor)])
    return render(
        request,
        "search.html",
        user,
        contexts=contexts,
        context=chosen,
        name=name or "",
        tags=tag_text,
        page=page,
        error=error,
        next_url=next_url,
    )


# -- one bundle -----------------------------------------------------------------------------
@router.get("/bundles/{uuid}", response_class=HTMLResponse)
def bundle_page(request: Request, uuid: str, user: User, workspace: Space) -> HTMLResponse:
    try:
        record = bundle_by_uuid(workspace, uuid)
        files = operations.files_of(workspace, record)
        graph = lineage_graph(workspace, f"bundle:{uuid}", direction="both", depth=1, max_nodes=200)
    except AssayError as exc:
        return error_page(request, user, exc, 404)
    preview = json.dumps(record.data, indent=2, sort_keys=True, default=str)
    upstream = [n for n in graph.nodes if n.depth < 0]
    downstream = [n for n in graph.nodes if n.depth > 0]
    return render(
        request,
        "bundle.html",
        user,
        record=record,
        files=files,
        preview=preview[:PREVIEW_CHARS],
        preview_cut=len(preview) > PREVIEW_CHARS,
        upstream=upstream,
        downstream=downstream,
    )


@router.get("/files/{uuid}/{path:path}")
def download(uuid: str, path: str, user: User, workspace: Space) -> Response:
    try:
        check_bundle_path(path)  # before any lookup: a probe learns nothing about ids
        record = bundle_by_uuid(workspace, uuid)
        entry, blob = verified_file(workspace, record, path)
    except AssayError as exc:  # a corrupted blob too: refused, never served
        return JSONResponse(
            {"code": exc.code, "detail": exc.message}, status_code=status_for(exc, "/api/")
        )
    return BlobResponse(blob, media_type="application/octet-stream", filename=Path(entry.path).name)


# -- lineage graph --------------------------------------------------------------------------
@router.get("/lineage", response_class=HTMLResponse)
def lineage_page(
    request: Request,
    user: User,
    node: str,
    direction: str = "both",
    depth: int = 3,
    max_nodes: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "lineage.html",
        user,
        node=node,
        direction=direction,
        depth=depth,
        max_nodes=max_nodes,
        max_depth=MAX_DEPTH,
        max_nodes_limit=MAX_NODES,
    )


@router.get("/lineage.json")
def lineage_json(
    user: User,
    workspace: Space,
    node: str,
    direction: str = "both",
    depth: int = 3,
    max_nodes: int = 200,
) -> JSONResponse:
    try:
        graph = lineage_graph(
            workspace, node, direction=direction, depth=depth, max_nodes=max_nodes
        )
    except AssayError as exc:
        return JSONResponse(
            {"code": exc.code, "detail": exc.message}, status_code=status_for(exc, "/api/")
        )
    return JSONResponse(graph_dict(graph))
