// /console: the host's and moderator's console.
//
// Sign in with the admin token (rooms, new rooms) or a room's host or moderator token
// (`#room=…&token=…` in the link signs in at once). The console keeps one WebSocket
// to the room as a host or moderator, which brings host views live (the wall's queue,
// hidden results); it drives the room over the REST API, whose answers carry the
// new host view, so what the host just did shows at once.
//
// What the console shows of each interaction kind (its composer, its cards' results and
// buttons, a tab of its own, room settings it owns) comes from the kind's module
// (registry.js, `console`); the console itself names no kind.

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
  onTokenRefused,
  replace,
  setupLanguage,
  staffBadge,
  t,
  tokenClaims,
} from "/static/common.js";
import { ALERT_WORDS, KeywordAlerts } from "/static/alerts.js";
import { AUDIT_WORDS, AuditPanel } from "/static/auditlog.js";
import { BRIDGE_WORDS, BridgesPanel } from "/static/bridges.js";
import { addWords } from "/static/i18n.js";
import { kindOf, partsOf, phaseOf, titleOf } from "/static/registry.js";
import { RUN_WORDS, RunSheet } from "/static/runsheet.js";
import { field, placeInOrder } from "/static/widgets.js";

addWords(RUN_WORDS);
addWords(ALERT_WORDS);
addWords(AUDIT_WORDS);
addWords(BRIDGE_WORDS);

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
    signedIn = true;
    $("signin-again").hidden = true;
  } catch (err) {
    clearSession();
    showSignIn();
    notify(errorText(err), "error", 10_000);
  }
}

// A token the server no longer takes (it restarted with another secret or admin token)
// turns every call into a 401: stop everything that calls the server and ask once, in
// the sign-in form, to sign in again. Nothing retries with the old token.
let signedIn = false;
function signInAgain() {
  if (!signedIn) return; // a sign-in that fails says so itself
  signedIn = false;
  clearInterval(statsTimer);
  bridgesPanel.stop();
  session.client?.close();
  Object.assign(session, { token: "", admin: false, room: null, role: "", client: null, restToken: "" });
  clearSession();
  $("conn").hidden = true;
  $("level").hidden = true;
  $("room-name").textContent = "";
  document.title = "hudong console";
  showSignIn();
  $("signin-again").hidden = false;
}
onTokenRefused(signInAgain);

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
  bridgesPanel.stop();
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
  });
  client.on("interaction", (/** @type {any} */ view) => drawView(view));
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
  keywordAlerts.attach(client); // keyword_alert notices: the banner (alerts.js)
  // The connection came back but its token was refused (a restart with another secret).
  // The admin's token may still be good: it mints a new host token (a 401 there asks to
  // sign in again). A room token cannot be renewed: sign in again (once).
  // So does a session whose token expired (closed with 4005).
  client.on("close", (/** @type {any} */ info) => {
    if (info.name !== "token_expired" || client !== session.client) return;
    if (!session.admin) signInAgain();
    else openRoom(roomId).catch((/** @type {any} */ e) => e.status === 401 || notify(errorText(e), "error"));
  });
  client.on("error", (/** @type {any} */ err) => {
    if (err.code !== "unauthorized" || client !== session.client) return;
    if (!session.admin) signInAgain();
    else openRoom(roomId).catch((/** @type {any} */ e) => e.status === 401 || notify(errorText(e), "error"));
  });
  await client.open(roomId, { token: wsToken });
  drawLevel(client.degrade ?? 0);
  selectTab(currentTab);
  drawLinks();
  clearInterval(statsTimer);
  statsTimer = window.setInterval(refreshStats, STATS_EVERY_MS);
  refreshStats();
  refreshModeration();
  keywordAlerts.refresh();
  if (session.role === "host") bridgesPanel.start(); // hosts and the admin manage bridges
  else bridgesPanel.hide();
}

const roomPath = (/** @type {string} */ rest = "") => `/rooms/${encodeURIComponent(session.room ?? "")}${rest}`;

/**
 * A host call over REST; errors become notices. Returns the answer, or null.
 * @param {string} path @param {string} method @param {unknown} [body]
 */
