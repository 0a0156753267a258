// /overlay/{room}#token=<screen token>: danmaku and live results over the stream.
//
// URL parameters (query or fragment): `lanes` (scrolling lanes), `size` (danmaku px),
// `speed` (px/s), `area` (share of the height for scrolling lanes, 0.1–1), `theme`
// (`outline`, `shadow`, `box`), `widgets` (the kinds' widgets by name, default all, or
// `none`), `position` (`right`, `left`, `bottom`), `scale` (widget size), `brand`
// (#rrggbb), `protocol` (`json`, `msgpack`), `debug=1`, and those a kind's widget reads
// (the poll widget's `poll=<id>` always shows that poll). What each widget shows is its
// kind's module's `overlay` part (registry.js).
//
// Identical danmaku merge into one item whose count grows ("666 ×37") within the room's
// `danmaku_merge_s` (danmaku.js).
//
// A reconnect does not clear the screen: danmaku keep flying, widgets keep their last
// view and are brought up to date by the fresh snapshot, in place. A refused token (a
// restart with another secret) draws nothing either: the overlay keeps trying quietly.

import { connectClient, cssColor, errorText, h, hideTokenFromAddressBar, linkParams, roomFromPath, setupLanguage, stayInRoom, t } from "/static/common.js";
import { DanmakuStage } from "/static/danmaku.js";
import { screenWidgets } from "/static/registry.js";

const SHOW_ENDED_S = 60; // an ended poll or co-design stays this long after its last change

const params = linkParams();
const number = (/** @type {string} */ name, /** @type {number} */ lo, /** @type {number} */ hi) => {
  const value = Number(params.get(name));
  return params.get(name) !== null && Number.isFinite(value) ? Math.min(hi, Math.max(lo, value)) : undefined;
};

setupLanguage();
const room = roomFromPath();
const token = params.get("token");
hideTokenFromAddressBar();
const body = document.body;
body.classList.add(`theme-${["outline", "shadow", "box"].includes(params.get("theme") ?? "") ? params.get("theme") : "outline"}`);
body.classList.add(`position-${["right", "left", "bottom"].includes(params.get("position") ?? "") ? params.get("position") : "right"}`);
const scale = number("scale", 0.5, 3);
if (scale) body.style.setProperty("--widget-scale", String(scale));
body.style.setProperty("--brand", cssColor(params.get("brand"), "#e4007f"));
const asked = params.get("widgets");
const wanted = asked === null ? null : new Set(asked.split(",").map((w) => w.trim()));

const stage = new DanmakuStage(/** @type {HTMLElement} */ (document.getElementById("stage")), {
  lanes: number("lanes", 1, 40),
  fontPx: number("size", 12, 120),
  speed: number("speed", 30, 2000),
  area: number("area", 0.1, 1),
  mergeMs: 3000, // the setting's default until the snapshot says
});
/** The room's merge window for identical danmaku (setting `danmaku_merge_s`), in ms. @param {any} settings */
function mergeMs(settings) {
  const seconds = Number(settings?.danmaku_merge_s ?? 3);
  return Number.isFinite(seconds) ? Math.max(0, seconds) * 1000 : 3000;
}
// For tests and operators: what the stage did.
Object.assign(window, { hudongOverlay: { stage } });

const client = connectClient();
const box = /** @type {HTMLElement} */ (document.getElementById("widgets"));
/** Each kind's widget that the link asks for (all by default), in the kinds' order. */
const screen = screenWidgets(
  client,
  (kind) => kind.overlay,
  () => ({ params, showEndedS: SHOW_ENDED_S, frame: (...children) => h("div", { class: "widget", hidden: true }, ...children) }),
  (kind, widget) => wanted === null || wanted.has(widget.name ?? kind.kind),
);
for (const { kind, part } of screen.widgets.values()) {
  part.el.classList.add(`widget-${part.name ?? kind.kind}`);
  box.append(part.el);
}

// Whatever happens to the connection or the token, nothing about it is drawn on the
// stream: the overlay stays transparent and keeps trying (stayInRoom). A problem goes to
// the browser's console, and shows on the page only with `debug=1`.
const debug = params.get("debug") === "1";
const problem = /** @type {HTMLElement} */ (document.getElementById("problem"));
/** @param {string} text */
function showProblem(text) {
  console.warn(`hudong overlay: ${text}`);
  if (!debug) return;
  problem.textContent = text;
  problem.hidden = false;
}

if (debug) {
  const conn = /** @type {HTMLElement} */ (document.getElementById("conn"));
  conn.hidden = false;
}

client.on("danmaku", (event) => stage.add(event));
client.on("retract", (event) => stage.remove(event.id));

/** Shrink the widgets' font until every widget shown fits in the height (at half size at most). */
function fitWidgets() {
  let scale = 1;
  box.style.setProperty("--fit", "1");
  while (box.scrollHeight > box.clientHeight + 1 && scale > 0.5) {
    scale = Math.max(0.5, scale - 0.08);
    box.style.setProperty("--fit", String(scale));
  }
}
function update() {
  screen.update();
  fitWidgets();
}
// a widget shows or hides itself on an event too (a draw's winners)
const shownOrHidden = new MutationObserver(() => requestAnimationFrame(fitWidgets));
for (const el of box.children) shownOrHidden.observe(el, { attributes: true, attributeFilter: ["hidden"] });
window.addEventListener("resize", fitWidgets);

client.on("interaction", update);
client.on("snapshot", (snapshot) => {
  stage.setMerge(mergeMs(snapshot.room?.settings));
  update();
});
setInterval(update, 1000); // ended ones leave after SHOW_ENDED_S

if (!token) {
  showProblem(t("error.no_token"));
} else {
  stayInRoom(client, room, { token }, { refused: (err) => showProblem(errorText(err)), joined: () => (problem.hidden = true) });
}
client.on("error", (err) => {
  if (!err.retry) showProblem(errorText(err));
});
