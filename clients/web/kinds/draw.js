// Lucky draws (PROTOCOL.md, "Lucky draws are verifiable"): entrants by entry, presence,
// a keyword or a poll's votes; the host runs the draw and the winners follow from the
// committed seed. The viewer page enters and says who won (and the winner's own notice,
// `draw_won`); the console shows the commitment, the seed, the winners and the audit
// record; the overlay and the wall reveal the winners of each `draw_result`.
//
// Prizes are claimed with a code (PROTOCOL.md, "Prizes are claimed with a code"): a
// winner's phone asks for its own (`GET …/mine` with its token) and shows it; the
// console lists each winner's code, marks a prize handed over (`claim`) and looks a
// code up (`lookup`). No other page ever has a code.

import { api, errorText, formatClock, formatNumber, h, notify, replace, t } from "/static/common.js";
import { checkbox, input, liveCard, newest, newId, select, shortHash, titleField, within } from "/static/widgets.js";

const SOURCES = ["entry", "presence", "keyword", "poll"];
const OVERLAY_SHOW_MS = 30_000; // the overlay shows a draw's winners this long
const SHUFFLE_MS = 2_500; // the wall shuffles names this long before the winners

/**
 * A draw's winners by name (ids where no name was recorded), `data-winner` each.
 * @param {string[]} winners  user ids, first prize first
 * @param {Record<string, string|null>} [names]
 */
function winnerList(winners, names = {}) {
  return h(
    "ol",
    { class: "winners" },
    ...winners.map((id) => h("li", { class: "winner", data: { winner: id }, text: names[id] ?? id })),
  );
}

/** Whether this viewer won the drawn draw. @param {import("/static/registry.js").LiveContext} ctx @param {any} view */
const won = (ctx, view) => Boolean(ctx.client.you && (view.state?.winners ?? []).includes(ctx.client.you.id));

/** When a prize was handed over, for people. @param {number} at seconds since the epoch */
const claimedText = (at) => t("draw.claimed.at", { time: formatClock(at * 1000) });

/**
 * A winner's own claim code on the phone, fetched once with the viewer's token (and
 * again once the prize is marked handed over).
 * @param {import("/static/registry.js").LiveContext} ctx @param {string} id @param {() => void} redraw
 */
function ownClaim(ctx, id, redraw) {
  /** @type {any} */
  let claim = null;
  let asking = false;
  const ask = async () => {
    asking = true;
    try {
      const path = `/rooms/${encodeURIComponent(ctx.client.room ?? "")}/interactions/${encodeURIComponent(id)}/mine`;
      claim = (await api(path, { token: ctx.client.token })).claim ?? null;
      redraw();
    } catch (err) {
      notify(errorText(err), "warn");
    } finally {
      asking = false;
    }
  };
  /** The code's box for a view in which this viewer won. @param {any} view */
  return (view) => {
    const you = ctx.client.you?.id ?? "";
    const handed = (view.state.claimed ?? []).includes(you);
    if (!asking && (!claim || (handed && !claim.claimed_at))) void ask();
    if (!claim?.code) return null;
    return h(
      "div",
      { class: "claim", data: { claimed: claim.claimed_at ? "yes" : "no" } },
      h("p", { class: "claim-label", text: t("draw.claim.code") }),
      h("p", { class: "claim-code", data: { code: claim.code }, text: claim.code }),
      h("p", { class: claim.claimed_at ? "tag ok" : "muted-text", text: claim.claimed_at ? claimedText(claim.claimed_at) : t("draw.claim.hint") }),
    );
  };
}

/** @param {import("/static/registry.js").LiveContext} ctx @param {any} view */
function entryCard(ctx, view) {
  const { el, heading, body } = liveCard("draw", view.id, view.spec.title);
  /** @type {any} */
  let last = view;
  const claimBox = ownClaim(ctx, view.id, () => card.update(last));
  const card = {
    el,
    /** @param {any} next */
    update(next) {
      last = next;
      heading.textContent = next.spec.title;
      const spec = next.spec;
      const state = next.state;
      const lines = [h("p", { class: "muted-text", text: `${t("draw.entered.count", { n: formatNumber(next.entrants ?? 0) })} · ${shortHash(state.commitment)}` })];
      if (state.phase === "drawn") {
        lines.push(h("p", { class: "tag ok", text: t("draw.drawn") }), winnerList(state.winners, next.names ?? {}));
        if (ctx.client.you && state.winners.includes(ctx.client.you.id)) lines.push(h("p", { class: "won", text: t("draw.won", { title: spec.title }) }), claimBox(next));
      } else if (spec.source === "entry") {
        const entered = Boolean(ctx.mine[next.id]?.entered);
        lines.push(
          h("button", {
            attrs: { type: "button" },
            disabled: entered,
            text: entered ? t("draw.entered") : t("draw.enter"),
            on: { click: () => ctx.act(el, () => ctx.client.enter(next.id), () => { ctx.mine[next.id] = { entered: true }; }) },
          }),
        );
      } else if (spec.source === "keyword") {
        lines.push(h("p", { text: t("draw.keyword", { keyword: spec.keyword }) }));
      } else if (spec.source === "presence") {
        lines.push(h("p", { text: t("draw.presence") }));
      }
      replace(body, ...lines);
    },
  };
  return card;
}

