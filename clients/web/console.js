// /console: the host's and moderator's console.
//
// Sign in with the admin token (rooms, new rooms) or a room's host or moderator token
// (`#room=…&token=…` in the link signs in at once). The console keeps one WebSocket
// to the room as a host or moderator, which brings host views live (the wall's queue,
// hidden results); it drives the room over the REST API, whose answers carry the
// new host view, so what the host just did shows at once.

import {
  ApiError,
  api,
  connectClient,
  errorText,
  formatClock,
  formatNumber,
  h,
  hideTokenFromAddressBar,
  linkParams,
  notify,
  replace,
  setupLanguage,
  t,
  tokenClaims,
} from "/static/common.js";
import { DesignBoard, PollBoard, shortHash, winnerList } from "/static/views.js";

const FEED_KEEP = 100;
const STATS_EVERY_MS = 2000;
const SESSION_KEY = "hudong.console";
const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));

setupLanguage();

/** @type {{token: string, admin: boolean, room: string | null, role: string, client: any, restToken: string}} */
const session = { token: "", admin: false, room: null, role: "", client: null, restToken: "" };
/** @type {any[]} */
let feed = [];
let statsTimer = 0;
let currentTab = "live";

// --- signing in -----------------------------------------------------------------------------

async function start() {
  const params = linkParams();
  const saved = readSession();
  const token = params.get("token") ?? saved?.token ?? "";
  const room = params.get("room") ?? saved?.room ?? null;
  hideTokenFromAddressBar();
  if (!token) return showSignIn();
  await signIn(token, room);
}

/** @param {string} token @param {string | null} room */
async function signIn(token, room) {
  const claims = tokenClaims(token);
  try {
    if (claims && typeof claims.room === "string") {
      if (!["host", "moderator"].includes(claims.role)) {
        throw new ApiError(403, "forbidden", t("error.forbidden"));
      }
      Object.assign(session, { token, admin: false, role: claims.role, restToken: token });
      saveSession(token, claims.room);
      await openRoom(claims.room);
    } else {
      await api("/rooms", { token }); // is it the admin token?
      Object.assign(session, { token, admin: true, role: "host", restToken: token });
      saveSession(token, room);
      if (room) await openRoom(room);
      else await showRooms();
    }
  } catch (err) {
    clearSession();
    showSignIn();
    notify(errorText(err), "error", 10_000);
  }
}

function showSignIn() {
  show("signin");
  $("signout").hidden = true;
  /** @type {HTMLInputElement} */ ($("signin-token")).focus();
}

$("signin-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($("signin-token"));
  const token = input.value.trim();
  input.value = "";
  if (token) signIn(token, null);
});

$("signout").addEventListener("click", () => {
  clearSession();
  session.client?.close();
  location.hash = "";
  location.reload();
});

// The admin goes back from a room to the list of rooms (a room token has only its room).
$("to-rooms").addEventListener("click", () => {
  session.client?.close();
  session.client = null;
  session.room = null;
  clearInterval(statsTimer);
  saveSession(session.token, null);
  $("room-name").textContent = "";
  $("conn").hidden = true;
  $("level").hidden = true;
  document.title = "hudong console";
  showRooms();
});

/** @param {"signin"|"rooms"|"room"} which */
function show(which) {
  for (const id of ["signin", "rooms", "room"]) $(id).hidden = id !== which;
  $("to-rooms").hidden = !(which === "room" && session.admin);
}

function readSession() {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null");
  } catch {
    return null;
  }
}

/** @param {string} token @param {string | null} room */
function saveSession(token, room) {
  try {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ token, room }));
  } catch {
    // the tab forgets it on reload: fine
  }
}

function clearSession() {
  try {
    sessionStorage.removeItem(SESSION_KEY);
  } catch {
    // nothing kept
  }
}

// --- rooms (admin) ------------------------------------------------------------------------

async function showRooms() {
  show("rooms");
  $("signout").hidden = false;
  const { rooms } = await api("/rooms", { token: session.restToken });
  replace(
    $("room-list"),
    ...rooms.map((/** @type {any} */ r) =>
      h(
        "li",
        { class: "row" },
        h("span", { class: "grow" }, h("strong", { text: r.title }), ` (${r.id}) · `, t("online", { n: r.online })),
        h("button", { class: "secondary small", attrs: { type: "button" }, text: t("console.rooms.open"), on: { click: () => openRoom(r.id) } }),
      ),
    ),
  );
}

