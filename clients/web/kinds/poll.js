// Polls (PROTOCOL.md, "Kinds, specs and host actions"): single and multiple choice,
// ranked, rating and text (a word cloud). The ballot on the viewer page; the composer,
// the results and open / close / reveal in the console; the bars on the overlay and the
// wall (ranked polls: most Borda points first, each labelled with its points). Every page draws results with one PollBoard, so the same data gives the same
// figures everywhere; its elements carry `data-poll`, `data-option` and `data-count`.

import { formatNumber, h, notify, replace, t } from "/static/common.js";
import { Bars, area, checkbox, choicesOf, codedChoicesOf, danmakuCodes, input, lines, liveCard, newest, newId, select, within } from "/static/widgets.js";

const TYPES = ["single", "multiple", "ranked", "rating", "text"];
const CHOICES = ["single", "multiple", "ranked"];

/**
 * Rows of a poll's results: the figure to show and the bar's fill (0..1). Ranked polls
 * show Borda points, rating polls their histogram, text polls none (a word cloud).
 * @param {any} view
 * @returns {import("/static/widgets.js").BarRow[]}
 */
function pollRows(view) {
  const results = view.results ?? {};
  if (results.hidden || results.kind === "text") return [];
  if (results.kind === "ranked") {
    // most points first (ties in the poll's order), each figure labelled "points"
    const options = [...(results.options ?? [])].sort((/** @type {any} */ a, /** @type {any} */ b) => b.points - a.points);
    const most = Math.max(1, ...options.map((/** @type {any} */ o) => o.points));
    return options.map((/** @type {any} */ o) => ({ id: o.id, label: o.label, count: o.points, share: o.points / most, shareText: t("poll.points", { n: o.points }) }));
  }
  if (results.kind === "rating") {
    const voters = Math.max(1, results.voters ?? 0);
    return (results.histogram ?? []).map((/** @type {any} */ b) => ({
      id: String(b.rating),
      label: "★".repeat(Math.min(b.rating, 10)) || String(b.rating),
      count: b.count,
      share: b.count / voters,
    }));
  }
  const labels = new Map((view.spec?.options ?? []).map((/** @type {any} */ o) => [o.id, o.label]));
  // a poll taking danmaku shows what to type beside each label ("红色 · 1 / A")
  const labelled = (/** @type {any} */ o) => {
    const label = o.label ?? labels.get(o.id) ?? o.id;
    return [label, danmakuCodes(view, o.id, label)].filter(Boolean).join(" · ");
  };
  return (results.options ?? []).map((/** @type {any} */ o) => ({ id: o.id, label: labelled(o), count: o.count, share: o.share }));
}

/** A poll's results that update in place (bars glide; a reconnect rebuilds nothing). */
class PollBoard {
  /** @param {{showTitle?: boolean}} [options] */
  constructor(options = {}) {
    this.showTitle = options.showTitle ?? true;
    this.el = h("section", { class: "poll-board", aria: { live: "polite" } });
    /** @type {string | null} */
    this.key = null;
    this.voters = h("span", { class: "voters" });
    this.hidden = h("p", { class: "hidden-results" });
    this.cloud = h("p", { class: "word-cloud" });
    /** @type {HTMLElement | null} */
    this.mean = null;
    this.bars = new Bars();
  }

  /** @param {any} view */
  update(view) {
    const results = view.results ?? {};
    const key = `${view.id}|${results.kind}|${results.hidden}`;
    if (key !== this.key) this._build(view, key);
    this.el.dataset.phase = view.status?.phase ?? "";
    this.voters.textContent = t("poll.voters", { n: formatNumber(results.voters ?? 0) });
    this.voters.dataset.count = String(results.voters ?? 0);
    if (results.hidden) {
      this.hidden.textContent = t("poll.hidden", { n: formatNumber(results.voters ?? 0) });
      return;
    }
    if (results.kind === "text") {
      this._cloud(results.terms ?? []);
      return;
    }
    if (this.mean) this.mean.textContent = results.mean === null || results.mean === undefined ? "–" : `${results.mean}`;
    const rows = pollRows(view);
    const lead = Math.max(0, ...rows.map((r) => r.count));
    this.bars.update(rows.map((row) => ({ ...row, leading: row.count > 0 && row.count === lead })));
  }