async function call(path, method = "POST", body = undefined) {
  try {
    const answer = await api(roomPath(path), { token: session.restToken, method, body });
    if (answer?.view) drawView(answer.view);
    return answer;
  } catch (err) {
    notify(errorText(err), "error");
    return null;
  }
}

const keywordAlerts = new KeywordAlerts({ call, notify });

/** A quiet GET on the room: null when refused. @param {string} path */
async function read(path) {
  try {
    return await api(roomPath(path), { token: session.restToken, method: "GET" });
  } catch {
    return null;
  }
}

const bridgesPanel = new BridgesPanel({ call, read, notify });
$("bridge-form").addEventListener("submit", (event) => {
  event.preventDefault();
  bridgesPanel.add(/** @type {HTMLFormElement} */ (event.target));
});
$("watchlist-form").addEventListener("submit", (event) => {
  event.preventDefault();
  keywordAlerts.add(/** @type {HTMLFormElement} */ (event.target));
});

/** @param {string} iid @param {string} action @param {Record<string, unknown>} [fields] */
const act = (iid, action, fields = {}) => call(`/interactions/${encodeURIComponent(iid)}/actions`, "POST", { action, ...fields });

/**
 * A button (`data-action`) that runs a host action.
 * @param {string} iid @param {string} action
 * @param {{fields?: Record<string, unknown>, text?: string, class?: string, data?: Record<string, string>}} [how]
 */
function actionButton(iid, action, how = {}) {
  return h("button", {
    class: how.class,
    attrs: { type: "button" },
    data: { action, ...how.data },
    text: how.text ?? t(`action.${action}`),
    on: {
      click: () => {
        runSheet.selected = iid; // the card acted on stays in hand
        return act(iid, action, how.fields);
      },
    },
  });
}

/** The console's services for the kinds' parts (the client is the open room's). @type {import("/static/registry.js").ConsoleContext} */
const kindContext = {
  get client() {
    return session.client;
  },
  act,
  button: actionButton,
  download,
  settings: () => session.client?.snapshot?.room?.settings ?? {},
  saveSettings: (settings) => call("", "PATCH", { settings }),
};
/** Each kind's part of the console, by kind name (registry.js). */
const parts = partsOf((kind) => kind.console, () => kindContext);
/** The list of interactions as the event's agenda (runsheet.js). */
const runSheet = new RunSheet({
  client: () => session.client,
  saveSettings: kindContext.saveSettings,
  act,
  redraw: () => drawInteractions(),
  notify,
});

// --- tabs --------------------------------------------------------------------------------------

// A kind with a tab of its own (the wall's queue) gets it after "Interactions".
{
  let tabBefore = /** @type {Element} */ (document.querySelector(".tab[data-tab='interactions']"));
  let panelBefore = /** @type {Element} */ (document.querySelector(".panel[data-panel='interactions']"));
  for (const { kind, part } of parts.values()) {
    if (!part.tab) continue;
    const name = kind.kind;
    const word = `kind.${name}`;
    const tab = h("button", { class: "tab", attrs: { type: "button" }, data: { tab: name, i18n: word }, text: t(word) });
    const heading = `tab-${name}-heading`;
    const panel = h(
      "section",
      { class: "panel", attrs: { id: `tab-${name}` }, data: { panel: name }, aria: { labelledby: heading }, hidden: true },
      h("h1", { class: "visually-hidden", attrs: { id: heading }, data: { i18n: word }, text: t(word) }),
      part.tab.el,
    );
    tabBefore.after(tab);
    panelBefore.after(panel);
    tabBefore = tab;
    panelBefore = panel;
  }
}

// The audit log: who did what in the room (auditlog.js).
const auditLog = new AuditPanel({ path: (rest) => roomPath(rest), token: () => session.restToken, download: (path, name) => download(path, name) });
$("tab-audit").append(auditLog.el);

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
  if (name === "danmaku") {
    refreshModeration();
    void refreshWords();
  }
  if (name === "audit") auditLog.refresh();
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

