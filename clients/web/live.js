// /live/{room}: the viewer page, for phones first (360 px wide and up).
//
// A viewer joins anonymously (if the room allows it) or with `#token=<viewer token>`.
// An anonymous viewer's own token (from `joined`) is kept in localStorage per room, so
// a reload or a reconnect is the same viewer and its votes stay exactly-once. Votes,
// picks, answers, entries, questions, check-ins and posts go through the client
// library, which retries them with the same idempotency key until acknowledged.

import {
  connectClient,
  errorText,
  formatClock,
  formatNumber,
  h,
  hideTokenFromAddressBar,
  isLive,
  linkParams,
  notify,
  replace,
  roomFromPath,
  setupLanguage,
  t,
} from "/static/common.js";
import { PollBoard, finalDesign, shortHash, winnerList } from "/static/views.js";

const FEED_KEEP = 100;
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
/** @type {Map<string, {el: HTMLElement, update: (view: any) => void}>} */
const mounted = new Map();

// --- joining ---------------------------------------------------------------------------

async function join() {
  const name = store.get("hudong.name") || undefined;
  const token = linkToken ?? store.get(guestKey) ?? undefined;
  try {
    const joined = await client.open(room, token ? { token } : { name });
    if (!linkToken && joined.token) store.set(guestKey, joined.token);
  } catch (err) {
    if (!linkToken && token && /** @type {any} */ (err).code === "unauthorized") {
      store.remove(guestKey); // a guest token from before a restart with another secret
      return join();
    }
    notify(errorText(err), "error", 60_000);
  }
}

client.on("joined", (message) => {
  $("you").textContent = t("you.as", { name: message.you.name });
  /** @type {HTMLInputElement} */ ($("name")).value = store.get("hudong.name") ?? message.you.name;
  const limit = client.hello?.limits?.max_text_chars;
  if (limit) $("text").setAttribute("maxlength", String(limit));
});

client.on("snapshot", (snapshot) => {
  document.title = `${snapshot.room.title} · hudong`;
  $("title").textContent = snapshot.room.title;
  $("online").textContent = t("online", { n: formatNumber(snapshot.online ?? 0) });
  $("online").dataset.count = String(snapshot.online ?? 0);
  applySettings(snapshot.room.settings ?? {});
  replace($("feed"));
  for (const event of snapshot.recent ?? []) addToFeed(event);
  drawAll();
});

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
  feed.append(item);
  while (feed.children.length > FEED_KEEP) feed.firstElementChild?.remove();
  if (feed.lastElementChild === item) item.scrollIntoView({ block: "nearest" });
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

// --- the wall ------------------------------------------------------------------------------

$("post-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const area = /** @type {HTMLTextAreaElement} */ ($("post-text"));
  const text = area.value.trim();
  if (!text) {
    notify(t("error.empty_text"), "warn");
    return;
  }
  const button = /** @type {HTMLButtonElement} */ (event.submitter ?? area);
  button.disabled = true;
  try {
    const ack = await client.post(text);
    area.value = "";
    $("post-status").textContent = t(ack.status === "approved" ? "live.post.approved" : "live.post.pending");
  } catch (err) {
    notify(errorText(err), "warn");
  } finally {
    button.disabled = false;
  }
});

/** @param {any} view */
function drawWall(view) {
  $("wall-section").hidden = view.status?.phase !== "open";
  $("post-text").setAttribute("maxlength", String(view.spec?.max_chars ?? 140));
}

// --- interactions -------------------------------------------------------------------------

/**
 * Run a state-changing command; show what went wrong (the client retries what can be
 * retried by itself, so an error here is final).
 * @param {HTMLElement} card
 * @param {() => Promise<any>} action
 * @param {(ack: any) => void} [done]
 */
