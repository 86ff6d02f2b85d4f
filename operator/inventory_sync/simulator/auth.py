"""The HPE SSO token endpoint (OAuth2 client credentials) and bearer-token checks on API calls."""

from __future__ import annotations

import base64
import binascii
import math
from urllib.parse import unquote_plus

from aiohttp import web

from inventory_sync.simulator.responses import ApiError, json_response
from inventory_sync.simulator.state import STATE_KEY, Session, SimulatorState

#: HPE SSO's client-credentials endpoint (what pycentral's standalone `glp`/`new_central` use).
TOKEN_PATH = "/as/token.oauth2"
#: GreenLake's workspace-scoped token endpoint (HPE's authentication guide; pycentral's
#: `unified` credentials): the workspace rides in the path.
WORKSPACE_TOKEN_PATH = "/authorization/v2/oauth2/{workspace_id}/token"


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    # RFC 6749 §5.2 error body; 401 for a bad client carries a WWW-Authenticate challenge.
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="token"'
    body = {"error": error, "error_description": description}
    return json_response(body, status=status, headers=headers)


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(client_id, client_secret) from an HTTP Basic header (form-urlencoded, RFC 6749 §2.3.1)."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


async def issue_token(request: web.Request) -> web.Response:
    """POST /as/token.oauth2 or /authorization/v2/oauth2/{workspace_id}/token: client
    credentials in the form body or in HTTP Basic auth. On the workspace-scoped route the
    credentials must belong to that workspace (another workspace's are refused like wrong ones).
    """
    state = request.app[STATE_KEY]
    if request.content_type != "application/x-www-form-urlencoded":
        return _oauth_error(
            400, "invalid_request", "expected an application/x-www-form-urlencoded body"
        )
    form = await request.post()
    grant_type = form.get("grant_type")
    if grant_type != "client_credentials":
        return _oauth_error(
            400, "unsupported_grant_type", "only grant_type=client_credentials is supported"
        )
    credentials = _basic_credentials(request.headers.get("Authorization"))
    if credentials is None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if not isinstance(client_id, str) or not isinstance(secret, str):
            return _oauth_error(401, "invalid_client", "client authentication failed")
        credentials = (client_id, secret)
    workspace = state.check_client(*credentials)
    scoped = request.match_info.get("workspace_id")
    if workspace is None or (scoped is not None and scoped != workspace.workspace_id):
        return _oauth_error(401, "invalid_client", "client authentication failed")
    token = state.tokens.issue(workspace)
    body = {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": math.ceil(state.tokens.lifetime),
    }
    return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def add_routes(app: web.Application) -> None:
    """Mount both token endpoints."""
    app.router.add_post(TOKEN_PATH, issue_token)
    app.router.add_post(WORKSPACE_TOKEN_PATH, issue_token)


def bearer_token(request: web.Request) -> str | None:
    """The token of an `Authorization: Bearer` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def peek_session(state: SimulatorState, request: web.Request) -> Session | None:
    """The session a request's token names, without judging it (fault rules match on it)."""
    token = bearer_token(request)
    return state.tokens.lookup(token) if token else None


def authenticate(state: SimulatorState, request: web.Request) -> Session:
    """The live session of an API request, or a 401 with the vendor body."""
    token = bearer_token(request)
    if token is None:
        raise _unauthorized("missing bearer token", "invalid_request")
    session = state.tokens.lookup(token)
    if session is None:
        raise _unauthorized("invalid access token", "invalid_token")
    if state.tokens.is_expired(session):
        raise _unauthorized("access token expired", "invalid_token")
    return session


def _unauthorized(message: str, error: str) -> ApiError:
    challenge = f'Bearer error="{error}", error_description="{message}"'
    return ApiError(401, f"Unauthorized: {message}", headers={"WWW-Authenticate": challenge})