  /** @param {any} view @param {string} key */
  _build(view, key) {
    this.key = key;
    this.el.dataset.poll = view.id;
    const results = view.results ?? {};
    const head = h(
      "header",
      { class: "board-head" },
      this.showTitle ? h("h2", { class: "board-title", text: view.spec?.question ?? view.id }) : null,
      this.voters,
    );
    const body = h("div", { class: "board-body" });
    this.mean = null;
    if (results.hidden) {
      body.append(this.hidden);
    } else if (results.kind === "text") {
      body.append(this.cloud);
    } else {
      if (results.kind === "rating") {
        this.mean = h("strong", { class: "rating-mean" });
        body.append(h("p", { class: "rating" }, this.mean, ` / ${view.spec?.scale ?? ""}`));
      }
      this.bars = new Bars({ class: `bars-${results.kind}` });
      body.append(this.bars.el);
    }
    replace(this.el, head, body);
  }

  /** @param {{term: string, count: number}[]} terms */
  _cloud(terms) {
    const most = Math.max(1, ...terms.map((x) => x.count));
    replace(
      this.cloud,
      ...terms.map((x) => {
        const word = h("span", { class: "term", text: x.term, data: { count: x.count } });
        word.style.setProperty("--weight", String(x.count / most));
        return word;
      }),
    );
  }
}

/** The poll's board on a screen: the poll of the link's `poll=`, else the newest. @param {import("/static/registry.js").ScreenContext} ctx */
function screen(ctx) {
  const board = new PollBoard();
  const el = ctx.frame(board.el);
  return {
    el,
    /** @param {any[]} views */
    update(views) {
      const pinned = ctx.params.get("poll");
      const poll = (pinned ? views.find((v) => v.id === pinned) : null) ?? newest(views, ctx.showEndedS);
      if (poll) board.update(poll);
      el.hidden = !poll;
    },
  };
}

