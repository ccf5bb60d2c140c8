// Talking to the sam2vol server: JSON calls, images, downloads, job progress.

// Remote mode: the token arrives once in the page address (?token=...), is kept for this
// tab in sessionStorage and sent with every request (images included) and event stream.
// The server also sets it as a cookie, for the static files the page itself loads.
const TOKEN_KEY = "sam2vol.token";
export const token = (() => {
  const url = new URL(window.location.href);
  const given = url.searchParams.get("token");
  try {
    if (given) sessionStorage.setItem(TOKEN_KEY, given);
    if (given) {
      url.searchParams.delete("token");  // keep it out of the address bar and history
      history.replaceState(null, "", url.toString());
    }
    return sessionStorage.getItem(TOKEN_KEY) || given || "";
  } catch (_) {
    return given || "";
  }
})();

/** `url` with the token added (for EventSource, which cannot send headers). */
export function withToken(url) {
  if (!token) return url;
  return `${url}${url.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
}

function authHeaders(headers = {}) {
  return token ? { ...headers, Authorization: `Bearer ${token}` } : { ...headers };
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.detail) message = String(body.detail);
  } catch (_) { /* not JSON */ }
  return new ApiError(response.status, message);
}

async function call(method, path, body, headers = {}) {
  const init = { method, headers: authHeaders(headers) };
  if (body !== undefined) {
    if (body instanceof Blob) {
      init.body = body;
      init.headers["Content-Type"] = "application/octet-stream";
    } else {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
  }
  let response;
  try {
    response = await fetch(`api/${path}`, init);
  } catch (err) {
    throw new ApiError(0, "the server cannot be reached; is `sam2vol serve` still running?");
  }
  if (!response.ok) throw await failure(response);
  return response;
}

export const api = {
  get: async (path) => (await call("GET", path)).json(),
  post: async (path, body = {}) => (await call("POST", path, body)).json(),
  put: async (path, blob) => (await call("PUT", path, blob)).json(),
  del: async (path) => (await call("DELETE", path)).json(),
  bytes: async (path) => (await call("GET", path)).arrayBuffer(),

  /** Fetch a file and hand it to the browser as a download. */
  async download(path, fallbackName) {
    const response = await call("GET", path);
    const blob = await response.blob();
    const disposition = response.headers.get("Content-Disposition") || "";
    const match = /filename="?([^";]+)"?/.exec(disposition);
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = match ? match[1] : fallbackName;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    return link.download;
  },
};

/**
 * Load an image (server URL or data URL), resolved once decoded. Server images are
 * fetched with the token header, so they load without the cookie too.
 */
export async function loadImage(src) {
  const image = new Image();
  if (src.startsWith("data:")) {
    image.src = src;
    await image.decode();
    return image;
  }
  let response;
  try {
    response = await fetch(src, { headers: authHeaders() });
  } catch (err) {
    throw new ApiError(0, "the server cannot be reached; is `sam2vol serve` still running?");
  }
  if (!response.ok) throw await failure(response);
  const objectUrl = URL.createObjectURL(await response.blob());
  try {
    image.src = objectUrl;
    await image.decode();
  } catch (_) {
    throw new ApiError(0, "could not decode an image from the server");
  } finally {
    URL.revokeObjectURL(objectUrl);
  }
  return image;
}

/**
 * Follow a session's running job over server-sent events; `onEvent` gets each
 * progress snapshot. Resolves with the final snapshot. Falls back to polling
 * if the event stream breaks.
 */
export function followJob(sid, onEvent) {
  return new Promise((resolve) => {
    let done = false;
    const finish = (snap) => {
      if (done) return;
      done = true;
      resolve(snap);
    };
    const poll = async () => {
      while (!done) {
        try {
          const { job } = await api.get(`sessions/${sid}/job?wait=2`);
          if (!job) return finish(null);
          onEvent(job);
          if (job.state !== "running") return finish(job);
        } catch (err) {
          return finish({ state: "failed", error: err.message });
        }
      }
    };
    const source = new EventSource(withToken(`api/sessions/${sid}/events`));
    source.onmessage = (message) => {
      const snap = JSON.parse(message.data);
      if (!snap.kind) { source.close(); return finish(null); }
      onEvent(snap);
      if (snap.state !== "running") { source.close(); finish(snap); }
    };
    source.onerror = () => {
      source.close();
      if (!done) poll();
    };
  });
}
