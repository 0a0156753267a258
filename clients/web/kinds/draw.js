// Lucky draws (PROTOCOL.md, "Lucky draws are verifiable"): entrants by entry, presence,
// a keyword or a poll's votes; the host runs the draw and the winners follow from the
// committed seed. The viewer page enters and says who won (and the winner's own notice,
// `draw_won`); the console shows the commitment, the seed, the winners and the audit
// record; the overlay and the wall reveal the winners of each `draw_result`.

import { formatNumber, h, notify, replace, t } from "/static/common.js";
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

/** @param {import("/static/registry.js").LiveContext} ctx @param {any} view */
function entryCard(ctx, view) {
  const { el, heading, body } = liveCard("draw", view.id, view.spec.title);
  return {
    el,
    /** @param {any} next */
    update(next) {
      heading.textContent = next.spec.title;
      const spec = next.spec;
      const state = next.state;
      const lines = [h("p", { class: "muted-text", text: `${t("draw.entered.count", { n: formatNumber(next.entrants ?? 0) })} · ${shortHash(state.commitment)}` })];
      if (state.phase === "drawn") {
        lines.push(h("p", { class: "tag ok", text: t("draw.drawn") }), winnerList(state.winners, next.names ?? {}));
        if (ctx.client.you && state.winners.includes(ctx.client.you.id)) lines.push(h("p", { class: "won", text: t("draw.won", { title: spec.title }) }));
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
}

/** The entrants, the commitment, and once drawn the seed and the winners. */
function details() {
  const el = h("div", { class: "draw-details" });
  return {
    el,
    /** @param {any} view */
    update(view) {
      const state = view.state ?? {};
      const drawn = state.phase === "drawn";
      replace(
        el,
        h("p", { text: t("draw.entrants", { n: formatNumber(view.entrants ?? 0) }) }),
        h("p", {}, `${t("draw.commitment")}: `, h("code", { class: "hash", data: { commitment: state.commitment ?? "" }, text: state.commitment ?? "" })),
        drawn ? h("p", {}, `${t("draw.seed")}: `, h("code", { class: "hash", text: state.seed ?? "" })) : null,
        drawn ? winnerList(state.winners ?? [], view.names ?? {}) : null,
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
    shown(view) {
      const s = view.state ?? {};
      return s.phase === "open" || (s.phase === "drawn" && within(s.drawn_at, ctx.showEndedS));
    },
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
    card: details,
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
    },
  },
};