async function act(card, action, done) {
  const buttons = [...card.querySelectorAll("button")];
  for (const b of buttons) /** @type {HTMLButtonElement} */ (b).disabled = true;
  try {
    const ack = await action();
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

/** @param {string} title @param {string} kind @param {string} id */
function shell(title, kind, id) {
  const heading = h("h3", { class: "card-title", text: title });
  const body = h("div", { class: "card-body" });
  const el = h("article", { class: `card interaction kind-${kind}`, data: { interaction: id } }, heading, body);
  return { el, heading, body };
}

/** @param {any} view */
function pollCard(view) {
  const { el, heading, body } = shell(view.spec.question, "poll", view.id);
  const form = h("form", { class: "ballot" });
  const board = new PollBoard({ showTitle: false });
  const status = h("p", { class: "muted-text", attrs: { role: "status" } });
  /** @type {string[]} */
  let ranking = [];
  const spec = view.spec;
  const legend = h("legend", { class: "visually-hidden", text: spec.question });
  const fields = h("fieldset", {}, legend);
  if (spec.kind === "single" || spec.kind === "multiple") {
    const type = spec.kind === "single" ? "radio" : "checkbox";
    if (spec.kind === "multiple") fields.append(h("p", { class: "muted-text", text: t("live.multiple.hint", { min: spec.min_picks ?? 1, max: spec.max_picks ?? spec.options.length }) }));
    for (const option of spec.options) {
      const id = `${view.id}-${option.id}`;
      fields.append(h("label", { class: "choice", attrs: { for: id } }, h("input", { attrs: { type, name: "option", id, value: option.id } }), h("span", { text: option.label })));
    }
  } else if (spec.kind === "ranked") {
    const order = h("ol", { class: "ranking" });
    const buttons = h("div", { class: "row" });
    const redraw = () => {
      replace(order, ...ranking.map((id) => h("li", { text: spec.options.find((/** @type {any} */ o) => o.id === id)?.label ?? id })));
      for (const b of buttons.querySelectorAll("button[data-option]")) /** @type {HTMLButtonElement} */ (b).disabled = ranking.includes(/** @type {HTMLElement} */ (b).dataset.option ?? "");
    };
    for (const option of spec.options) {
      buttons.append(h("button", { class: "secondary", attrs: { type: "button" }, data: { option: option.id }, text: option.label, on: { click: () => { ranking.push(option.id); redraw(); } } }));
    }
    buttons.append(h("button", { class: "secondary small", attrs: { type: "button" }, text: t("live.ranked.reset"), on: { click: () => { ranking = []; redraw(); } } }));
    fields.append(h("p", { class: "muted-text", text: t("live.ranked.hint") }), buttons, order);
  } else if (spec.kind === "rating") {
    fields.append(h("p", { class: "muted-text", text: t("live.rating") }));
    const stars = h("div", { class: "row stars" });
    for (let r = 1; r <= spec.scale; r += 1) {
      const id = `${view.id}-r${r}`;
      stars.append(h("label", { class: "star", attrs: { for: id } }, h("input", { attrs: { type: "radio", name: "rating", id, value: String(r) } }), h("span", { text: String(r) })));
    }
    fields.append(stars);
  } else {
    const id = `${view.id}-text`;
    fields.append(h("label", { attrs: { for: id }, text: t("live.text") }), h("input", { attrs: { id, name: "text", maxlength: spec.max_text_chars ?? 50, autocomplete: "off" } }));
  }
  const submit = h("button", { attrs: { type: "submit" }, text: t("live.vote") });
  form.append(fields, h("div", { class: "row" }, submit, status));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const data = new FormData(form);
    /** @type {Record<string, unknown>} */
    let ballot;
    if (spec.kind === "single") ballot = { option: data.get("option") };
    else if (spec.kind === "multiple") ballot = { options: data.getAll("option") };
    else if (spec.kind === "ranked") ballot = { ranking };
    else if (spec.kind === "rating") ballot = { rating: Number(data.get("rating")) };
    else ballot = { text: String(data.get("text") ?? "") };
    if ((spec.kind === "single" && !ballot.option) || (spec.kind === "rating" && !ballot.rating)) {
      notify(t("error.not_open"), "warn");
      return;
    }
    act(el, () => client.vote(view.id, /** @type {any} */ (ballot)), () => {
      mine[view.id] = { voted: true };
    });
  });
  body.append(form, board.el);
  return {
    el,
    /** @param {any} next */
    update(next) {
      heading.textContent = next.spec.question;
      const open = next.status?.phase === "open";
      form.hidden = !open;
      status.textContent = mine[next.id]?.voted ? `${t("live.voted")} ${spec.kind !== "text" ? t("live.change") : ""}` : "";
      board.update(next);
    },
  };
}

