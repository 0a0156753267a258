// What every page shares: reading its link, building DOM from data (text only), the
// REST helper, the client connection and its status, notices, and the language switch.
//
// User text is data (PROTOCOL.md, "Events in batches"): nothing here, nor in any page,
// ever assigns markup; `h()` sets text with text nodes and attributes one by one from
// a short list, so a danmaku of `<img src=x onerror=alert(1)>` shows as those characters.

import { HudongClient } from "/static/client/hudong.js";
import { applyI18n, lang, LANGS, setLang, t } from "/static/i18n.js";

export { t, lang } from "/static/i18n.js";

/** The link's fragment (`#room=…&token=…`) and query, fragment first. */
export function linkParams() {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  const query = new URLSearchParams(location.search);
  return {
    /** @param {string} name */
    get(name) {
      return fragment.get(name) ?? query.get(name);
    },
    fragment,
    query,
  };
}

/** Remove the token from the address bar (it stays in memory), so it is not shared by a screenshot. */
export function hideTokenFromAddressBar() {
  const fragment = new URLSearchParams(location.hash.replace(/^#/, ""));
  if (!fragment.has("token")) return;
  fragment.delete("token");
  const rest = fragment.toString();
  history.replaceState(null, "", location.pathname + location.search + (rest ? `#${rest}` : ""));
}

/** The room id of a page at /<page>/<room>. */
export function roomFromPath() {
  const parts = location.pathname.split("/").filter(Boolean);
  return decodeURIComponent(parts[1] ?? "");
}

export function wsUrl() {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

const SAFE_ATTRIBUTES = new Set([
  "id",
  "class",
  "type",
  "name",
  "value",
  "href",
  "src",
  "alt",
  "title",
  "for",
  "role",
  "tabindex",
  "placeholder",
  "maxlength",
  "min",
  "max",
  "step",
  "rows",
  "lang",
  "download",
  "autocomplete",
  "inputmode",
  "enterkeyhint",
  "width",
  "height",
  "required",
  "pattern",
  "readonly",
]);

/**
 * Create an element. `props`: `class`, `text`, `attrs` (set one by one; only names that
 * carry no script: no `on*`, no `style`, no `srcdoc`), `data` (dataset), `aria` (aria-*),
 * `on` (event listeners), plus boolean `disabled`, `checked`, `hidden`, `selected`,
 * `required`. Children: nodes, or strings that become text nodes.
 * @param {string} tag
 * @param {Record<string, any>} [props]
 * @param {...(Node|string|number|null|undefined|false)} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = String(value);
    else if (key === "text") el.textContent = String(value);
    else if (key === "attrs") {
      for (const [name, v] of Object.entries(value)) {
        if (v === undefined || v === null || v === false) continue;
        if (!SAFE_ATTRIBUTES.has(name)) throw new Error(`attribute ${name} is not allowed`);
        if ((name === "href" || name === "src") && !isSafeUrl(String(v))) continue;
        el.setAttribute(name, v === true ? "" : String(v));
      }
    } else if (key === "data") {
      for (const [name, v] of Object.entries(value)) el.dataset[name] = String(v);
    } else if (key === "aria") {
      for (const [name, v] of Object.entries(value)) {
        if (v !== undefined && v !== null) el.setAttribute(`aria-${name}`, String(v));
      }
    } else if (key === "on") {
      for (const [type, listener] of Object.entries(value)) el.addEventListener(type, listener);
    } else if (["disabled", "checked", "hidden", "selected", "required", "multiple"].includes(key)) {
      /** @type {any} */ (el)[key] = Boolean(value);
    } else {
      throw new Error(`unknown property ${key}`);
    }
  }
  append(el, ...children);
  return el;
}

/**
 * @param {Element} el
 * @param {...(Node|string|number|null|undefined|false)} children
 */
export function append(el, ...children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** @param {Element} el @param {...(Node|string|null|undefined|false)} children */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, ...children);
}

/**
 * A URL the pages may load or link: on this server (a path, not `//host`), `data:image/`,
 * `blob:` or this origin; never `javascript:` or another host (the pages load nothing
 * from other hosts, and the Content-Security-Policy would refuse it anyway).
 * @param {string} url
 */
export function isSafeUrl(url) {
  if (url.startsWith("/") && !url.startsWith("//")) return true;
  if (url.startsWith("data:image/") || url.startsWith("blob:") || url.startsWith("#")) return true;
  try {
    return new URL(url, location.href).origin === location.origin;
  } catch {
    return false;
  }
}

/** An image URL of user or host data that this page may show, or null. @param {unknown} url */
export function imageUrl(url) {
  return typeof url === "string" && url && isSafeUrl(url) ? url : null;
}

/** A CSS colour from data, or the fallback. @param {unknown} value @param {string} fallback */
export function cssColor(value, fallback) {
  return typeof value === "string" && /^#[0-9a-fA-F]{6}$/.test(value) ? value : fallback;
}

// --- REST ---------------------------------------------------------------------------------

export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message @param {Record<string, any>} [details] the error's other fields (`limit`, …) */
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/** @type {Set<(err: ApiError) => void>} */
const tokenRefusedListeners = new Set();

/**
 * Hear each 401 answer to a call made with a token: the server no longer takes it (a
 * restart with another secret or admin token). The call still throws its ApiError.
 * @param {(err: ApiError) => void} listener
 */
export function onTokenRefused(listener) {
  tokenRefusedListeners.add(listener);
}

/**
 * Call the REST API (PROTOCOL.md, "REST API") with a bearer token.
 * @param {string} path  under /api/v1
 * @param {{token?: string|null, method?: string, body?: unknown, raw?: boolean}} [options]
 */
