// /wall/{room}#token=<screen token>: the venue's big screen.
//
// A QR code made by the server invites people to join; the room's kinds fill the rest
// (registry.js): each kind's part for this page is a counter in the header, the main
// area (the posts) or a panel (the latest poll, co-design, Q&A, draw), and may reveal
// something full screen (a draw's winners, a co-design's final design). Colours, logo
// and title come from the room (settings `brand_color`, `accent_color`, `logo_url`;
// PROTOCOL.md, "REST API"); danmaku fly across it when the room's `wall_danmaku` is on,
// identical ones merged within `danmaku_merge_s` (danmaku.js).
//
// Layout: the QR code has a column of its own at the right; the posts and the panels
// shown share the rest in a grid made for their number (`arrange`). Without posts the
// panels take the whole area; with posts, the posts keep the first column. A panel whose
// content is taller than its cell gets a smaller font until it fits, and the posts that
// do not fit are left out, so nothing is ever cut off or drawn off screen, at any size.

import {
  connectClient,
  cssColor,
  errorText,
  formatNumber,
  h,
  hideTokenFromAddressBar,
  imageUrl,
  linkParams,
  replace,
  roomFromPath,
  setupLanguage,
  stayInRoom,
  t,
} from "/static/common.js";
import { DanmakuStage } from "/static/danmaku.js";
import { screenWidgets } from "/static/registry.js";

const REVEAL_MS = 25_000;
const SHOW_ENDED_S = 600;
const MIN_FIT = 0.5; // a panel's font shrinks to this share of its size at most

setupLanguage();
const room = roomFromPath();
const params = linkParams();
const token = params.get("token");
hideTokenFromAddressBar();
const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

const qrPath = `/qr/${encodeURIComponent(room)}.svg`;
/** @type {HTMLImageElement} */ ($("qr")).src = qrPath;
$("join-url").textContent = `${location.origin}/live/${encodeURIComponent(room)}`;
// The link under the code is the one the code encodes: the server's public address
// (under --host 0.0.0.0, the LAN address phones reach), not this page's.
fetch(qrPath, { method: "HEAD" })
  .then((response) => {
    const target = response.headers.get("X-Hudong-Target");
    if (response.ok && target) $("join-url").textContent = target;
  })
  .catch(() => {});

const client = connectClient();

client.on("snapshot", (snapshot) => {
  const r = snapshot.room;
  $("title").textContent = r.title;
  document.title = `${r.title} · hudong`;
  const settings = r.settings ?? {};
  document.body.style.setProperty("--brand", cssColor(settings.brand_color, "#e4007f"));
  document.body.style.setProperty("--accent", cssColor(settings.accent_color, "#ffc400"));
  const logo = /** @type {HTMLImageElement} */ ($("logo"));
  const src = imageUrl(settings.logo_url);
  logo.hidden = !src;
  if (src) logo.src = src;
  setCount("online", snapshot.online ?? 0);
  showDanmaku(settings);
  drawAll();
});

/** @param {string} id @param {number} n */
function setCount(id, n) {
  $(id).textContent = formatNumber(n);
  $(id).dataset.count = String(n);
}

// --- the kinds' widgets ----------------------------------------------------------------------

let revealTimer = 0;
/**
 * Show something full screen for a while.
 * @param {string} kind @param {{kicker: string, title: string, body: Node, id: string}} shown
 */
function reveal(kind, { kicker, title, body, id }) {
  $("reveal-kicker").textContent = kicker;
  $("reveal-title").textContent = title;
  replace($("reveal-body"), body);
  $("reveal").dataset.kind = kind;
  $("reveal").dataset.interaction = id;
  $("reveal").hidden = false;
  clearTimeout(revealTimer);
  revealTimer = window.setTimeout(() => {
    $("reveal").hidden = true;
  }, REVEAL_MS);
}

/** Each kind's widget, in the kinds' order. */
const screen = screenWidgets(
  client,
  (kind) => kind.wall,
  (kind) => ({
    params,
    showEndedS: SHOW_ENDED_S,
    frame: (...children) => h("section", { class: "panel", hidden: true }, ...children),
    reveal: (shown) => reveal(kind.kind, shown),
  }),
);
const content = $("wall-content");
/** @type {HTMLElement[]} the main area's widgets (the posts), first in the grid */
const mains = [];
for (const { part } of screen.widgets.values()) {
  if (part.region === "counter") {
    $("counters").insertBefore(part.el, $("online-counter"));
    continue;
  }
  if (part.region === "main") mains.push(part.el);
  content.append(part.el);
}
content.prepend(...mains);

function drawAll() {
  screen.update();
  arrange();
}

/** Whether an element's content is taller or wider than its box. @param {HTMLElement} el */
const overflows = (el) => el.scrollHeight > el.clientHeight + 1 || el.scrollWidth > el.clientWidth + 1;

/**
 * Lay out what the content area shows: the main area's widgets (the posts) when they
 * have something to show, then every panel not hidden; then fit each into its cell.
 */