const composers = [...parts.values()].filter(({ part }) => part.composer);
replace(
  $("new-kind"),
  ...composers.map(({ kind }) => h("option", { attrs: { value: kind.kind }, data: { i18n: `kind.${kind.kind}` }, text: t(`kind.${kind.kind}`) })),
);

/** The composer of the kind chosen. */
function composer() {
  return parts.get(/** @type {HTMLSelectElement} */ ($("new-kind")).value)?.part.composer ?? null;
}

function drawComposer() {
  replace($("composer-fields"), ...(composer()?.fields() ?? []));
  showRelevantFields();
}

/** Show only the fields that apply to what is chosen (a poll's type, a draw's source). */
function showRelevantFields() {
  const value = (/** @type {string} */ id) => /** @type {HTMLSelectElement | null} */ (document.getElementById(id))?.value;
  for (const [id, visible] of Object.entries(composer()?.relevant?.(value) ?? {})) {
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
  drawFeed();
  drawLinks();
  keywordAlerts.draw();
  bridgesPanel.draw();
  if (session.client?.snapshot) drawSettings(session.client.snapshot.room);
});
drawComposer();

$("composer").addEventListener("submit", async (event) => {
  event.preventDefault();
  const data = new FormData(/** @type {HTMLFormElement} */ (event.target));
  const kind = String(data.get("kind"));
  const chosen = composer();
  if (!chosen) return;
  const text = (/** @type {string} */ name) => String(data.get(name) ?? "").trim();
  const spec = chosen.spec({
    text,
    number: (name) => (text(name) ? Number(text(name)) : undefined),
    checked: (name) => Boolean(data.get(name)),
  });
  const created = await call("/interactions", "POST", { kind, spec });
  if (created) {
    notify(t("console.created", { id: created.interaction }), "ok");
    drawComposer();
    runSheet.select(created.interaction);
  }
});

// --- interactions: the cards and the kinds' tabs ---------------------------------------------

/** @type {Map<string, {el: HTMLElement, head: HTMLElement, body: import("/static/registry.js").Mounted, actions: HTMLElement}>} */
const cards = new Map();

let reordering = false;
let composerTouched = false;
$("composer-box").querySelector("summary")?.addEventListener("click", () => {
  composerTouched = true;
});

/** Every view of the room: cards in the list, the kinds' tabs. */
function drawInteractions() {
  const views = [...(session.client?.interactions?.values() ?? [])];
  // in the run-sheet's order; standing ones (every room has them) after the others
  const carded = runSheet.order(views.filter((view) => parts.get(view.kind)?.part.card));
  const list = $("interaction-list");
  const keep = new Set(carded.map((v) => v.id));
  for (const [id, card] of cards) {
    if (!keep.has(id)) {
      card.body.remove?.();
      card.el.remove();
      cards.delete(id);
    }
  }
  for (const view of views) drawView(view, list);
  placeInOrder(list, carded.map((v) => cards.get(v.id)?.el).filter((el) => el !== undefined));
  replace($("run-bar"), ...runSheet.bar());
  // The composer folds away once there is something to run, unless the host opened it.
  if (!composerTouched) /** @type {HTMLDetailsElement} */ ($("composer-box")).open = !carded.some((v) => !kindOf(v)?.standing);
  if (!carded.some((v) => !kindOf(v)?.standing)) {
    if (!list.querySelector(".none")) list.prepend(h("p", { class: "none muted-text", text: t("console.none") }));
  } else list.querySelector(".none")?.remove();
}