export async function api(path, { token, method = "GET", body, raw = false } = {}) {
  /** @type {Record<string, string>} */
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let code = "http_error";
    let message = `${response.status} ${response.statusText}`;
    let details = {};
    try {
      const data = await response.json();
      code = data.error?.code ?? code;
      message = data.error?.message ?? message;
      details = data.error ?? {};
    } catch {
      // not JSON
    }
    const error = new ApiError(response.status, code, message, details);
    if (response.status === 401 && token) for (const listener of tokenRefusedListeners) listener(error);
    throw error;
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

/** What a token says about itself (its JWT claims), without checking it; null if not a JWT. @param {string} token */
export function tokenClaims(token) {
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null;
  }
}

// --- words for errors and states ----------------------------------------------------------

/**
 * A sentence for a refused command or a failed call, in the page's language (i18n.js has
 * words for every code; the error's details, such as `limit`, fill them in).
 * @param {any} err  a HudongError, an ApiError or any Error
 */
export function errorText(err) {
  const code = err?.code;
  const details = err?.reply ?? err?.details ?? {};
  const seconds = Math.max(1, Math.ceil((err?.retryAfterMs ?? details.retry_after_ms ?? 1000) / 1000));
  const key = `error.${code}`;
  const text = t(key, { ...details, s: seconds, limit: err?.limit ?? details.limit ?? "", message: err?.message ?? "" });
  return text === key ? t("error.generic", { message: err?.message ?? String(err) }) : text;
}

/** @param {number} n */
export function formatNumber(n) {
  return new Intl.NumberFormat(lang() === "zh" ? "zh-CN" : "en").format(n);
}

/** @param {number} share 0..1 */
export function formatShare(share) {
  return `${Math.round(share * 1000) / 10}%`;
}

/** @param {number} ms since the epoch */
export function formatClock(ms) {
  return new Date(ms).toLocaleTimeString(lang() === "zh" ? "zh-CN" : "en", {
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
}

// --- notices ------------------------------------------------------------------------------

/**
 * Show a short message in the page's live region (`#notices`, aria-live=polite).
 * @param {string} text
 * @param {"info"|"ok"|"warn"|"error"} [kind]
 * @param {number} [ms]
 */
export function notify(text, kind = "info", ms = 5000) {
  const region = document.getElementById("notices");
  if (!region) return;
  const note = h("p", { class: `notice notice-${kind}`, text, attrs: { role: kind === "error" ? "alert" : "status" } });
  region.append(note);
  while (region.children.length > 4) region.firstElementChild?.remove();
  setTimeout(() => note.remove(), ms);
}

// --- the language switch and the connection badge ------------------------------------------

/** Wire a `<button id="lang">` to switch languages and fill static words now. */
export function setupLanguage() {
  applyI18n();
  const button = document.getElementById("lang");
  if (button) {
    button.addEventListener("click", () => {
      setLang(lang() === "zh" ? "en" : "zh");
      applyI18n();
    });
  }
  window.addEventListener("langchange", () => applyI18n());
  return LANGS;
}

/**
 * The client of a page: JSON by default (`?protocol=msgpack` for MessagePack), a badge
 * `#conn` that follows the connection state, and notices for degrade levels and closes.
 * @param {{protocol?: string}} [options]
 */
export function connectClient(options = {}) {
  const protocol = options.protocol ?? linkParams().get("protocol") ?? "json";
  const client = new HudongClient(wsUrl(), { protocol: protocol === "msgpack" ? "msgpack" : "json" });
  const badge = document.getElementById("conn");
  const show = () => {
    if (!badge) return;
    badge.textContent = t(`conn.${client.state}`);
    badge.dataset.state = client.state;
  };
  client.on("state", show);
  window.addEventListener("langchange", show);
  show();
  client.on("degrade", (notice) => {
    document.body.dataset.degrade = String(notice.level);
    if (notice.level > 0) notify(t(`degrade.${notice.level}`), "warn");
  });
  client.on("snapshot", (snapshot) => {
    document.body.dataset.degrade = String(snapshot?.degrade ?? 0);
  });
  client.on("close", (info) => {
    // token_expired: each page decides (a guest joins again, the console renews its token)
    if (["room_deleted", "banned", "token_revoked"].includes(info.name)) {
      notify(t(`closed.${info.name}`), "error", 60_000);
    }
  });
  return client;
}

// --- staying in the room whatever happens to the token ---------------------------------------

const STAY_FIRST_MS = 1000;
const STAY_MAX_MS = 10_000;

/**
 * Keep a screen (overlay, wall) in its room: open it, and whenever the client gives up
 * (a refusal it does not retry: a token signed with another secret after a restart, a
 * room not made yet), open it again after a while (1 s doubling to 10 s, jittered), for
 * as long as the page is open. The same link starts working again as soon as the
 * server takes its token. `refused(err)` hears each refusal; `joined()` each join.
 * @param {HudongClient} client
 * @param {string} room
 * @param {{token?: string}} options
 * @param {{refused?: (err: any) => void, joined?: () => void}} [hooks]
 */
export function stayInRoom(client, room, options, { refused = () => {}, joined = () => {} } = {}) {
  let attempt = 0;
  let timer = 0;
  /** @param {any} err */
  const again = (err) => {
    refused(err);
    clearTimeout(timer);
    const delay = Math.min(STAY_MAX_MS, STAY_FIRST_MS * 2 ** attempt) * (0.5 + Math.random() / 2);
    attempt += 1;
    timer = window.setTimeout(open, delay);
  };
  const open = () => {
    client.open(room, options).then(() => {
      attempt = 0;
      joined();
    }, again);
  };
  // A lost connection that the client could not bring back (its rejoin was refused).
  client.on("error", (/** @type {any} */ err) => {
    if (!err.retry && client.room === null && client.state === "disconnected") again(err);
  });
  open();
}