/** The ballot for each type of poll, and the results under it. @param {import("/static/registry.js").LiveContext} ctx @param {any} view */
function ballotCard(ctx, view) {
  const spec = view.spec;
  const { el, heading, body } = liveCard("poll", view.id, spec.question);
  const form = h("form", { class: "ballot" });
  const board = new PollBoard({ showTitle: false });
  const status = h("p", { class: "muted-text", attrs: { role: "status" } });
  /** @type {string[]} */
  let ranking = [];
  const fields = h("fieldset", {}, h("legend", { class: "visually-hidden", text: spec.question }));
  if (spec.kind === "single" || spec.kind === "multiple") {
    const type = spec.kind === "single" ? "radio" : "checkbox";
    if (spec.kind === "multiple") fields.append(h("p", { class: "muted-text", text: t("poll.multiple.hint", { min: spec.min_picks ?? 1, max: spec.max_picks ?? spec.options.length }) }));
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
    buttons.append(h("button", { class: "secondary small", attrs: { type: "button" }, text: t("poll.ranked.reset"), on: { click: () => { ranking = []; redraw(); } } }));
    fields.append(h("p", { class: "muted-text", text: t("poll.ranked.hint") }), buttons, order);
  } else if (spec.kind === "rating") {
    fields.append(h("p", { class: "muted-text", text: t("poll.rating") }));
    const stars = h("div", { class: "row stars" });
    for (let r = 1; r <= spec.scale; r += 1) {
      const id = `${view.id}-r${r}`;
      stars.append(h("label", { class: "star", attrs: { for: id } }, h("input", { attrs: { type: "radio", name: "rating", id, value: String(r) } }), h("span", { text: String(r) })));
    }
    fields.append(stars);
  } else {
    const id = `${view.id}-text`;
    fields.append(h("label", { attrs: { for: id }, text: t("poll.text") }), h("input", { attrs: { id, name: "text", maxlength: spec.max_text_chars ?? 50, autocomplete: "off" } }));
  }
  // A word cloud keeps several answers per viewer: the phone lists what it has sent.
  const several = spec.kind === "text" && (spec.max_answers ?? 3) > 1;
  const sent = h("ul", { class: "sent-answers", aria: { label: t("poll.sent") } });
  const answers = () => /** @type {string[]} */ (ctx.mine[view.id]?.answers ?? []);
  const submit = h("button", { attrs: { type: "submit" }, text: t("poll.vote") });
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
    else ballot = { text: String(data.get("text") ?? "").trim() };
    if ((spec.kind === "single" && !ballot.option) || (spec.kind === "rating" && !ballot.rating)) {
      notify(t("error.not_open"), "warn");
      return;
    }
    ctx.act(el, () => ctx.client.vote(view.id, /** @type {any} */ (ballot)), () => {
      if (!several) {
        ctx.mine[view.id] = { voted: true };
        return;
      }
      const text = /** @type {string} */ (ballot.text);
      ctx.mine[view.id] = { voted: true, answers: answers().includes(text) ? answers() : [...answers(), text] };
      form.reset();
    });
  });
  body.append(form, ...(several ? [sent] : []), board.el);
  return {
    el,
    /** @param {any} next */
    update(next) {
      heading.textContent = next.spec.question;
      form.hidden = next.status?.phase !== "open";
      if (several) {
        const mine = answers();
        const max = next.spec.max_answers ?? 3;
        replace(sent, ...mine.map((text) => h("li", { text })));
        status.textContent = mine.length ? t("poll.answers", { n: mine.length, max }) : "";
        fields.hidden = submit.hidden = mine.length >= max;
      } else {
        status.textContent = ctx.mine[next.id]?.voted ? `${t("poll.voted")} ${spec.kind !== "text" ? t("poll.change") : ""}` : "";
      }
      board.update(next);
    },
  };
}

