// /wall/{room}#token=<screen token>: the venue's big screen.
//
// A QR code made by the server invites people to join; the room's kinds fill the rest
// (registry.js): each kind's part for this page is a counter in the header, the main
// area (the posts) or a panel at the side (the latest poll, co-design, draw), and may
// reveal something full screen (a draw's winners, a co-design's final design). Colours,
// logo and title come from the room (settings `brand_color`, `accent_color`,
// `logo_url`; PROTOCOL.md, "REST API").

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
import { screenWidgets } from "/static/registry.js";

const REVEAL_MS = 25_000;
const SHOW_ENDED_S = 600;

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
const regions = { counter: $("counters"), main: $("wall-main"), side: $("side") };
/** Where each region's widgets go: counters before "watching", the main area before the side. */
const anchors = { counter: $("online-counter"), main: $("side"), side: null };
for (const { part } of screen.widgets.values()) {
  const region = part.region && part.region in regions ? part.region : "side";
  regions[region].insertBefore(part.el, anchors[region]);
}
function drawAll() {
  screen.update();
}

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
