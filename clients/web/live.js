// /live/{room}: the viewer page, for phones first (360 px wide and up).
//
// A viewer joins anonymously (if the room allows it) or with `#token=<viewer token>`.
// An anonymous viewer's own token (from `joined`) is kept in localStorage per room, so
// a reload or a reconnect is the same viewer and its votes stay exactly-once; a new
// name joins again with that token, so the guest keeps its id (one device, one
// guest: its ballots, check-in and draw entries stay its own). Votes,
// picks, answers, entries, questions, check-ins and posts go through the client
// library, which retries them with the same idempotency key until acknowledged.
//
// Each interaction's card is drawn by its kind's module (registry.js, `live`): the page
// asks each whether to show a view now, and keeps the cards in the kinds' order. What is
// open now stays on top; ended interactions fold away below it (a `details` each, that
// the viewer may open), folded while something is open to take part in and unfolded
// when nothing is (the results are then what there is to see), unless the viewer chose. Nothing but the viewer scrolls the page: new messages scroll
// the feed's own box, and only while it is at its newest.

import {
  connectClient,
  errorText,
  formatClock,
  formatNumber,
  h,
  hideTokenFromAddressBar,
  lang,
  linkParams,
  notify,
  replace,
  roomFromPath,
  setupLanguage,
  t,
} from "/static/common.js";
import { partsOf, phaseOf, titleOf } from "/static/registry.js";
import { placeInOrder } from "/static/widgets.js";

const FEED_KEEP = 100;
const ENDED_PHASES = new Set(["closed", "revealed", "finished"]); // unless a kind says (`ended`)
const SHOW_RESULTS_S = 120; // an ended poll's results stay on the page this long
const COLORS = [
  ["white", "#ffffff"],
  ["red", "#ff4d4f"],
  ["yellow", "#ffd400"],
  ["green", "#52c41a"],
  ["blue", "#40a9ff"],
  ["pink", "#ff85c0"],
];

setupLanguage();
const room = roomFromPath();
const params = linkParams();
const store = storage();
const linkToken = params.get("token");
hideTokenFromAddressBar();
const guestKey = `hudong.guest.${room}`;
const mineKey = `hudong.mine.${room}`;
/** What this viewer did, by interaction id (kept across reloads). @type {Record<string, any>} */
const mine = JSON.parse(store.get(mineKey) ?? "{}");
const remember = () => store.set(mineKey, JSON.stringify(mine));

const client = connectClient();
const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const cards = $("cards");
/** The cards shown, by interaction id. @type {Map<string, import("/static/registry.js").Mounted>} */
const mounted = new Map();

// --- joining ---------------------------------------------------------------------------

async function join() {
  // A link's token is someone else's identity; only a guest names itself.
  const name = linkToken ? undefined : store.get("hudong.name") || undefined;
  const token = linkToken ?? store.get(guestKey) ?? undefined;
  try {
    // A guest without a name of its own is named in the page's language ("观众 09ca").
    const joined = await client.open(room, { token, name, lang: lang() });
    if (!linkToken && joined.token) store.set(guestKey, joined.token);
  } catch (err) {
    if (!linkToken && token && /** @type {any} */ (err).code === "unauthorized") {
      store.remove(guestKey); // a guest token from before a restart with another secret
      return join();
    }
    notify(errorText(err), "error", 60_000);
  }
}

// The connection came back but the server refused this guest's token (it restarted with
// another secret): join again as a new guest, by itself. A link's token is not ours to drop.
client.on("error", (/** @type {any} */ err) => {
  if (err.code !== "unauthorized" || client.room !== null || client.state !== "disconnected") return;
  if (linkToken) {
    notify(errorText(err), "error", 60_000);
    return;
  }
  store.remove(guestKey);
  void join();
});

// The session's token expired (PROTOCOL.md, "Token lifecycle"): a guest joins again as a
// new guest, by itself; a link's token is not ours to renew.
client.on("close", (/** @type {any} */ info) => {
  if (info.name !== "token_expired") return;
  if (linkToken) {
    notify(t("closed.token_expired"), "error", 60_000);
    return;
  }
  store.remove(guestKey);
  void join();
});

client.on("joined", (message) => {
  $("you").textContent = t("you.as", { name: message.you.name });
  /** @type {HTMLInputElement} */ ($("name")).value = store.get("hudong.name") ?? message.you.name;
  const limit = client.hello?.limits?.max_text_chars;
  if (limit) $("text").setAttribute("maxlength", String(limit));
});

client.on("snapshot", (snapshot) => {
  document.title = `${snapshot.room.title} · hudong`;
  $("title").textContent = snapshot.room.title;
  showOnline(snapshot.online ?? 0);
  applySettings(snapshot.room.settings ?? {});
  replace($("feed"));
  for (const event of snapshot.recent ?? []) addToFeed(event);
  drawAll();
});

// The count moves live: the server sends it when it changed, at most once a second.
client.on("online", (n) => showOnline(n));

