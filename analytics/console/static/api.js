// JSON calls to the console backend.
//
// Paths are relative ("api/alerts"), resolved against the page: the console works
// the same at "/" or behind a reverse proxy under a prefix. The session cookie
// travels on its own (same origin).

/** A failed call: HTTP status and the server's {"detail"} message. */
export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
    this.detail = detail;
  }
}

let unauthorized = () => {};

/** Called on any 401 (except the login call itself): the session is gone, back to login. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/** "api/alerts" + {status: "queue", camera: undefined} -> "api/alerts?status=queue" (nullish params dropped). */
export function apiUrl(path, query = {}) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v !== null && v !== undefined && v !== "") params.set(k, String(v));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/**
 * Call the API and return the decoded JSON (null for 204).
 * Throws ApiError with the server's message; a network failure becomes status 0.
 */
export async function api(path, { method = "GET", body, query } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(apiUrl(path, query), init);
  } catch {
    throw new ApiError(0, "The console server cannot be reached (network error)");
  }
  if (!response.ok) {
    const error = new ApiError(response.status, await errorDetail(response));
    if (response.status === 401 && path !== "api/login") {
      error.sessionLost = true; // already announced by the handler: callers need not toast it
      unauthorized();
    }
    throw error;
  }
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** POST shorthand. */
export function post(path, body = {}) {
  return api(path, { method: "POST", body });
}

// FastAPI sends {"detail": "text"}, or for validation errors {"detail": [{loc, msg}, ...]}.
async function errorDetail(response) {
  let data = null;
  try {
    data = await response.json();
  } catch {
    return `${response.status} ${response.statusText || "error"}`;
  }
  const detail = data && data.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => [d && d.loc && d.loc.slice(1).join("."), d && d.msg].filter(Boolean).join(": "))
      .join("; ");
  }
  return `${response.status} ${response.statusText || "error"}`;
}