/** @param {any} view */
function quizCard(view) {
  const { el, heading, body } = shell(view.spec.title, "quiz", view.id);
  const area = h("div", {});
  const board = h("div", {});
  body.append(area, board);
  let timer = 0;
  return {
    el,
    /** @param {any} next */
    update(next) {
      heading.textContent = next.spec.title;
      const current = next.state?.current;
      const question = next.spec.questions.find((/** @type {any} */ q) => q.id === current);
      clearInterval(timer);
      if (!question) {
        replace(area);
        return;
      }
      const answered = mine[next.id]?.[current];
      const results = (next.results ?? []).find((/** @type {any} */ r) => r.question === current);
      const clock = h("p", { class: "countdown", attrs: { role: "timer" } });
      const tick = () => {
        const left = Math.max(0, Math.ceil((next.state.closes_at ?? 0) - Date.now() / 1000));
        clock.textContent = next.accepting ? `${left} s` : "";
      };
      tick();
      timer = window.setInterval(tick, 500);
      const options = h("div", { class: "answers" });
      for (const option of question.options) {
        const chosen = answered === option.id;
        const correct = results?.correct === option.id;
        options.append(
          h("button", {
            class: `secondary answer${chosen ? " chosen" : ""}${correct ? " correct" : ""}`,
            attrs: { type: "button" },
            data: { option: option.id },
            aria: { pressed: chosen ? "true" : "false" },
            disabled: !next.accepting || Boolean(answered),
            text: option.label,
            on: {
              click: () =>
                act(el, () => client.answer(next.id, current, option.id), () => {
                  mine[next.id] = { ...(mine[next.id] ?? {}), [current]: option.id };
                }),
            },
          }),
        );
      }
      replace(
        area,
        h("p", { class: "question", text: question.text }),
        clock,
        options,
        answered ? h("p", { class: "muted-text", text: t("live.answered") }) : null,
        results?.correct ? h("p", { class: "tag ok", text: t("live.correct", { label: question.options.find((/** @type {any} */ o) => o.id === results.correct)?.label ?? results.correct }) }) : null,
      );
      replace(board);
    },
  };
}

/** @param {any} view */
function designCard(view) {
  const { el, heading, body } = shell(view.spec.title, "codesign", view.id);
  const picks = h("div", { class: "picks" });
  body.append(picks);
  return {
    el,
    /** @param {any} next */
    update(next) {
      heading.textContent = next.spec.title;
      if (next.final) {
        replace(picks, h("p", { class: "tag ok", text: t("live.design.final") }), finalDesign(next.final));
        return;
      }
      const chosen = mine[next.id] ?? {};
      replace(picks);
      for (const slot of next.results?.slots ?? []) {
        const fieldset = h("fieldset", { class: `slot${slot.locked ? " locked" : ""}`, data: { slot: slot.id } }, h("legend", {}, slot.label, slot.locked ? h("span", { class: "tag", text: t("live.locked") }) : null));
        for (const option of slot.options) {
          const id = `${next.id}-${slot.id}-${option.id}`;
          const soldOut = option.left === 0 && chosen[slot.id] !== option.id;
          const input = h("input", {
            attrs: { type: "radio", name: `${next.id}-${slot.id}`, id, value: option.id },
            checked: chosen[slot.id] === option.id,
            disabled: slot.locked || soldOut || next.state?.phase !== "open",
            on: {
              change: () =>
                act(el, () => client.pick(next.id, slot.id, option.id), () => {
                  mine[next.id] = { ...(mine[next.id] ?? {}), [slot.id]: option.id };
                }),
            },
          });
          fieldset.append(
            h(
              "label",
              { class: "choice", attrs: { for: id }, data: { option: option.id } },
              input,
              h("span", { class: "grow", text: option.label }),
              h("span", { class: "share", text: `${Math.round(option.share * 100)}%` }),
              option.left !== null && option.left !== undefined ? h("span", { class: "tag", text: option.left === 0 ? t("live.soldout") : t("live.left", { n: option.left }) }) : null,
            ),
          );
        }
        picks.append(fieldset);
      }
    },
  };
}

