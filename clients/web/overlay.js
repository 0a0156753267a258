// /overlay/{room}#token=<screen token>: danmaku and live results over the stream.
//
// URL parameters (query or fragment): `lanes` (scrolling lanes), `size` (danmaku px),
// `speed` (px/s), `area` (share of the height for scrolling lanes, 0.1–1), `theme`
// (`outline`, `shadow`, `box`), `widgets` (any of `poll,design,draw`, or `none`),
// `position` (`right`, `left`, `bottom`), `scale` (widget size), `brand` (#rrggbb),
// `poll` (always show this poll), `protocol` (`json`, `msgpack`), `debug=1`.
//
// A reconnect does not clear the screen: danmaku keep flying, widgets keep their last
// view and are brought up to date by the fresh snapshot, in place.

import { activityTime, connectClient, cssColor, errorText, h, hideTokenFromAddressBar, linkParams, roomFromPath, setupLanguage, t } from "/static/common.js";
import { DanmakuStage } from "/static/danmaku.js";
import { DesignBoard, PollBoard, winnerList } from "/static/views.js";

const SHOW_ENDED_S = 60; // a closed or revealed poll stays this long after its last change
const DRAW_SHOW_MS = 30_000;

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
const wanted = new Set((params.get("widgets") ?? "poll,design,draw").split(",").map((w) => w.trim()));

const stage = new DanmakuStage(/** @type {HTMLElement} */ (document.getElementById("stage")), {
  lanes: number("lanes", 1, 40),
  fontPx: number("size", 12, 120),
  speed: number("speed", 30, 2000),
  area: number("area", 0.1, 1),
});
// For tests and operators: what the stage did.
Object.assign(window, { hudongOverlay: { stage } });

const widgets = /** @type {HTMLElement} */ (document.getElementById("widgets"));
const pollBoard = new PollBoard();
const pollWidget = h("div", { class: "widget widget-poll", hidden: true }, pollBoard.el);
const designBoard = new DesignBoard();
const designWidget = h("div", { class: "widget widget-design", hidden: true }, designBoard.el);
const drawWidget = h("div", { class: "widget widget-draw", hidden: true });
widgets.append(pollWidget, designWidget, drawWidget);

const problem = /** @type {HTMLElement} */ (document.getElementById("problem"));
/** @param {string} text */
function showProblem(text) {
  problem.textContent = text;
  problem.hidden = false;
}

if (params.get("debug") === "1") {
  const conn = /** @type {HTMLElement} */ (document.getElementById("conn"));
  conn.hidden = false;
}

const client = connectClient();
client.on("danmaku", (event) => stage.add(event));
client.on("retract", (event) => stage.remove(event.id));

/** @param {any} view */
function recent(view) {
  const phase = view.status?.phase ?? view.state?.phase;
  if (phase === "open") return true;
  if (phase === "draft") return false;
  return Date.now() / 1000 - activityTime(view) < SHOW_ENDED_S;
}

function drawWidgets() {
  const views = client.interactions;
  if (wanted.has("poll")) {
    const pinned = params.get("poll");
    let poll = pinned ? views.get(pinned) : null;
    if (!poll) {
      const polls = [...views.values()].filter((v) => v.kind === "poll" && recent(v));
      poll = polls.sort((a, b) => activityTime(b) - activityTime(a))[0] ?? null;
    }
    if (poll) pollBoard.update(poll);
    pollWidget.hidden = !poll;
  }
  if (wanted.has("design")) {
    const designs = [...views.values()].filter((v) => v.kind === "codesign" && recent(v));
    const design = designs.sort((a, b) => activityTime(b) - activityTime(a))[0] ?? null;
    if (design) designBoard.update(design);
    designWidget.hidden = !design;
  }
}

let drawTimer = 0;
client.on("drawResult", (event) => {
  if (!wanted.has("draw")) return;
  drawWidget.replaceChildren(
    h("h2", { class: "board-title", text: event.title ?? t("wall.winners") }),
    h("p", { class: "tag", text: t("wall.winners") }),
    winnerList(event.winners ?? [], event.names ?? {}),
  );
  drawWidget.dataset.draw = event.interaction;
  drawWidget.hidden = false;
  clearTimeout(drawTimer);
  drawTimer = window.setTimeout(() => {
    drawWidget.hidden = true;
  }, DRAW_SHOW_MS);
});
client.on("designRevealed", () => drawWidgets());
client.on("interaction", () => drawWidgets());
client.on("snapshot", () => drawWidgets());
setInterval(drawWidgets, 1000); // ended polls leave after SHOW_ENDED_S

if (!token) {
  showProblem(t("error.no_token"));
} else {
  client.open(room, { token }).catch((err) => showProblem(errorText(err)));
}
client.on("error", (err) => {
  if (!err.retry) showProblem(errorText(err));
});