/**
 * The winners with their claim codes, each handed over or with a button to mark it.
 * @param {import("/static/registry.js").ConsoleContext} ctx @param {any} view
 */
function claimList(ctx, view) {
  return h(
    "ol",
    { class: "winners claims" },
    ...view.claims.map((/** @type {any} */ c) =>
      h(
        "li",
        { class: "winner claim", data: { winner: c.winner, claimed: c.claimed_at ? "yes" : "no" } },
        h("span", { class: "claim-name", text: c.name ?? c.winner }),
        " ",
        h("code", { class: "claim-code", data: { code: c.code ?? "" }, text: c.code ?? "–" }),
        " ",
        c.claimed_at
          ? h("span", { class: "tag ok", text: claimedText(c.claimed_at) })
          : c.code
            ? ctx.button(view.id, "claim", { fields: { code: c.code }, class: "secondary small" })
            : null,
      ),
    ),
  );
}

/**
 * The prize desk: a code typed in, looked up or marked handed over; says whose it is.
 * @param {import("/static/registry.js").ConsoleContext} ctx @param {() => string} iid
 */
function prizeDesk(ctx, iid) {
  const input = h("input", { attrs: { type: "text", name: "claim-code", maxlength: 16, autocomplete: "off", placeholder: "XXXX-XXXX" }, aria: { label: t("draw.desk") } });
  const answer = h("p", { class: "desk-answer", attrs: { role: "status" } });
  /** @param {string} action */
  const run = async (action) => {
    const code = /** @type {HTMLInputElement} */ (input).value.trim();
    if (!code) return;
    const reply = await ctx.act(iid(), action, { code });
    const c = reply?.claim;
    if (!c) return;
    const name = c.name ?? c.winner;
    const key = action === "lookup" ? (c.claimed_at ? "draw.lookup.claimed" : "draw.lookup.open") : reply.duplicate ? "draw.claim.again" : "draw.claim.done";
    answer.textContent = t(key, { name, code: c.code, time: c.claimed_at ? formatClock(c.claimed_at * 1000) : "" });
    answer.dataset.winner = c.winner;
    answer.dataset.claimed = c.claimed_at ? "yes" : "no";
  };
  const button = (/** @type {string} */ action, /** @type {string} */ cls) =>
    h("button", { class: cls, attrs: { type: "button" }, data: { desk: action }, text: t(`action.${action}`), on: { click: () => run(action) } });
  const el = h("div", { class: "prize-desk" }, h("p", { class: "desk-title", text: t("draw.desk") }), h("div", { class: "row" }, input, button("lookup", "secondary"), button("claim", "")), answer);
  return {
    el,
    /** Forget an answer that a claim since has made stale. @param {string[]} claimed */
    seen(claimed) {
      if (answer.dataset.winner && claimed.includes(answer.dataset.winner) && answer.dataset.claimed !== "yes") {
        answer.textContent = "";
        delete answer.dataset.winner;
      }
    },
  };
}

/** The entrants, the commitment, and once drawn the seed, the winners and their claims. @param {import("/static/registry.js").ConsoleContext} ctx */
function details(ctx) {
  const info = h("div", {});
  let id = "";
  const desk = prizeDesk(ctx, () => id);
  const el = h("div", { class: "draw-details" }, info, desk.el);
  return {
    el,
    /** @param {any} view */
    update(view) {
      id = view.id;
      const state = view.state ?? {};
      const drawn = state.phase === "drawn";
      desk.el.hidden = !(drawn && view.claims?.some((/** @type {any} */ c) => c.code));
      desk.seen(state.claimed ?? []);
      replace(
        info,
        h("p", { text: t("draw.entrants", { n: formatNumber(view.entrants ?? 0) }) }),
        h("p", {}, `${t("draw.commitment")}: `, h("code", { class: "hash", data: { commitment: state.commitment ?? "" }, text: state.commitment ?? "" })),
        drawn ? h("p", {}, `${t("draw.seed")}: `, h("code", { class: "hash", text: state.seed ?? "" })) : null,
        drawn ? (view.claims ? claimList(ctx, view) : winnerList(state.winners ?? [], view.names ?? {})) : null,
        drawn ? h("p", { class: "muted-text", text: t("draw.verify", { file: `${view.id}.json` }) }) : null,
      );
    },
  };
}