$("room-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = /** @type {HTMLFormElement} */ (event.target);
  const data = new FormData(form);
  const title = String(data.get("title") ?? "").trim();
  try {
    const room = await api("/rooms", { token: session.restToken, method: "POST", body: { id: data.get("id"), ...(title ? { title } : {}) } });
    form.reset();
    await openRoom(room.id);
  } catch (err) {
    notify(errorText(err), "error");
  }
});

// --- the room ------------------------------------------------------------------------------

/** @param {string} roomId */
async function openRoom(roomId) {
  session.room = roomId;
  saveSession(session.token, roomId);
  let wsToken = session.token;
  if (session.admin) {
    // The admin token is not a room token: the console joins as a host of its own.
    const minted = await api(`/rooms/${encodeURIComponent(roomId)}/tokens`, {
      token: session.restToken,
      method: "POST",
      body: { role: "host", user_id: "console-admin", name: "Admin", ttl_s: 12 * 3600 },
    });
    wsToken = minted.token;
  }
  session.client?.close();
  const client = connectClient();
  session.client = client;
  $("conn").hidden = false;
  $("signout").hidden = false;
  show("room");
  client.on("snapshot", (snapshot) => {
    $("room-name").textContent = `${snapshot.room.title} (${snapshot.room.id})`;
    document.title = `${snapshot.room.title} · hudong console`;
    feed = [...(snapshot.recent ?? [])];
    drawFeed();
    drawSettings(snapshot.room);
    drawInteractions();
    drawWall();
  });
  client.on("interaction", (/** @type {any} */ view) => {
    if (view.kind === "wall") drawWall();
    else drawInteraction(view);
  });
  client.on("danmaku", (/** @type {any} */ event) => {
    feed.push(event);
    if (feed.length > FEED_KEEP) feed.splice(0, feed.length - FEED_KEEP);
    drawFeed();
  });
  client.on("retract", (/** @type {any} */ event) => {
    feed = feed.filter((e) => e.id !== event.id);
    drawFeed();
  });
  client.on("degrade", (/** @type {any} */ notice) => drawLevel(notice.level));
  await client.open(roomId, { token: wsToken });
  drawLevel(client.degrade ?? 0);
  selectTab(currentTab);
  drawLinks();
  clearInterval(statsTimer);
  statsTimer = window.setInterval(refreshStats, STATS_EVERY_MS);
  refreshStats();
  refreshModeration();
}

const roomPath = (/** @type {string} */ rest = "") => `/rooms/${encodeURIComponent(session.room ?? "")}${rest}`;

/**
 * A host call over REST; errors become notices. Returns the answer, or null.
 * @param {string} path @param {string} method @param {unknown} [body]
 */
async function call(path, method = "POST", body = undefined) {
  try {
    const answer = await api(roomPath(path), { token: session.restToken, method, body });
    if (answer?.view) drawInteraction(answer.view);
    return answer;
  } catch (err) {
    notify(errorText(err), "error");
    return null;
  }
}

/** @param {string} iid @param {string} action @param {Record<string, unknown>} [fields] */
const act = (iid, action, fields = {}) => call(`/interactions/${encodeURIComponent(iid)}/actions`, "POST", { action, ...fields });

// --- tabs --------------------------------------------------------------------------------------

for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => selectTab(/** @type {HTMLElement} */ (tab).dataset.tab ?? "live"));
}

/** @param {string} name */
function selectTab(name) {
  currentTab = name;
  for (const tab of document.querySelectorAll(".tab")) {
    const on = /** @type {HTMLElement} */ (tab).dataset.tab === name;
    if (on) tab.setAttribute("aria-current", "page");
    else tab.removeAttribute("aria-current");
  }
  for (const panel of document.querySelectorAll(".panel")) {
    /** @type {HTMLElement} */ (panel).hidden = /** @type {HTMLElement} */ (panel).dataset.panel !== name;
  }
  if (name === "danmaku") refreshModeration();
}

// --- live counts and links ------------------------------------------------------------------

async function refreshStats() {
  if (!session.room || $("room").hidden) return;
  try {
    const stats = await api(roomPath("/stats"), { token: session.restToken });
    const items = [
      ["console.stats.online", stats.online, "online"],
      ["console.stats.participants", stats.participants, "participants"],
      ["console.stats.danmaku", stats.danmaku_per_min, "danmaku"],
      ["console.stats.votes", stats.votes_per_min, "votes"],
      ["console.stats.posts", stats.posts_per_min, "posts"],
    ];
    replace(
      $("stats"),
      ...items.map(([key, value, name]) => h("div", { class: "stat", data: { stat: name } }, h("dt", { text: t(String(key)) }), h("dd", { text: formatNumber(Number(value)), data: { count: value } }))),
      h("div", { class: "stat", data: { stat: "degrade" } }, h("dt", { text: t("console.stats.degrade") }), h("dd", { text: `${stats.degrade} · ${t(`degrade.${stats.degrade}`)}` })),
    );
    drawLevel(stats.degrade);
  } catch {
    // the next round tries again; the connection badge says what is wrong
  }
}

