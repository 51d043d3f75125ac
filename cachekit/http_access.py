"""Who may call the HTTP API: the data and admin bearer tokens, the role each grants, and the FastAPI
dependencies that check them on every route (one ``HTTPBearer`` scheme, declared in the OpenAPI document).

:mod:`cachekit.http` builds its router and app on these and re-exports ``AnonymousAccessWarning``.
"""

import hmac
import warnings
from typing import TYPE_CHECKING, Any

from .errors import CacheError, require
from .facade import Cache
from .http_policy import is_loopback

if TYPE_CHECKING:
    from .runtime.runtime import Runtime

__all__ = ["Access", "AnonymousAccessWarning", "route_dependencies"]


class AnonymousAccessWarning(UserWarning):
    """The HTTP API serves loopback clients without a token (``allow_anonymous=True``)."""


def _secret(value: Any) -> str | None:
    text = value.get_secret_value() if value is not None else None
    return text or None


class Access:
    """Who may call what: the data and admin tokens, and whether loopback clients need none."""

    def __init__(self, runtime: "Runtime | None", token: str | None, admin_token: str | None,
                 allow_anonymous: bool) -> None:
        http = (runtime if runtime is not None else Cache.runtime()).config.http
        self.token = token or _secret(http.token)
        self.admin_token = admin_token or _secret(http.admin_token)
        if self.token and self.token == self.admin_token:
            raise CacheError("the HTTP data token and admin token are the same; give the admin token its own "
                             "value (the data token would otherwise grant admin rights)")
        self.anonymous = allow_anonymous and not self.token
        if not (self.token or self.admin_token or self.anonymous):
            raise CacheError(
                "the HTTP API needs a token: pass token=... (and admin_token=... for the admin routes), or set "
                "[http] token / CACHEKIT_HTTP__TOKEN; without one it serves nobody, except loopback clients "
                "with allow_anonymous=True (cachekit serve --no-auth)")
        if self.anonymous:
            warnings.warn("the cachekit HTTP API serves loopback clients WITHOUT a token (allow_anonymous); "
                          "set [http] token to require one", AnonymousAccessWarning, stacklevel=3)

    def role(self, given: str | None) -> str | None:
        """``"admin"``, ``"data"`` or ``None`` (no or wrong token); compared in constant time."""
        if not given:
            return None
        raw = given.encode()
        if self.admin_token and hmac.compare_digest(raw, self.admin_token.encode()):
            return "admin"
        if self.token and hmac.compare_digest(raw, self.token.encode()):
            return "data"
        return None


def route_dependencies(access: Access) -> tuple[list[Any], list[Any]]:
    """The ``dependencies=`` of data routes and of admin routes (one ``HTTPBearer`` scheme)."""
    fastapi = require("fastapi", "http")
    security = require("fastapi.security", "http")
    HTTPException, Request, Security = (  # type: ignore[attr-defined]
        fastapi.HTTPException, fastapi.Request, fastapi.Security)  # type: ignore[attr-defined]
    bearer = security.HTTPBearer(  # type: ignore[attr-defined]
        auto_error=False, description="the data token (items, stats, reading) or the admin token (all)")

    def refuse() -> Exception:
        return HTTPException(status_code=401, detail="missing or wrong bearer token",  # type: ignore[no-any-return]
                             headers={"WWW-Authenticate": "Bearer"})

    async def data_access(request: Request, credentials: Any = Security(bearer)) -> None:  # type: ignore[valid-type]
        if access.role(credentials.credentials if credentials else None) is not None:
            return
        client = request.client  # type: ignore[attr-defined]
        # Anonymous mode serves the peers of this machine only; any credentials given must be right.
        if (access.anonymous and "authorization" not in request.headers  # type: ignore[attr-defined]
                and client is not None and is_loopback(client.host)):
            return
        raise refuse()

    async def admin_access(credentials: Any = Security(bearer)) -> None:
        role = access.role(credentials.credentials if credentials else None)
        if role == "data":
            raise HTTPException(status_code=403, detail="this route needs the admin token")
        if role != "admin":
            raise refuse()

    return [Security(data_access)], [Security(admin_access)]