/** @param {number} n  viewers in the room now */
function showOnline(n) {
  $("online").textContent = t("online", { n: formatNumber(n) });
  $("online").dataset.count = String(n);
}

// --- room mode and degrade level ---------------------------------------------------------

/** @param {Record<string, any>} settings */
function applySettings(settings) {
  const banner = $("banner");
  const send = /** @type {HTMLButtonElement} */ ($("send"));
  send.disabled = settings.mode === "staff";
  if (settings.mode === "staff") {
    banner.textContent = t("error.danmaku_paused");
    banner.hidden = false;
  } else if (settings.mode === "slow") {
    banner.textContent = t("error.slow_mode", { s: settings.slow_mode_s ?? 5 });
    banner.hidden = false;
  } else {
    banner.hidden = true;
  }
}

client.on("degrade", ({ level }) => {
  if (level >= 2) {
    $("banner").textContent = t(`degrade.${level}`);
    $("banner").hidden = false;
  } else applySettings(client.snapshot?.room?.settings ?? {});
});

// --- danmaku: the feed and the composer -------------------------------------------------

/** @param {any} event */
function addToFeed(event) {
  const feed = $("feed");
  const count = event.count > 1 ? ` ×${event.count}` : "";
  const item = h(
    "li",
    { class: `feed-item role-${event.user?.role ?? "viewer"}`, data: { id: event.id ?? "" } },
    h("span", { class: "who", text: event.user?.name ?? "?" }),
    h("span", { class: "what", text: `${event.text}${count}` }),
  );
  item.querySelector(".what")?.setAttribute("title", formatClock(event.ts ?? Date.now()));
  // Follow new messages inside the feed's box while the viewer reads the newest; never
  // scroll the page (scrollIntoView would: the viewer loses the poll they answer).
  const following = feed.scrollHeight - feed.scrollTop - feed.clientHeight < 24;
  feed.append(item);
  while (feed.children.length > FEED_KEEP) feed.firstElementChild?.remove();
  if (following) feed.scrollTop = feed.scrollHeight;
}

client.on("danmaku", addToFeed);
client.on("retract", (event) => {
  for (const item of $("feed").querySelectorAll(".feed-item")) {
    if (/** @type {HTMLElement} */ (item).dataset.id === event.id) item.remove();
  }
});

const colors = $("colors");
COLORS.forEach(([name, value], i) => {
  const id = `color-${name}`;
  const input = h("input", { attrs: { type: "radio", name: "color", id, value }, checked: i === 0 });
  const swatch = h("label", { class: "swatch", attrs: { for: id } }, input, h("span", { class: "visually-hidden", data: { i18n: `color.${name}` }, text: t(`color.${name}`) }));
  swatch.style.setProperty("--swatch", value);
  colors.append(swatch);
});

let slowUntil = 0;
$("compose").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($("text"));
  const text = input.value.trim();
  if (!text) {
    notify(t("error.empty_text"), "warn");
    return;
  }
  if (Date.now() < slowUntil) {
    notify(t("error.slow_mode", { s: Math.ceil((slowUntil - Date.now()) / 1000) }), "warn");
    return;
  }
  const color = /** @type {HTMLInputElement | null} */ (document.querySelector("input[name=color]:checked"))?.value;
  const mode = /** @type {HTMLSelectElement} */ ($("mode")).value;
  try {
    await client.sendDanmaku(text, { color, mode: /** @type {any} */ (mode) });
    input.value = "";
    const interval = client.snapshot?.room?.settings;
    if (interval?.mode === "slow") slowUntil = Date.now() + (interval.slow_mode_s ?? 5) * 1000;
  } catch (err) {
    const e = /** @type {any} */ (err);
    if (e.code === "slow_mode" && e.retryAfterMs) slowUntil = Date.now() + e.retryAfterMs;
    notify(errorText(err), "warn");
  }
});

// --- interactions -------------------------------------------------------------------------

/**
 * Run a state-changing command of a card; show what went wrong (the client retries what
 * can be retried by itself, so an error here is final).
 * @param {HTMLElement} el  the card, or an element in it
 * @param {() => Promise<any>} command
 * @param {(ack: any) => void} [done]
 */
async function act(el, command, done) {
  const card = /** @type {HTMLElement} */ (el.closest("[data-interaction]") ?? el);
  const buttons = [...card.querySelectorAll("button")];
  for (const b of buttons) /** @type {HTMLButtonElement} */ (b).disabled = true;
  try {
    const ack = await command();
    done?.(ack);
    remember();
  } catch (err) {
    notify(errorText(err), "warn");
  } finally {
    for (const b of buttons) /** @type {HTMLButtonElement} */ (b).disabled = false;
    const view = client.interactions.get(card.dataset.interaction ?? "");
    if (view) mounted.get(view.id)?.update(view);
  }
}

/**
 * A kind's part learnt something for `mine` outside a command (a private notice): keep
 * it, and draw the interaction's card again.
 * @param {string} iid
 */