/** @param {number} level */
function drawLevel(level) {
  const tag = $("level");
  tag.hidden = false;
  tag.textContent = `${t("degrade.label")} ${level}`;
  tag.dataset.level = String(level);
}

/** @type {{overlay?: string, wall?: string}} */
let screenLinks = {};

function drawLinks() {
  const origin = location.origin;
  const room = encodeURIComponent(session.room ?? "");
  const links = [["console.links.live", `${origin}/live/${room}`]];
  if (screenLinks.overlay) links.push(["console.links.overlay", screenLinks.overlay]);
  if (screenLinks.wall) links.push(["console.links.wall", screenLinks.wall]);
  replace(
    $("links"),
    ...links.map(([key, url]) =>
      h(
        "li",
        { class: "link-row" },
        h("span", { class: "link-name", text: t(key) }),
        h("a", { attrs: { href: url }, text: url.replace(/#token=.*/, "#token=…") }),
        h("button", {
          class: "secondary small",
          attrs: { type: "button" },
          text: t("console.links.copy"),
          on: {
            click: async (/** @type {Event} */ e) => {
              await navigator.clipboard?.writeText(url).catch(() => {});
              /** @type {HTMLElement} */ (e.target).textContent = t("console.links.copied");
            },
          },
        }),
      ),
    ),
  );
  $("make-links").hidden = session.role !== "host" || Boolean(screenLinks.overlay);
}

$("make-links").addEventListener("click", async () => {
  const minted = await call("/tokens", "POST", { role: "screen", name: "Screen", ttl_s: 7 * 24 * 3600 });
  if (!minted) return;
  const room = encodeURIComponent(session.room ?? "");
  screenLinks = {
    overlay: `${location.origin}/overlay/${room}#token=${minted.token}`,
    wall: `${location.origin}/wall/${room}#token=${minted.token}`,
  };
  drawLinks();
});

// --- interactions: the composer ------------------------------------------------------------

/** @param {string} id @param {string} key @param {Node} control */
const field = (id, key, control) => h("div", { class: "field" }, h("label", { attrs: { for: id }, text: t(key) }), control);
/** @param {string} id @param {string} key @param {Record<string, any>} [attrs] */
const input = (id, key, attrs = {}) => field(id, key, h("input", { attrs: { id, name: id, ...attrs } }));
/** @param {string} id @param {string} key @param {string[][]} options */
const select = (id, key, options) =>
  field(id, key, h("select", { attrs: { id, name: id } }, ...options.map(([value, label]) => h("option", { attrs: { value }, text: t(label) }))));
/** @param {string} id @param {string} key */
const checkbox = (id, key) => h("label", { class: "inline", attrs: { for: id } }, h("input", { attrs: { type: "checkbox", id, name: id } }), t(key));
/** @param {string} id @param {string} key @param {string} placeholder */
const area = (id, key, placeholder) => field(id, key, h("textarea", { attrs: { id, name: id, rows: 4, placeholder } }));

function drawComposer() {
  const kind = /** @type {HTMLSelectElement} */ ($("new-kind")).value;
  const fields = [];
  if (kind === "poll") {
    fields.push(
      input("f-question", "console.question", { required: true, maxlength: 200 }),
      select("f-type", "console.polltype", ["single", "multiple", "ranked", "rating", "text"].map((k) => [k, `polltype.${k}`])),
      area("f-options", "console.options", "A\nB\nC"),
      h("div", { class: "row" }, input("f-min", "console.minpicks", { type: "number", min: 1, max: 20 }), input("f-max", "console.maxpicks", { type: "number", min: 1, max: 20 }), select("f-scale", "console.scale", [["5", "5"], ["10", "10"]])),
      input("f-duration", "console.duration", { type: "number", min: 1, max: 86400 }),
      checkbox("f-hide", "console.hide"),
    );
  } else if (kind === "quiz") {
    fields.push(input("f-title", "console.titlefield", { required: true, maxlength: 100 }), area("f-questions", "console.quiz.questions", "2 + 2? | 3, 4, 5 | 2"));
  } else if (kind === "codesign") {
    fields.push(input("f-title", "console.titlefield", { required: true, maxlength: 100 }), area("f-slots", "console.slots", "Bun | Sesame, Brioche\nSauce | Tomato, Mala"));
  } else if (kind === "draw") {
    fields.push(
      input("f-title", "console.titlefield", { required: true, maxlength: 100 }),
      h("div", { class: "row" }, input("f-winners", "console.winners", { type: "number", min: 1, max: 1000, value: 1 }), select("f-source", "console.source", ["entry", "presence", "keyword", "poll"].map((k) => [k, `source.${k}`]))),
      h("div", { class: "row" }, input("f-keyword", "console.keyword", { maxlength: 32 }), input("f-window", "console.window", { type: "number", min: 1, max: 86400 }), input("f-poll", "console.pollid", { maxlength: 64 })),
      checkbox("f-exclude", "console.exclude"),
    );
  } else {
    fields.push(input("f-title", "console.titlefield", { required: true, maxlength: 100 }));
  }
  replace($("composer-fields"), ...fields);
  showRelevantFields();
}

/** Show only the fields that apply to the chosen poll type or draw source. */
function showRelevantFields() {
  const kind = /** @type {HTMLSelectElement} */ ($("new-kind")).value;
  const value = (/** @type {string} */ id) => /** @type {HTMLSelectElement | null} */ (document.getElementById(id))?.value;
  /** @type {Record<string, boolean>} */
  const shown = {};
  if (kind === "poll") {
    const type = value("f-type");
    shown["f-options"] = ["single", "multiple", "ranked"].includes(type ?? "");
    shown["f-min"] = shown["f-max"] = type === "multiple" || type === "ranked";
    shown["f-scale"] = type === "rating";
  } else if (kind === "draw") {
    const source = value("f-source");
    shown["f-keyword"] = shown["f-window"] = source === "keyword";
    shown["f-poll"] = source === "poll";
  }
  for (const [id, visible] of Object.entries(shown)) {
    const control = document.getElementById(id);
    const holder = /** @type {HTMLElement | null} */ (control?.closest(".field") ?? null);
    if (holder) holder.hidden = !visible;
  }
}

$("composer-fields").addEventListener("change", showRelevantFields);

$("new-kind").addEventListener("change", drawComposer);
window.addEventListener("langchange", () => {
  drawComposer();
  drawInteractions();
  drawWall();
  drawFeed();
  drawLinks();
  if (session.client?.snapshot) drawSettings(session.client.snapshot.room);
});
drawComposer();

/** @param {string} kind */
const newId = (kind) => `${kind}-${Date.now().toString(36)}`;
/** @param {string} text */
const lines = (text) => text.split("\n").map((l) => l.trim()).filter(Boolean);
/** @param {string} text */
const items = (text) => text.split(/[,，、]/).map((x) => x.trim()).filter(Boolean);

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(/** @type {HTMLFormElement} */ (event.target));
  const kind = String(data.get("kind"));
  const value = (/** @type {string} */ name) => String(data.get(name) ?? "").trim();
  const num = (/** @type {string} */ name) => (value(name) ? Number(value(name)) : undefined);
  /** @type {Record<string, any>} */
  let spec;
  if (kind === "poll") {
    const type = value("f-type");
    spec = { id: newId("poll"), question: value("f-question"), kind: type };
    if (["single", "multiple", "ranked"].includes(type)) {
      spec.options = lines(value("f-options")).map((label, i) => ({ id: `o${i + 1}`, label }));
    }
    if (type === "multiple" || type === "ranked") {
      if (num("f-min")) spec.min_picks = num("f-min");
      if (num("f-max")) spec.max_picks = num("f-max");
    }
    if (type === "rating") spec.scale = Number(value("f-scale") || 5);
    if (num("f-duration")) spec.duration_s = num("f-duration");
    if (data.get("f-hide")) spec.hide_results_until_reveal = true;
  } else if (kind === "quiz") {
    spec = {
      id: newId("quiz"),
      title: value("f-title"),
      questions: lines(value("f-questions")).map((line, i) => {
        const [text, options = "", correct = "1"] = line.split("|").map((x) => x.trim());
        const opts = items(options).map((label, j) => ({ id: `o${j + 1}`, label }));
        return { id: `q${i + 1}`, text, options: opts, correct: `o${Math.max(1, Number(correct) || 1)}` };
      }),
    };
  } else if (kind === "codesign") {
    spec = {
      id: newId("design"),
      title: value("f-title"),
      slots: lines(value("f-slots")).map((line, i) => {
        const [label, options = ""] = line.split("|").map((x) => x.trim());
        return { id: `s${i + 1}`, label, options: items(options).map((l, j) => ({ id: `o${j + 1}`, label: l })) };
      }),
    };
  } else if (kind === "draw") {
    const source = value("f-source");
    spec = { id: newId("draw"), title: value("f-title"), winners: num("f-winners") ?? 1, source };
    if (source === "keyword") {
      spec.keyword = value("f-keyword");
      if (num("f-window")) spec.window_s = num("f-window");
    }
    if (source === "poll") spec.poll_id = value("f-poll");
    if (data.get("f-exclude")) spec.exclude_previous_winners = true;
  } else {
    spec = { id: newId("qa"), title: value("f-title") };
  }
  const created = await call("/interactions", "POST", { kind, spec });
  if (created) {
    notify(t("console.created", { id: created.interaction }), "ok");
    drawComposer();
  }
});

// --- interactions: the cards ----------------------------------------------------------------

/** @type {Map<string, {el: HTMLElement, board?: any}>} */
const cards = new Map();

function drawInteractions() {
  const views = [...(session.client?.interactions?.values() ?? [])].filter((v) => v.kind !== "wall");
  views.sort((a, b) => (a.kind === "checkin" ? 1 : 0) - (b.kind === "checkin" ? 1 : 0));
  const list = $("interaction-list");
  const keep = new Set(views.map((v) => v.id));
  for (const [id, card] of cards) {
    if (!keep.has(id)) {
      card.el.remove();
      cards.delete(id);
    }
  }
  for (const view of views) drawInteraction(view, list);
  if (!views.some((v) => v.kind !== "checkin")) {
    if (!list.querySelector(".none")) list.prepend(h("p", { class: "none muted-text", text: t("console.none") }));
  } else list.querySelector(".none")?.remove();
}

/** @param {any} view @param {HTMLElement} [list] */
function drawInteraction(view, list = $("interaction-list")) {
  if (view.kind === "wall") return drawWall();
  let card = cards.get(view.id);
  if (!card) {
    card = { el: h("article", { class: `card interaction kind-${view.kind}`, data: { interaction: view.id } }) };
    cards.set(view.id, card);
    if (view.kind === "checkin") list.append(card.el);
    else list.prepend(card.el);
    list.querySelector(".none")?.remove();
  }
  const phase = phaseOf(view);
  const title = view.spec?.question ?? view.spec?.title ?? view.id;
  const head = h(
    "header",
    { class: "card-head" },
    h("h2", { class: "card-title" }, title),
    h("span", { class: "tag", text: t(`kind.${view.kind}`) }),
    h("span", { class: "tag", data: { phase }, text: t(`phase.${phase}`) }),
    h("code", { class: "iid", text: view.id }),
  );
  const actions = h("div", { class: "row actions" }, ...actionButtons(view, phase));
  const body = h("div", { class: "card-body" });
  if (view.kind === "poll") {
    card.board ??= new PollBoard({ showTitle: false });
    card.board.update(view);
    body.append(card.board.el);
  } else if (view.kind === "codesign") {
    card.board ??= new DesignBoard();
    card.board.update(view);
    body.append(card.board.el);
  } else if (view.kind === "draw") {
    body.append(drawDetails(view));
  } else if (view.kind === "quiz") {
    body.append(quizDetails(view));
  } else if (view.kind === "qa") {
    body.append(qaDetails(view));
  } else if (view.kind === "checkin") {
    body.append(h("p", { class: "big", data: { count: view.count } }, formatNumber(view.count ?? 0)));
  }
  replace(card.el, head, body, actions);
}

/** @param {any} view */
function phaseOf(view) {
  if (view.kind === "draw") return view.state?.phase === "drawn" ? "drawn" : "open";
  if (view.kind === "codesign") return view.state?.phase ?? "draft";
  if (view.kind === "quiz") return view.state?.finished ? "finished" : view.state?.current ? "asking" : "draft";
  return view.status?.phase ?? "draft";
}

/** @param {any} view @param {string} phase */
function actionButtons(view, phase) {
  /** @type {HTMLElement[]} */
  const out = [];
  const button = (/** @type {string} */ action, /** @type {Record<string, unknown>} */ fields = {}, /** @type {string} */ label = `action.${action}`, cls = "") =>
    h("button", { class: cls, attrs: { type: "button" }, data: { action }, text: t(label), on: { click: () => act(view.id, action, fields) } });
  if (view.kind === "poll") {
    if (phase === "draft") out.push(button("open"));
    if (phase === "open") out.push(button("close"));
    if (phase === "closed") out.push(button("reveal"));
  } else if (view.kind === "quiz") {
    const asked = view.state?.asked?.length ?? 0;
    const total = view.spec?.questions?.length ?? 0;
    if (!view.state?.finished) {
      if (asked < total && !view.accepting) out.push(button("ask"));
      if (view.accepting) out.push(button("close"));
      if (view.state?.current && !view.accepting && !view.state?.revealed) out.push(button("reveal"));
      if (asked > 0) out.push(button("finish", {}, "action.finish", "secondary"));
    }
  } else if (view.kind === "codesign") {
    if (phase === "draft") out.push(button("open"));
    if (phase === "open") {
      for (const slot of view.results?.slots ?? []) {
        if (!slot.locked) out.push(h("button", { class: "secondary", attrs: { type: "button" }, data: { action: "lock", slot: slot.id }, text: `${t("action.lock")}: ${slot.label}`, on: { click: () => act(view.id, "lock", { slot: slot.id }) } }));
      }
      out.push(button("lock_all"));
    }
    if (phase === "closed") out.push(button("reveal"));
  } else if (view.kind === "draw") {
    if (phase === "open") out.push(button("run"));
    else out.push(h("button", { class: "secondary", attrs: { type: "button" }, data: { action: "audit" }, text: t("action.audit"), on: { click: () => downloadAudit(view.id) } }));
  } else if (view.kind === "qa") {
    if (phase === "draft") out.push(button("open"));
    if (phase === "open") out.push(button("close"));
  } else if (view.kind === "checkin") {
    out.push(phase === "open" ? button("close") : button("open"));
    out.push(h("button", { class: "secondary", attrs: { type: "button" }, text: t("action.export"), on: { click: () => download(`/interactions/checkin/export?format=csv`, "checkins.csv") } }));
  }
  return out;
}

/** @param {any} view */
function drawDetails(view) {
  const state = view.state ?? {};
  return h(
    "div",
    { class: "draw-details" },
    h("p", { text: t("console.entrants", { n: formatNumber(view.entrants ?? 0) }) }),
    h("p", {}, `${t("console.commitment")}: `, h("code", { class: "hash", data: { commitment: state.commitment ?? "" }, text: state.commitment ?? "" })),
    state.phase === "drawn" ? h("p", {}, `${t("console.seed")}: `, h("code", { class: "hash", text: state.seed ?? "" })) : null,
    state.phase === "drawn" ? winnerList(state.winners ?? [], view.names ?? {}) : null,
    state.phase === "drawn" ? h("p", { class: "muted-text", text: t("console.verify", { file: `${view.id}.json` }) }) : null,
  );
}

/** @param {any} view */
function quizDetails(view) {
  const current = view.spec?.questions?.find((/** @type {any} */ q) => q.id === view.state?.current);
  const results = (view.results ?? []).find((/** @type {any} */ r) => r.question === view.state?.current);
  return h(
    "div",
    {},
    current ? h("p", { text: t("console.current", { text: current.text }) }) : null,
    results
      ? h("ol", { class: "bars" }, ...results.options.map((/** @type {any} */ o) => h("li", { class: `bar-row${o.id === current?.correct ? " leading" : ""}`, data: { option: o.id } }, h("span", { class: "label", text: o.label }), h("span", { class: "figures" }, h("span", { class: "count", text: formatNumber(o.count) })))))
      : null,
    view.leaderboard?.length
      ? h("div", {}, h("h3", { text: t("console.leaderboard") }), h("ol", {}, ...view.leaderboard.map((/** @type {any} */ row) => h("li", { text: `${row.name ?? row.viewer} · ${row.points}` }))))
      : null,
  );
}

/** @param {any} view */
function qaDetails(view) {
  return h(
    "ol",
    { class: "items" },
    ...(view.questions ?? []).map((/** @type {any} */ q) => {
      const answerId = `answer-${view.id}-${q.id}`;
      const answer = h("input", { attrs: { id: answerId, maxlength: 2000, value: q.answer ?? "" } });
      answer.setAttribute("placeholder", t("console.answer.placeholder"));
      return h(
        "li",
        { class: `item${q.hidden ? " hidden-item" : ""}`, data: { question: q.id } },
        h("p", {}, h("strong", { text: q.name ?? "?" }), ` · ${t("live.votes", { n: q.votes })} · `, q.text),
        h(
          "div",
          { class: "row" },
          h("label", { class: "visually-hidden", attrs: { for: answerId }, text: t("action.answer") }),
          answer,
          h("button", { class: "small", attrs: { type: "button" }, text: t("action.answer"), on: { click: () => act(view.id, "answer", { question: q.id, ...(answer.value.trim() ? { text: answer.value.trim() } : {}) }) } }),
          h("button", { class: "small secondary", attrs: { type: "button" }, text: t(q.pinned_at ? "action.unpin" : "action.pin"), on: { click: () => act(view.id, q.pinned_at ? "unpin" : "pin", { question: q.id }) } }),
          h("button", { class: "small secondary", attrs: { type: "button" }, text: t(q.hidden ? "action.unhide" : "action.hide"), on: { click: () => act(view.id, q.hidden ? "unhide" : "hide", { question: q.id }) } }),
        ),
      );
    }),
  );
}

/** @param {string} path @param {string} filename */
async function download(path, filename) {
  try {
    const response = await api(roomPath(path), { token: session.restToken, raw: true });
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const link = h("a", { attrs: { href: url, download: filename } });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  } catch (err) {
    notify(errorText(err), "error");
  }
}

/** @param {string} iid */
const downloadAudit = (iid) => download(`/interactions/${encodeURIComponent(iid)}/audit`, `${iid}.json`);

// --- the wall ------------------------------------------------------------------------------

function drawWall() {
  const wall = session.client?.interactions?.get("wall");
  if (!wall) return;
  const settings = session.client?.snapshot?.room?.settings ?? {};
  const open = wall.status?.phase === "open";
  const name = "wall-moderation";
  replace(
    $("wall-tools"),
    h(
      "fieldset",
      {},
      h("legend", { text: t("console.wall.moderation") }),
      ...["pre", "post"].map((mode) =>
        h(
          "label",
          { class: "inline", attrs: { for: `wallmod-${mode}` } },
          h("input", { attrs: { type: "radio", name, id: `wallmod-${mode}`, value: mode }, checked: (settings.wall_moderation ?? "pre") === mode, on: { change: () => call("", "PATCH", { settings: { wall_moderation: mode } }) } }),
          t(`wallmod.${mode}`),
        ),
      ),
    ),
    h("div", { class: "row" }, h("span", { class: "tag", data: { phase: open ? "open" : "closed" }, text: t(`phase.${open ? "open" : "closed"}`) }), h("button", { class: "secondary", attrs: { type: "button" }, text: t(open ? "action.close" : "action.open"), on: { click: () => act("wall", open ? "close" : "open") } })),
  );
  const post = (/** @type {any} */ p, /** @type {HTMLElement[]} */ buttons) =>
    h("li", { class: `item${p.pinned_at ? " pinned" : ""}`, data: { post: p.id } }, h("p", {}, h("strong", { text: p.name ?? "?" }), " ", p.text), h("div", { class: "row" }, ...buttons));
  const button = (/** @type {string} */ action, /** @type {string} */ id, cls = "small") =>
    h("button", { class: cls, attrs: { type: "button" }, data: { action }, text: t(`action.${action}`), on: { click: () => act("wall", action, { post: id }) } });
  const queue = wall.queue ?? [];
  replace($("wall-queue"), ...(queue.length ? queue.map((p) => post(p, [button("approve", p.id), button("reject", p.id, "small danger")])) : [h("li", { class: "muted-text", text: t("console.wall.queue.empty") })]));
  replace($("wall-approved"), ...(wall.posts ?? []).map((p) => post(p, [button(p.pinned_at ? "unpin" : "pin", p.id, "small secondary"), button("reject", p.id, "small danger")])));
}

// --- danmaku moderation -----------------------------------------------------------------------

function drawFeed() {
  const list = $("danmaku-feed");
  if (!feed.length) {
    replace(list, h("li", { class: "muted-text", text: t("console.danmaku.empty") }));
    return;
  }
  const moderate = (/** @type {string} */ action, /** @type {Record<string, unknown>} */ fields, cls = "small secondary") =>
    h("button", { class: cls, attrs: { type: "button" }, data: { action }, text: t(`action.${action}`), on: { click: () => moderation(action, fields) } });
  replace(
    list,
    ...feed
      .slice()
      .reverse()
      .map((e) =>
        h(
          "li",
          { class: "item", data: { id: e.id, user: e.user?.id ?? "" } },
          h("p", {}, h("strong", { text: e.user?.name ?? "?" }), ` ${formatClock(e.ts ?? Date.now())} · `, `${e.text}${e.count > 1 ? ` ×${e.count}` : ""}`),
          h(
            "div",
            { class: "row" },
            moderate("retract", { event: e.id }),
            e.user?.role === "viewer" ? moderate("mute", { user: e.user.id, duration_s: 600 }) : null,
            e.user?.role === "viewer" ? moderate("ban", { user: e.user.id }, "small danger") : null,
          ),
        ),
      ),
  );
}

/** @param {string} action @param {Record<string, unknown>} fields */
async function moderation(action, fields) {
  const done = await call("/moderation", "POST", { action, ...fields });
  if (done) {
    notify(`${t(`action.${action}`)} ✓`, "ok");
    refreshModeration();
  }
}

async function refreshModeration() {
  if (!session.room) return;
  try {
    const { muted, banned } = await api(roomPath("/moderation"), { token: session.restToken });
    const rows = [
      ...muted.map((/** @type {any} */ m) => h("li", { class: "row item", data: { user: m.user } }, h("span", { class: "grow" }, `${m.user} · ${t("console.danmaku.muted")} ${t("console.until", { time: formatClock(m.muted_until) })}`), h("button", { class: "small secondary", attrs: { type: "button" }, text: t("action.unmute"), on: { click: () => moderation("unmute", { user: m.user }) } }))),
      ...banned.map((/** @type {any} */ b) => h("li", { class: "row item", data: { user: b.user } }, h("span", { class: "grow" }, `${b.user} · ${t("console.danmaku.banned")}`), h("button", { class: "small secondary", attrs: { type: "button" }, text: t("action.unban"), on: { click: () => moderation("unban", { user: b.user }) } }))),
    ];
    replace($("moderation"), ...(rows.length ? rows : [h("li", { class: "muted-text", text: "–" })]));
  } catch {
    // shown on the next refresh
  }
}

// --- room settings ----------------------------------------------------------------------------

/** @param {any} room */
function drawSettings(room) {
  const s = room.settings ?? {};
  const form = $("settings-form");
  if (form.contains(document.activeElement)) return; // do not pull a field away from the host
  const option = (/** @type {string} */ value, /** @type {string} */ key, /** @type {unknown} */ current) => h("option", { attrs: { value }, selected: String(current) === value, text: t(key) });
  replace(
    form,
    field("s-title", "console.settings.title", h("input", { attrs: { id: "s-title", name: "title", maxlength: 200, value: room.title } })),
    field("s-mode", "console.settings.mode", h("select", { attrs: { id: "s-mode", name: "mode" } }, ...["open", "slow", "staff"].map((m) => option(m, `roommode.${m}`, s.mode)))),
    field("s-slow", "console.settings.slow", h("input", { attrs: { id: "s-slow", name: "slow_mode_s", type: "number", min: 1, max: 600, value: s.slow_mode_s ?? 5 } })),
    h("label", { class: "inline", attrs: { for: "s-anon" } }, h("input", { attrs: { id: "s-anon", name: "allow_anonymous", type: "checkbox" }, checked: s.allow_anonymous !== false }), t("console.settings.anonymous")),
    field("s-floor", "console.settings.floor", h("select", { attrs: { id: "s-floor", name: "degrade_floor" } }, ...[0, 1, 2, 3].map((n) => h("option", { attrs: { value: String(n) }, selected: (s.degrade_floor ?? 0) === n, text: `${n} · ${t(`degrade.${n}`)}` })))),
    field("s-wallmod", "console.wall.moderation", h("select", { attrs: { id: "s-wallmod", name: "wall_moderation" } }, option("pre", "wallmod.pre", s.wall_moderation ?? "pre"), option("post", "wallmod.post", s.wall_moderation ?? "pre"))),
    h("div", { class: "row" }, field("s-brand", "console.settings.brand", h("input", { attrs: { id: "s-brand", name: "brand_color", type: "color", value: s.brand_color ?? "#e4007f" } })), field("s-accent", "console.settings.accent", h("input", { attrs: { id: "s-accent", name: "accent_color", type: "color", value: s.accent_color ?? "#ffc400" } }))),
    field("s-logo", "console.settings.logo", h("input", { attrs: { id: "s-logo", name: "logo_url", maxlength: 500, value: s.logo_url ?? "" } })),
    h("button", { attrs: { type: "submit" }, text: t("console.settings.save") }),
  );
}

$("settings-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(/** @type {HTMLFormElement} */ (event.target));
  const settings = {
    mode: data.get("mode"),
    slow_mode_s: Number(data.get("slow_mode_s")),
    allow_anonymous: data.get("allow_anonymous") === "on",
    degrade_floor: Number(data.get("degrade_floor")),
    wall_moderation: data.get("wall_moderation"),
    brand_color: data.get("brand_color"),
    accent_color: data.get("accent_color"),
    logo_url: String(data.get("logo_url") ?? "").trim(),
  };
  const body = session.role === "host" ? { title: String(data.get("title") ?? "").trim(), settings } : null;
  if (!body) return notify(t("error.forbidden"), "error");
  if (await call("", "PATCH", body)) notify(t("console.saved"), "ok");
});

start();