/** @param {any} view */
function drawCard(view) {
  const { el, heading, body } = shell(view.spec.title, "draw", view.id);
  return {
    el,
    /** @param {any} next */
    update(next) {
      heading.textContent = next.spec.title;
      const spec = next.spec;
      const state = next.state;
      const lines = [h("p", { class: "muted-text", text: `${t("live.entrants", { n: formatNumber(next.entrants ?? 0) })} · ${shortHash(state.commitment)}` })];
      if (state.phase === "drawn") {
        lines.push(h("p", { class: "tag ok", text: t("live.drawn") }), winnerList(state.winners, next.names ?? {}));
        if (client.you && state.winners.includes(client.you.id)) lines.push(h("p", { class: "won", text: t("live.won", { title: spec.title }) }));
      } else if (spec.source === "entry") {
        const entered = Boolean(mine[next.id]?.entered);
        lines.push(
          h("button", {
            attrs: { type: "button" },
            disabled: entered,
            text: entered ? t("live.entered") : t("live.enter"),
            on: { click: () => act(el, () => client.enter(next.id), () => { mine[next.id] = { entered: true }; }) },
          }),
        );
      } else if (spec.source === "keyword") {
        lines.push(h("p", { text: t("live.keyword", { keyword: spec.keyword }) }));
      } else if (spec.source === "presence") {
        lines.push(h("p", { text: t("live.presence") }));
      }
      replace(body, ...lines);
    },
  };
}

/** @param {any} view */
function qaCard(view) {
  const { el, heading, body } = shell(view.spec.title, "qa", view.id);
  const inputId = `${view.id}-ask`;
  const input = h("textarea", { attrs: { id: inputId, name: "text", rows: 2, maxlength: view.spec.max_chars ?? 300 }, data: {} });
  input.setAttribute("placeholder", t("live.ask.placeholder"));
  const form = h("form", { class: "ask" }, h("label", { attrs: { for: inputId }, text: t("live.ask") }), input, h("button", { attrs: { type: "submit" }, text: t("live.ask.send") }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = /** @type {HTMLTextAreaElement} */ (input).value.trim();
    if (!text) return notify(t("error.empty_text"), "warn");
    act(el, () => client.ask(view.id, text), () => {
      /** @type {HTMLTextAreaElement} */ (input).value = "";
      notify(t("live.sent"), "ok");
    });
  });
  const list = h("ol", { class: "questions" });
  body.append(form, list);
  return {
    el,
    /** @param {any} next */
    update(next) {
      heading.textContent = next.spec.title;
      form.hidden = next.status?.phase !== "open";
      const upvoted = mine[next.id] ?? {};
      replace(
        list,
        ...(next.questions ?? []).map((/** @type {any} */ q) =>
          h(
            "li",
            { class: "question-item", data: { question: q.id } },
            h("p", { class: "q-text" }, h("strong", { text: q.name ?? "?" }), " ", q.text),
            q.answer ? h("p", { class: "q-answer", text: q.answer }) : null,
            h(
              "div",
              { class: "row" },
              q.pinned_at ? h("span", { class: "tag", text: t("live.pinned") }) : null,
              q.answered_at ? h("span", { class: "tag ok", text: t("live.answered.by.host") }) : null,
              h("button", {
                class: "secondary small",
                attrs: { type: "button" },
                aria: { pressed: upvoted[q.id] ? "true" : "false" },
                disabled: next.status?.phase !== "open",
                text: `${upvoted[q.id] ? t("live.upvoted") : t("live.upvote")} · ${formatNumber(q.votes)}`,
                on: {
                  click: () =>
                    upvoted[q.id]
                      ? act(el, () => client.unvote(next.id, q.id), () => { mine[next.id] = { ...upvoted, [q.id]: false }; })
                      : act(el, () => client.upvote(next.id, q.id), () => { mine[next.id] = { ...upvoted, [q.id]: true }; }),
                },
              }),
            ),
          ),
        ),
      );
    },
  };
}

