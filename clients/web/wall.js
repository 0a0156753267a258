// /wall/{room}#token=<screen token>: the venue's big screen.
//
// Approved posts flow in (pinned first), a QR code made by the server invites people
// to join, the latest poll and co-design show live, a draw's winners and a co-design's
// final design are revealed full screen, and the check-in counter counts. Colours,
// logo and title come from the room (settings `brand_color`, `accent_color`,
// `logo_url`; PROTOCOL.md, "REST API").

import {
  activityTime,
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
  t,
} from "/static/common.js";
import { DesignBoard, PollBoard, finalDesign, winnerList } from "/static/views.js";

const REVEAL_MS = 25_000;
const SHUFFLE_MS = 2_500;
const SHOW_ENDED_S = 600;
const POSTS_SHOWN = 24;

setupLanguage();
const room = roomFromPath();
const params = linkParams();
const token = params.get("token");
hideTokenFromAddressBar();
const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

const joinUrl = `${location.origin}/live/${encodeURIComponent(room)}`;
/** @type {HTMLImageElement} */ ($("qr")).src = `/qr/${encodeURIComponent(room)}.svg`;
$("join-url").textContent = joinUrl;

const pollBoard = new PollBoard();
const designBoard = new DesignBoard();
$("poll-panel").append(pollBoard.el);
$("design-panel").append(designBoard.el);

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

// --- posts --------------------------------------------------------------------------------

/** @type {Map<string, HTMLElement>} */
const postElements = new Map();

/** @param {any} view the wall's view */
function drawPosts(view) {
  const list = $("posts");
  const posts = (view.posts ?? []).slice(0, POSTS_SHOWN);
  const keep = new Set(posts.map((/** @type {any} */ p) => p.id));
  for (const [id, el] of postElements) {
    if (!keep.has(id)) {
      el.remove();
      postElements.delete(id);
    }
  }
  for (const post of posts) {
    let el = postElements.get(post.id);
    if (!el) {
      el = h("li", { class: "post", data: { post: post.id } }, h("span", { class: "who", text: post.name ?? "" }), h("span", { class: "text", text: post.text }));
      postElements.set(post.id, el);
    }
    el.classList.toggle("pinned", Boolean(post.pinned_at));
    list.append(el); // keeps the view's order: pinned first, then newest
  }
  $("posts-empty").hidden = posts.length > 0;
}

// --- live panels ----------------------------------------------------------------------------

/** @param {any} view */
function recent(view) {
  const phase = view.status?.phase ?? view.state?.phase;
  if (phase === "draft") return false;
  return phase === "open" || Date.now() / 1000 - activityTime(view) < SHOW_ENDED_S;
}

/** @param {string} kind */
function newest(kind) {
  const views = [...client.interactions.values()].filter((v) => v.kind === kind && recent(v));
  return views.sort((a, b) => activityTime(b) - activityTime(a))[0] ?? null;
}

function drawAll() {
  const views = client.interactions;
  const wall = views.get("wall");
  if (wall) drawPosts(wall);
  const checkin = views.get("checkin");
  if (checkin) setCount("checkins", checkin.count ?? 0);
  const poll = newest("poll");
  if (poll) pollBoard.update(poll);
  $("poll-panel").hidden = !poll;
  const design = newest("codesign");
  if (design) designBoard.update(design);
  $("design-panel").hidden = !design;
  const draw = newest("draw");
  const drawn = draw?.state?.phase === "drawn" ? draw : null;
  if (drawn) {
    replace($("draw-panel"), h("h2", { class: "board-title", text: drawn.spec.title }), winnerList(drawn.state.winners, drawn.names ?? {}));
    $("draw-panel").dataset.draw = drawn.id;
  }
  $("draw-panel").hidden = !drawn;
}

client.on("interaction", () => drawAll());
setInterval(drawAll, 5000);
window.addEventListener("langchange", drawAll);

// --- reveals ----------------------------------------------------------------------------

let revealTimer = 0;
/** @param {string} kicker @param {string} title @param {Node} body @param {string} kind @param {string} id */
function reveal(kicker, title, body, kind, id) {
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

client.on("drawResult", (event) => {
  const winners = event.winners ?? [];
  const names = event.names ?? {};
  const shuffle = h("p", { class: "shuffle", attrs: { role: "status" }, text: t("wall.draw.drawing") });
  reveal(t("wall.winners"), event.title ?? "", shuffle, "draw", event.interaction);
  const pool = winners.map((/** @type {string} */ w) => names[w] ?? w);
  const started = performance.now();
  const spin = () => {
    if (performance.now() - started >= SHUFFLE_MS || pool.length === 0) {
      replace($("reveal-body"), winnerList(winners, names));
      return;
    }
    shuffle.textContent = pool[Math.floor(Math.random() * pool.length)];
    setTimeout(spin, 90);
  };
  spin();
});

client.on("designRevealed", (event) => {
  reveal(t("wall.design.final"), event.final?.title ?? "", finalDesign(event.final), "design", event.interaction);
});

// --- joining ------------------------------------------------------------------------------

/** @param {string} text */
function problem(text) {
  $("problem").textContent = text;
  $("problem").hidden = false;
}

if (!token) problem(t("error.no_token"));
else client.open(room, { token }).catch((err) => problem(errorText(err)));
client.on("joined", () => {
  $("problem").hidden = true;
});