/** A view that changed: its card (made if new) and its kind's tab. @param {any} view @param {HTMLElement} [list] */
function drawView(view, list = $("interaction-list")) {
  const found = parts.get(view.kind);
  if (!found) return; // a kind without a module here
  const { kind, part } = found;
  part.tab?.update(view);
  if (!part.card) return;
  let card = cards.get(view.id);
  if (!card) {
    const head = h("header", { class: "card-head" });
    const body = part.card(view);
    const actions = h("div", { class: "row actions" });
    const el = h("article", { class: `card interaction kind-${kind.kind}`, data: { interaction: view.id } }, head, h("div", { class: "card-body" }, body.el), actions);
    card = { el, head, body, actions };
    cards.set(view.id, card);
    list.append(el);
    list.querySelector(".none")?.remove();
    if (!reordering) {
      reordering = true; // its place in the run-sheet, and the others' numbers, once for all new
      queueMicrotask(() => {
        reordering = false;
        drawInteractions();
      });
    }
  }
  const phase = phaseOf(view);
  // Only the card in hand shows its body and buttons; a click on a title takes it.
  const open = runSheet.isOpen(view.id);
  card.el.classList.toggle("folded", !open);
  replace(
    card.head,
    ...runSheet.controls(view),
    h("h2", { class: "card-title" }, h("button", { class: "card-open", attrs: { type: "button" }, aria: { expanded: open ? "true" : "false" }, text: titleOf(view), on: { click: () => runSheet.select(view.id) } })),
    h("span", { class: "tag", text: t(`kind.${kind.kind}`) }),
    h("span", { class: "tag", data: { phase }, text: t(`phase.${phase}`) }),
    h("code", { class: "iid", text: view.id }),
  );
  card.body.update(view);
  replace(card.actions, ...(part.actions?.(view) ?? []));
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
          h("p", {}, staffBadge(e.user), h("strong", { text: e.user?.name ?? "?" }), ` ${formatClock(e.ts ?? Date.now())} · `, `${e.text}${e.count > 1 ? ` ×${e.count}` : ""}`),
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

// --- the room's own blocked words (private to staff: PROTOCOL.md, "Text filter") ------------

/** One word a line, `mask` or `review` before it to do that instead of refusing. */
async function refreshWords() {
  if (!session.room) return;
  const box = /** @type {HTMLTextAreaElement} */ ($("room-words"));
  if (document.activeElement === box) return; // do not pull the text away from the host
  const before = box.value;
  try {
    const { words } = await api(roomPath("/blocklist"), { token: session.restToken });
    // nor when the host began to type while the words were on their way
    if (document.activeElement === box || box.value !== before) return;
    box.value = words.map((/** @type {any} */ w) => (w.action === "reject" ? w.as_typed ?? w.word : `${w.action} ${w.as_typed ?? w.word}`)).join("\n");
  } catch {
    // shown on the next refresh
  }
}

$("words-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const lines = /** @type {HTMLTextAreaElement} */ ($("room-words")).value.split("\n").map((l) => l.trim()).filter(Boolean);
  const words = lines.map((line) => {
    const [first, ...rest] = line.split(/\s+/);
    return ["mask", "review", "reject"].includes(first) && rest.length ? { word: rest.join(" "), action: first } : { word: line, action: "reject" };
  });
  if (await call("/blocklist", "PUT", { words })) notify(t("console.saved"), "ok");
});

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
    h("label", { class: "inline", attrs: { for: "s-links" } }, h("input", { attrs: { id: "s-links", name: "allow_links", type: "checkbox" }, checked: s.allow_links === true }), t("console.settings.links")),
    field("s-floor", "console.settings.floor", h("select", { attrs: { id: "s-floor", name: "degrade_floor" } }, ...[0, 1, 2, 3].map((n) => h("option", { attrs: { value: String(n) }, selected: (s.degrade_floor ?? 0) === n, text: `${n} · ${t(`degrade.${n}`)}` })))),
    ...[...parts.values()].flatMap(({ part }) => part.settings?.fields(s) ?? []),
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
    allow_links: data.get("allow_links") === "on",
    degrade_floor: Number(data.get("degrade_floor")),
    ...Object.assign({}, ...[...parts.values()].map(({ part }) => part.settings?.read(data) ?? {})),
    brand_color: data.get("brand_color"),
    accent_color: data.get("accent_color"),
    logo_url: String(data.get("logo_url") ?? "").trim(),
  };
  const body = session.role === "host" ? { title: String(data.get("title") ?? "").trim(), settings } : null;
  if (!body) return notify(t("error.forbidden"), "error");
  if (await call("", "PATCH", body)) notify(t("console.saved"), "ok");
});

start();