/** @type {import("/static/registry.js").KindModule} */
export default {
  kind: "draw",
  order: 40,

  live: (ctx) => ({
    // A winner keeps the card, open on top until the prize is handed over: it holds the code.
    shown(view) {
      const s = view.state ?? {};
      return s.phase === "open" || (s.phase === "drawn" && (won(ctx, view) || within(s.drawn_at, ctx.showEndedS)));
    },
    ended: (view) => view.state?.phase === "drawn" && !(won(ctx, view) && !(view.state.claimed ?? []).includes(ctx.client.you?.id)),
    card: (view) => entryCard(ctx, view),
    on: { drawWon: (notice) => notify(t("draw.won", { title: notice.title }), "ok", 15_000) },
  }),

  console: (ctx) => ({
    composer: {
      fields: () => [
        titleField(),
        h("div", { class: "row" }, input("f-winners", "draw.count", { type: "number", min: 1, max: 1000, value: 1 }), select("f-source", "draw.source", SOURCES.map((k) => [k, `draw.source.${k}`]))),
        h(
          "div",
          { class: "row" },
          input("f-keyword", "draw.keyword.field", { maxlength: 32 }),
          input("f-window", "draw.window", { type: "number", min: 1, max: 86400 }),
          input("f-poll", "draw.pollid", { maxlength: 64 }),
        ),
        checkbox("f-exclude", "draw.exclude"),
      ],
      relevant(value) {
        const source = value("f-source");
        return { "f-keyword": source === "keyword", "f-window": source === "keyword", "f-poll": source === "poll" };
      },
      spec(form) {
        const source = form.text("f-source");
        /** @type {Record<string, unknown>} */
        const spec = { id: newId("draw"), title: form.text("f-title"), winners: form.number("f-winners") ?? 1, source };
        if (source === "keyword") {
          spec.keyword = form.text("f-keyword");
          if (form.number("f-window")) spec.window_s = form.number("f-window");
        }
        if (source === "poll") spec.poll_id = form.text("f-poll");
        if (form.checked("f-exclude")) spec.exclude_previous_winners = true;
        return spec;
      },
    },
    card: () => details(ctx),
    actions(view) {
      if (view.state?.phase !== "drawn") return [ctx.button(view.id, "run")];
      const audit = () => ctx.download(`/interactions/${encodeURIComponent(view.id)}/audit`, `${view.id}.json`);
      return [h("button", { class: "secondary", attrs: { type: "button" }, data: { action: "audit" }, text: t("action.audit"), on: { click: audit } })];
    },
  }),

  overlay(ctx) {
    const el = ctx.frame();
    let timer = 0;
    /** @param {any} event a draw_result event */
    const show = (event) => {
      replace(el, h("h2", { class: "board-title", text: event.title ?? t("draw.winners") }), h("p", { class: "tag", text: t("draw.winners") }), winnerList(event.winners ?? [], event.names ?? {}));
      el.dataset.draw = event.interaction;
      el.hidden = false;
      clearTimeout(timer);
      timer = window.setTimeout(() => {
        el.hidden = true;
      }, OVERLAY_SHOW_MS);
    };
    return { el, on: { drawResult: show } };
  },

  wall(ctx) {
    const el = ctx.frame();
    /** @param {any[]} views */
    const update = (views) => {
      const draw = newest(views, ctx.showEndedS);
      const drawn = draw?.state?.phase === "drawn" ? draw : null;
      if (drawn) {
        replace(el, h("h2", { class: "board-title", text: drawn.spec.title }), winnerList(drawn.state.winners, drawn.names ?? {}));
        el.dataset.draw = drawn.id;
      }
      el.hidden = !drawn;
    };
    /** Names shuffle for a moment, then the winners. @param {any} event a draw_result event */
    const reveal = (event) => {
      const winners = event.winners ?? [];
      const names = event.names ?? {};
      const shuffle = h("p", { class: "shuffle", attrs: { role: "status" }, text: t("draw.drawing") });
      const body = h("div", {}, shuffle);
      ctx.reveal?.({ kicker: t("draw.winners"), title: event.title ?? "", body, id: event.interaction });
      const pool = winners.map((/** @type {string} */ w) => names[w] ?? w);
      const started = performance.now();
      const spin = () => {
        if (performance.now() - started >= SHUFFLE_MS || pool.length === 0) {
          replace(body, winnerList(winners, names));
          return;
        }
        shuffle.textContent = pool[Math.floor(Math.random() * pool.length)];
        setTimeout(spin, 90);
      };
      spin();
    };
    return { el, update, on: { drawResult: reveal } };
  },

  words: {
    en: {
      "kind.draw": "Lucky draw",
      "draw.enter": "Enter the draw",
      "draw.entered": "You are in the draw ✓",
      "draw.entered.count": "{n} entered",
      "draw.keyword": "Send “{keyword}” as a message to enter.",
      "draw.presence": "Everyone watching is in the draw.",
      "draw.drawn": "Winners drawn",
      "draw.won": "🎉 You won: {title}!",
      "draw.winners": "Winners",
      "draw.drawing": "Drawing…",
      "draw.count": "Winners",
      "draw.source": "Entrants",
      "draw.source.entry": "Viewers who enter",
      "draw.source.presence": "Everyone watching",
      "draw.source.keyword": "Senders of a keyword",
      "draw.source.poll": "Voters of a poll",
      "draw.keyword.field": "Keyword",
      "draw.window": "Window (s)",
      "draw.pollid": "Poll id",
      "draw.exclude": "Exclude earlier winners",
      "draw.entrants": "{n} entrants",
      "draw.commitment": "Commitment (published before the draw)",
      "draw.seed": "Seed (revealed)",
      "draw.verify": "Anyone can check it: hudong verify-draw {file}",
      "phase.drawn": "Drawn",
      "action.run": "Run the draw",
      "action.audit": "Download audit record",
      "action.claim": "Mark claimed",
      "action.lookup": "Look up",
      "draw.claim.code": "Your claim code",
      "draw.claim.hint": "Show this code at the prize desk.",
      "draw.claimed.at": "Prize claimed {time} ✓",
      "draw.desk": "Prize desk: a winner's claim code",
      "draw.lookup.open": "{code} is {name}'s: not claimed yet.",
      "draw.lookup.claimed": "{code} is {name}'s: claimed at {time}.",
      "draw.claim.done": "Prize handed to {name} ✓",
      "draw.claim.again": "{name} claimed this prize already, at {time}.",
    },
    zh: {
      "kind.draw": "抽奖",
      "draw.enter": "参加抽奖",
      "draw.entered": "已参加抽奖 ✓",
      "draw.entered.count": "{n} 人参加",
      "draw.keyword": "发送弹幕“{keyword}”即可参加。",
      "draw.presence": "所有在线观众自动参加。",
      "draw.drawn": "已开奖",
      "draw.won": "🎉 恭喜中奖：{title}！",
      "draw.winners": "中奖名单",
      "draw.drawing": "抽奖中…",
      "draw.count": "中奖人数",
      "draw.source": "参与方式",
      "draw.source.entry": "观众报名",
      "draw.source.presence": "所有在线观众",
      "draw.source.keyword": "发送口令弹幕",
      "draw.source.poll": "某投票的投票者",
      "draw.keyword.field": "口令",
      "draw.window": "时长（秒）",
      "draw.pollid": "投票 ID",
      "draw.exclude": "排除之前的中奖者",
      "draw.entrants": "{n} 人参加",
      "draw.commitment": "承诺值（开奖前公布）",
      "draw.seed": "种子（开奖后公开）",
      "draw.verify": "任何人都可验证：hudong verify-draw {file}",
      "phase.drawn": "已开奖",
      "action.run": "开奖",
      "action.audit": "下载审计记录",
      "action.claim": "标记已领奖",
      "action.lookup": "查询",
      "draw.claim.code": "你的领奖码",
      "draw.claim.hint": "领奖时请出示此码。",
      "draw.claimed.at": "已于 {time} 领奖 ✓",
      "draw.desk": "领奖台：中奖者的领奖码",
      "draw.lookup.open": "{code} 属于 {name}：尚未领奖。",
      "draw.lookup.claimed": "{code} 属于 {name}：已于 {time} 领奖。",
      "draw.claim.done": "已向 {name} 发奖 ✓",
      "draw.claim.again": "{name} 已于 {time} 领过奖。",
    },
  },
};