function noted(iid) {
  remember();
  const view = client.interactions.get(iid);
  if (view) mounted.get(iid)?.update(view);
}

/** Each kind's part of this page, by kind name. */
const parts = partsOf((kind) => kind.live, () => ({ client, mine, act, noted, showEndedS: SHOW_RESULTS_S }), { client });

/** Folded ended cards, by interaction id: a `details` holding the card. @type {Map<string, HTMLDetailsElement>} */
const folds = new Map();

/** Whether a shown view has ended (its kind may say; else by its phase). @param {{view: any, part: any}} v */
const hasEnded = (v) => v.part.ended?.(v.view) ?? ENDED_PHASES.has(phaseOf(v.view));

/**
 * The ended card's fold, made when it first ends; its summary names it.
 * @param {any} view @param {HTMLElement} el @param {boolean} folded  unless the viewer opened or closed it
 */
function foldOf(view, el, folded) {
  let fold = folds.get(view.id);
  if (!fold) {
    const made = /** @type {HTMLDetailsElement} */ (h("details", { class: "fold", data: { fold: view.id } }, h("summary", {})));
    made.firstElementChild?.addEventListener("click", () => {
      made.dataset.chosen = "yes";
    });
    folds.set(view.id, made);
    fold = made;
  }
  if (!fold.dataset.chosen) fold.open = !folded;
  const summary = /** @type {HTMLElement} */ (fold.firstElementChild);
  replace(summary, h("span", { class: "fold-title", text: titleOf(view) }), h("span", { class: "tag", text: t(`phase.${phaseOf(view)}`) }));
  if (el.parentElement !== fold) fold.append(el);
  return fold;
}

function drawAll() {
  const visible = [];
  for (const view of client.interactions.values()) {
    const found = parts.get(view.kind);
    if (found && found.part.shown(view)) visible.push({ view, ...found });
  }
  visible.sort((a, b) => a.kind.order - b.kind.order);
  const keep = new Set(visible.map((v) => v.view.id));
  for (const [id, card] of mounted) {
    if (!keep.has(id)) {
      card.remove?.();
      card.el.remove();
      mounted.delete(id);
    }
  }
  for (const [id, fold] of folds) {
    if (!keep.has(id) || !hasEnded(/** @type {any} */ (visible.find((v) => v.view.id === id)))) {
      fold.remove();
      folds.delete(id);
    }
  }
  for (const { view, part } of visible) {
    let card = mounted.get(view.id);
    if (!card) {
      card = part.card(view);
      mounted.set(view.id, /** @type {any} */ (card));
    }
    /** @type {any} */ (card).update(view);
  }
  const el = (/** @type {any} */ v) => /** @type {any} */ (mounted.get(v.view.id)).el;
  const inCards = visible.filter((v) => v.part.place !== "section");
  const open = inCards.filter((v) => !hasEnded(v));
  placeInOrder(cards, open.map(el));
  // Ended ones, newest first, below what is open.
  const ended = inCards.filter(hasEnded).sort((a, b) => endedAt(b.view) - endedAt(a.view));
  const takingPart = open.some((v) => !v.kind.standing);
  placeInOrder($("ended"), ended.map((v) => foldOf(v.view, el(v), takingPart)));
  placeInOrder($("sections"), visible.filter((v) => v.part.place === "section").map(el));
  $("nothing").hidden = takingPart;
}

/** When a view last moved, for ordering ended ones (seconds). @param {any} view */
function endedAt(view) {
  const s = view.status ?? view.state ?? {};
  return Math.max(s.revealed_at ?? 0, s.closed_at ?? 0, s.drawn_at ?? 0, s.opened_at ?? 0);
}

client.on("interaction", () => drawAll());
setInterval(drawAll, 5000); // ended results leave after SHOW_RESULTS_S
window.addEventListener("langchange", () => {
  for (const card of mounted.values()) {
    card.remove?.();
    card.el.remove();
  }
  mounted.clear();
  for (const fold of folds.values()) fold.remove();
  folds.clear();
  drawAll();
});

// --- name ------------------------------------------------------------------------------------

$("name-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = /** @type {HTMLInputElement} */ ($("name")).value.trim();
  if (!name) return;
  store.set("hudong.name", name);
  if (linkToken) return;
  // Join again under the new name, with the guest's token: the same guest, renamed.
  const token = client.token;
  if (token) store.set(guestKey, token);
  void client.close().then(join);
});

join();

/** localStorage that never throws (private browsing may refuse it). */
function storage() {
  /** @type {Map<string, string>} */
  const memory = new Map();
  return {
    /** @param {string} key */
    get(key) {
      try {
        return localStorage.getItem(key);
      } catch {
        return memory.get(key) ?? null;
      }
    },
    /** @param {string} key @param {string} value */
    set(key, value) {
      try {
        localStorage.setItem(key, value);
      } catch {
        memory.set(key, value);
      }
    },
    /** @param {string} key */
    remove(key) {
      try {
        localStorage.removeItem(key);
      } catch {
        memory.delete(key);
      }
    },
  };
}