/** @type {import("/static/registry.js").KindModule} */
export default {
  kind: "poll",
  order: 10,
  start: "open",
  title: (view) => view.spec?.question ?? view.id,

  live: (ctx) => ({
    shown(view) {
      const s = view.status ?? {};
      if (s.phase === "open") return true;
      return s.phase !== "draft" && within(Math.max(s.closed_at ?? 0, s.revealed_at ?? 0), ctx.showEndedS);
    },
    card: (view) => ballotCard(ctx, view),
  }),

  console: (ctx) => ({
    composer: {
      fields: () => [
        input("f-question", "poll.question", { required: true, maxlength: 200 }),
        select("f-type", "poll.type", TYPES.map((k) => [k, `poll.type.${k}`])),
        area("f-options", "poll.options", "A\nB\nC"),
        h(
          "div",
          { class: "row" },
          input("f-min", "poll.minpicks", { type: "number", min: 1, max: 20 }),
          input("f-max", "poll.maxpicks", { type: "number", min: 1, max: 20 }),
          select("f-scale", "poll.scale", [["5", "5"], ["10", "10"]]),
          input("f-answers", "poll.maxanswers", { type: "number", min: 1, max: 10, placeholder: "3" }),
        ),
        input("f-duration", "poll.duration", { type: "number", min: 1, max: 86400 }),
        checkbox("f-hide", "poll.hide"),
        checkbox("f-danmaku", "poll.danmaku"),
      ],
      relevant(value) {
        const type = value("f-type") ?? "";
        const picks = type === "multiple" || type === "ranked";
        return { "f-options": CHOICES.includes(type), "f-min": picks, "f-max": picks, "f-scale": type === "rating", "f-answers": type === "text", "f-danmaku": CHOICES.includes(type) };
      },
      spec(form) {
        const type = form.text("f-type");
        /** @type {Record<string, unknown>} */
        const spec = { id: newId("poll"), question: form.text("f-question"), kind: type };
        const byDanmaku = CHOICES.includes(type) && form.checked("f-danmaku");
        if (CHOICES.includes(type)) spec.options = (byDanmaku ? codedChoicesOf : choicesOf)(lines(form.text("f-options")));
        if (byDanmaku) spec.danmaku = true;
        if (type === "multiple" || type === "ranked") {
          if (form.number("f-min")) spec.min_picks = form.number("f-min");
          if (form.number("f-max")) spec.max_picks = form.number("f-max");
        }
        if (type === "rating") spec.scale = Number(form.text("f-scale") || 5);
        if (type === "text" && form.number("f-answers")) spec.max_answers = form.number("f-answers");
        if (form.number("f-duration")) spec.duration_s = form.number("f-duration");
        if (form.checked("f-hide")) spec.hide_results_until_reveal = true;
        return spec;
      },
    },
    card() {
      const board = new PollBoard({ showTitle: false });
      return { el: board.el, update: (view) => board.update(view) };
    },
    actions(view) {
      const phase = view.status?.phase ?? "draft";
      const next = { draft: "open", open: "close", closed: "reveal" }[phase];
      return next ? [ctx.button(view.id, next)] : [];
    },
  }),

  overlay: screen,
  wall: screen,

  words: {
    en: {
      "kind.poll": "Poll",
      "poll.vote": "Vote",
      "poll.voted": "Your vote counts ✓",
      "poll.change": "You can change your vote while the poll is open.",
      "poll.hidden": "Results are shown when the host reveals them ({n} votes).",
      "poll.voters": "{n} votes",
      "poll.points": "points",
      "poll.rating": "Your rating",
      "poll.text": "Your answer",
      "poll.sent": "Your answers",
      "poll.maxanswers": "Answers per viewer",
      "poll.answers": "{n} of {max} answers sent",
      "poll.ranked.hint": "Tap the options in your order of preference.",
      "poll.ranked.reset": "Start over",
      "poll.multiple.hint": "Pick {min} to {max}.",
      "poll.question": "Question",
      "poll.type": "Type",
      "poll.type.single": "Single choice",
      "poll.type.multiple": "Multiple choice",
      "poll.type.ranked": "Ranked",
      "poll.type.rating": "Rating",
      "poll.type.text": "Word cloud",
      "poll.options": "Options (one per line)",
      "poll.minpicks": "Min picks",
      "poll.maxpicks": "Max picks",
      "poll.scale": "Scale",
      "poll.duration": "Countdown (s, optional)",
      "poll.hide": "Hide results until revealed",
      "poll.danmaku": "Votes by danmaku (“1”, “A” or the label; own codes in brackets: “Red (红/#red)”)",
    },
    zh: {
      "kind.poll": "投票",
      "poll.vote": "投票",
      "poll.voted": "投票成功 ✓",
      "poll.change": "投票开放期间可以修改。",
      "poll.hidden": "结果将在主持人揭晓时公布（已有 {n} 票）。",
      "poll.voters": "{n} 票",
      "poll.points": "分",
      "poll.rating": "你的评分",
      "poll.text": "你的回答",
      "poll.sent": "你的回答",
      "poll.maxanswers": "每人回答数",
      "poll.answers": "已发送 {n}/{max} 个回答",
      "poll.ranked.hint": "按你的偏好顺序依次点选。",
      "poll.ranked.reset": "重新排序",
      "poll.multiple.hint": "选择 {min} 至 {max} 项。",
      "poll.question": "问题",
      "poll.type": "投票方式",
      "poll.type.single": "单选",
      "poll.type.multiple": "多选",
      "poll.type.ranked": "排序",
      "poll.type.rating": "评分",
      "poll.type.text": "词云",
      "poll.options": "选项（每行一个）",
      "poll.minpicks": "最少选",
      "poll.maxpicks": "最多选",
      "poll.scale": "评分范围",
      "poll.duration": "倒计时（秒，可选）",
      "poll.hide": "揭晓前隐藏结果",
      "poll.danmaku": "弹幕投票（发“1”“A”或选项名；自定口令写在括号里：“红色 (红/#红)”）",
    },
  },
};