function arrange() {
  const panels = [...content.children].filter((el) => !mains.includes(/** @type {HTMLElement} */ (el)) && !(/** @type {HTMLElement} */ (el).hidden));
  const posts = mains.filter((el) => !el.hidden && (el.dataset.empty !== "true" || panels.length === 0));
  for (const el of mains) {
    el.classList.toggle("off", !posts.includes(el));
    el.style.gridArea = "";
  }
  const n = panels.length;
  // side by side up to three columns in all (the posts one of them), then two rows of panels
  const postCols = posts.length ? 1 : 0;
  const rows = n > 1 && n + postCols > 3 ? 2 : 1;
  const cols = Math.max(1, Math.ceil(n / rows));
  content.style.gridTemplateColumns = `repeat(${postCols + cols}, minmax(0, 1fr))`;
  content.style.gridTemplateRows = `repeat(${rows}, minmax(0, 1fr))`;
  content.dataset.panels = String(n);
  content.dataset.posts = String(posts.length);
  for (const el of posts) el.style.gridArea = `1 / 1 / ${rows + 1} / ${postCols + 1}`;
  // an odd number in two rows: the panel with the most to show takes a whole column, the last
  const order = /** @type {HTMLElement[]} */ (panels);
  if (rows === 2 && n % 2 === 1) {
    const need = (/** @type {HTMLElement} */ el) => [...el.children].reduce((sum, child) => sum + child.getBoundingClientRect().height, 0);
    for (const el of order) el.style.setProperty("--fit", "1");
    const tallest = order.reduce((a, b) => (need(b) > need(a) ? b : a));
    order.splice(order.indexOf(tallest), 1);
    order.push(tallest);
  }
  order.forEach((el, i) => {
    const row = (i % rows) + 1;
    const col = postCols + Math.floor(i / rows) + 1;
    const tall = rows === 2 && i === n - 1 && n % 2 === 1;
    el.style.gridArea = `${row} / ${col} / ${tall ? rows + 1 : row + 1} / ${col + 1}`;
  });
  for (const el of order) fit(el);
  for (const el of posts) trim(el);
}

/** Shrink a panel's font until its content fits its cell. @param {HTMLElement} el */
function fit(el) {
  let scale = 1;
  el.style.setProperty("--fit", "1");
  while (overflows(el) && scale > MIN_FIT) {
    scale = Math.max(MIN_FIT, scale - 0.08);
    el.style.setProperty("--fit", String(scale));
  }
}

/** Leave out the last items of a list (`data-fit="trim"`) that do not fit in its area. @param {HTMLElement} area */
function trim(area) {
  for (const list of area.querySelectorAll("[data-fit='trim']")) {
    const items = /** @type {HTMLElement[]} */ ([...list.children]);
    for (const item of items) item.hidden = false;
    for (let i = items.length - 1; i > 0 && overflows(area); i -= 1) items[i].hidden = true;
  }
}

new ResizeObserver(() => arrange()).observe(content);
// a kind's panel shows or hides itself on an event too (a draw's winners)
const shownOrHidden = new MutationObserver(() => requestAnimationFrame(arrange));
for (const el of content.children) shownOrHidden.observe(el, { attributes: true, attributeFilter: ["hidden", "data-empty"] });

// --- danmaku over the wall (room setting `wall_danmaku`) ----------------------------------

/** @type {DanmakuStage | null} */
let stage = null;
/** @param {Record<string, any>} settings */
function showDanmaku(settings) {
  const on = settings.wall_danmaku === true;
  const merge = Number(settings.danmaku_merge_s ?? 3);
  $("stage").hidden = !on;
  if (on && !stage) stage = new DanmakuStage($("stage"), { fontPx: Math.round(window.innerHeight / 27), area: 1 });
  if (!on) stage?.clear();
  stage?.setMerge(Number.isFinite(merge) ? merge * 1000 : 3000);
}
client.on("danmaku", (event) => {
  if (!$("stage").hidden) stage?.add(event);
});
client.on("retract", (event) => stage?.remove(event.id));
// For tests and operators: what the stage did.
Object.assign(window, { hudongWall: { get stage() { return stage; } } });

client.on("interaction", () => drawAll());
setInterval(drawAll, 5000);
window.addEventListener("langchange", drawAll);

// --- joining ------------------------------------------------------------------------------

/** @param {string} text */
function problem(text) {
  $("problem").textContent = text;
  $("problem").hidden = false;
}

// Once it has shown the room, the wall says so in big letters while it is not in it
// (a restart, a lost network, a token the server no longer takes), and keeps trying.
let shown = false;
function drawConnection() {
  $("reconnecting").hidden = !shown || (client.state === "connected" && client.room !== null);
}
client.on("state", drawConnection);
client.on("joined", () => {
  shown = true;
  $("problem").hidden = true;
  drawConnection();
});

if (!token) problem(t("error.no_token"));
else stayInRoom(client, room, { token }, { refused: (err) => (shown ? drawConnection() : problem(errorText(err))) });
