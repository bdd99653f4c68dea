"""Login, logout, the current user, and the role checks every route depends on.

The session token travels in an HttpOnly, SameSite=Strict cookie (no script can read it, no other site can
send it), so a form posted from another origin cannot act as a logged-in operator.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from analytics.console.accounts import ROLES, User
from analytics.console.context import ConsoleContext
from analytics.console.schemas import LoginBody

COOKIE = "analytics_session"
#: Failed logins of one user name allowed within LOCK_SECONDS before further tries are refused (429).
MAX_FAILURES = 5
LOCK_SECONDS = 300.0

router = APIRouter()


def context(request: Request) -> ConsoleContext:
    return request.app.state.ctx


def current_user(request: Request) -> User:
    """The logged-in user (401 when there is no live session)."""
    user = context(request).accounts.session_user(request.cookies.get(COOKIE))
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not logged in, or the session has ended; log in again")
    return user


def require(role: str) -> Callable[[Request], User]:
    """A dependency: the current user, who must have ``role`` or a role above it (403 otherwise)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def check(user: User = Depends(current_user)) -> User:
        if not user.can(role):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this needs the {role} role or above; "
                                                           f"{user.username!r} is {user.role}")
        return user

    return check


def _throttled(ctx: ConsoleContext, username: str, now: float) -> float:
    """Seconds to wait before ``username`` may try again (0: may try now)."""
    recent = [t for t in ctx.failed_logins.get(username, []) if now - t < LOCK_SECONDS]
    ctx.failed_logins[username] = recent
    return LOCK_SECONDS - (now - recent[0]) if len(recent) >= MAX_FAILURES else 0.0


@router.post("/api/login")
def login(body: LoginBody, request: Request, response: Response) -> dict[str, str]:
    ctx = context(request)
    now = ctx.clock()
    wait = _throttled(ctx, body.username, now)
    if wait > 0:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, f"too many failed logins for {body.username!r}; "
                                                               f"try again in {wait:.0f} s")
    client = request.client.host if request.client else ""
    done = ctx.accounts.login(body.username, body.password, hours=ctx.config.console.session_hours, client=client)
    if done is None:
        ctx.failed_logins.setdefault(body.username, []).append(now)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password (or the account is disabled)")
    user, token = done
    ctx.failed_logins.pop(body.username, None)
    response.set_cookie(COOKIE, token, max_age=int(ctx.config.console.session_hours * 3600), httponly=True,
                        samesite="strict", secure=request.url.scheme == "https", path="/")
    return {"username": user.username, "role": user.role}


@router.post("/api/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(request: Request, response: Response) -> Response:
    context(request).accounts.logout(request.cookies.get(COOKIE))
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/api/me")
def me(user: User = Depends(current_user)) -> dict[str, str]:
    return {"username": user.username, "role": user.role}