/** @param {any} view */
function checkinCard(view) {
  const { el, body } = shell(view.spec.title === "Check-in" ? t("live.checkin") : view.spec.title, "checkin", view.id);
  return {
    el,
    /** @param {any} next */
    update(next) {
      const done = Boolean(mine.checkin?.done);
      replace(
        body,
        h("button", {
          attrs: { type: "button" },
          disabled: done || next.status?.phase !== "open",
          text: done ? t("live.checked") : t("live.checkin"),
          on: { click: () => act(el, () => client.checkin(), () => { mine.checkin = { done: true }; }) },
        }),
        h("span", { class: "muted-text", data: { count: next.count }, text: ` ${t("live.checkins", { n: formatNumber(next.count ?? 0) })}` }),
      );
    },
  };
}

const CARDS = { poll: pollCard, quiz: quizCard, codesign: designCard, draw: drawCard, qa: qaCard, checkin: checkinCard };

/** Whether the page shows this interaction now. @param {any} view */
function shown(view) {
  if (view.kind === "checkin") return view.status?.phase === "open";
  if (isLive(view)) return true;
  const now = Date.now() / 1000;
  if (view.kind === "poll") {
    const s = view.status ?? {};
    return s.phase !== "draft" && now - Math.max(s.closed_at ?? 0, s.revealed_at ?? 0) < SHOW_RESULTS_S;
  }
  if (view.kind === "codesign") return view.state?.phase === "revealed" && now - (view.state.revealed_at ?? 0) < SHOW_RESULTS_S;
  if (view.kind === "draw") return view.state?.phase === "drawn" && now - (view.state.drawn_at ?? 0) < SHOW_RESULTS_S;
  if (view.kind === "quiz") return !view.state?.finished && (view.state?.asked?.length ?? 0) > 0;
  return false;
}

function drawAll() {
  const views = [...client.interactions.values()];
  const wall = client.interactions.get("wall");
  if (wall) drawWall(wall);
  const visible = views.filter((v) => v.kind in CARDS && shown(v));
  const order = ["poll", "quiz", "codesign", "draw", "qa", "checkin"];
  visible.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  const keep = new Set(visible.map((v) => v.id));
  for (const [id, card] of mounted) {
    if (!keep.has(id)) {
      card.el.remove();
      mounted.delete(id);
    }
  }
  for (const view of visible) {
    let card = mounted.get(view.id);
    if (!card) {
      card = /** @type {any} */ (CARDS)[view.kind](view);
      mounted.set(view.id, /** @type {any} */ (card));
    }
    cards.append(/** @type {any} */ (card).el); // in order
    /** @type {any} */ (card).update(view);
  }
  $("nothing").hidden = visible.some((v) => v.kind !== "checkin");
}

client.on("interaction", () => drawAll());
client.on("drawWon", (notice) => notify(t("live.won", { title: notice.title }), "ok", 15_000));
setInterval(drawAll, 5000); // ended results leave after SHOW_RESULTS_S
window.addEventListener("langchange", () => {
  for (const card of mounted.values()) card.el.remove();
  mounted.clear();
  drawAll();
});

// --- name ------------------------------------------------------------------------------------

$("name-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = /** @type {HTMLInputElement} */ ($("name")).value.trim();
  if (!name) return;
  store.set("hudong.name", name);
  if (!linkToken) {
    // A guest's name is part of its identity: join again as a new guest with it.
    store.remove(guestKey);
    location.reload();
  }
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
