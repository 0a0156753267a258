// Q&A boards (PROTOCOL.md, "Kinds, specs and host actions"): viewers ask and upvote
// questions; hosts answer, pin and hide them. Questions are ordered by the server
// (pinned first, then by upvotes); each carries `data-question`. The overlay and the
// wall show the newest board's first few questions (`.votes` with `data-count`, the exact count).

import { formatNumber, h, notify, replace, t } from "/static/common.js";
import { liveCard, newest, newId, titleField } from "/static/widgets.js";

const ON_OVERLAY = 3; // questions the overlay shows
const ON_WALL = 5; // questions the wall shows

/**
 * The newest board's first questions on a screen, in the server's order: pinned first,
 * then the most voted. Hidden while no board is open (or ended a little while ago) or
 * it has no question.
 * @param {import("/static/registry.js").ScreenContext} ctx @param {number} most
 */
function screenBoard(ctx, most) {
  const title = h("h2", { class: "board-title" });
  const list = h("ol", { class: "qa-board" });
  const el = ctx.frame(title, list);
  return {
    el,
    /** @param {any[]} views */
    update(views) {
      const board = newest(views, ctx.showEndedS);
      const questions = (board?.questions ?? []).filter((/** @type {any} */ q) => !q.hidden).slice(0, most);
      el.hidden = !board || questions.length === 0;
      if (el.hidden) return;
      el.dataset.interaction = board.id;
      title.textContent = board.spec?.title ?? board.id;
      replace(
        list,
        ...questions.map((/** @type {any} */ q) =>
          h(
            "li",
            { class: `question-item${q.pinned_at ? " pinned" : ""}`, data: { question: q.id } },
            h("span", { class: "votes", data: { count: q.votes }, attrs: { title: t("qa.votes", { n: q.votes }) }, text: `▲ ${formatNumber(q.votes)}` }),
            h(
              "p",
              { class: "q-text" },
              q.pinned_at ? h("span", { class: "tag", text: t("qa.pinned") }) : null,
              q.answered_at ? h("span", { class: "tag ok", text: t("qa.answered") }) : null,
              h("span", { class: "q-words", text: q.text }),
              h("span", { class: "q-name", text: q.name ?? "" }),
            ),
          ),
        ),
      );
    },
  };
}

/** @param {import("/static/registry.js").LiveContext} ctx @param {any} view */
function askCard(ctx, view) {
  const { el, heading, body } = liveCard("qa", view.id, view.spec.title);
  const inputId = `${view.id}-ask`;
  const text = /** @type {HTMLTextAreaElement} */ (h("textarea", { attrs: { id: inputId, name: "text", rows: 2, maxlength: view.spec.max_chars ?? 300, placeholder: t("qa.ask.placeholder") } }));
  const form = h("form", { class: "ask" }, h("label", { attrs: { for: inputId }, text: t("qa.ask") }), text, h("button", { attrs: { type: "submit" }, text: t("qa.ask.send") }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const question = text.value.trim();
    if (!question) return notify(t("error.empty_text"), "warn");
    ctx.act(el, () => ctx.client.ask(view.id, question), () => {
      text.value = "";
      notify(t("qa.sent"), "ok");
    });
  });
  const list = h("ol", { class: "questions" });
  body.append(form, list);
  return {
    el,
    /** @param {any} next */
    update(next) {
      heading.textContent = next.spec.title;
      const open = next.status?.phase === "open";
      form.hidden = !open;
      const upvoted = ctx.mine[next.id] ?? {};
      /** @param {string} qid @param {boolean} up */
      const vote = (qid, up) =>
        ctx.act(el, () => (up ? ctx.client.upvote(next.id, qid) : ctx.client.unvote(next.id, qid)), () => {
          ctx.mine[next.id] = { ...upvoted, [qid]: up };
        });
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
              q.pinned_at ? h("span", { class: "tag", text: t("qa.pinned") }) : null,
              q.answered_at ? h("span", { class: "tag ok", text: t("qa.answered") }) : null,
              h("button", {
                class: "secondary small votes",
                attrs: { type: "button" },
                data: { count: q.votes },
                aria: { pressed: upvoted[q.id] ? "true" : "false" },
                disabled: !open,
                text: `${upvoted[q.id] ? t("qa.upvoted") : t("qa.upvote")} · ${formatNumber(q.votes)}`,
                on: { click: () => vote(q.id, !upvoted[q.id]) },
              }),
            ),
          ),
        ),
      );
    },
  };
}

/** The questions, each with answer, pin and hide. @param {import("/static/registry.js").ConsoleContext} ctx */
function moderation(ctx) {
  const el = h("ol", { class: "items" });
  return {
    el,
    /** @param {any} view */
    update(view) {
      replace(
        el,
        ...(view.questions ?? []).map((/** @type {any} */ q) => {
          const answerId = `answer-${view.id}-${q.id}`;
          const answer = /** @type {HTMLInputElement} */ (h("input", { attrs: { id: answerId, maxlength: 2000, value: q.answer ?? "", placeholder: t("qa.answer.placeholder") } }));
          const send = () => ctx.act(view.id, "answer", { question: q.id, ...(answer.value.trim() ? { text: answer.value.trim() } : {}) });
          return h(
            "li",
            { class: `item${q.hidden ? " hidden-item" : ""}`, data: { question: q.id } },
            h("p", {}, h("strong", { text: q.name ?? "?" }), " · ", h("span", { class: "votes", data: { count: q.votes }, text: t("qa.votes", { n: q.votes }) }), " · ", q.text),
            h(
              "div",
              { class: "row" },
              h("label", { class: "visually-hidden", attrs: { for: answerId }, text: t("action.answer") }),
              answer,
              h("button", { class: "small", attrs: { type: "button" }, text: t("action.answer"), on: { click: send } }),
              ctx.button(view.id, q.pinned_at ? "unpin" : "pin", { fields: { question: q.id }, class: "small secondary" }),
              ctx.button(view.id, q.hidden ? "unhide" : "hide", { fields: { question: q.id }, class: "small secondary" }),
            ),
          );
        }),
      );
    },
  };
}

/** @type {import("/static/registry.js").KindModule} */
export default {
  kind: "qa",
  order: 50,
  start: "open",

  live: (ctx) => ({
    shown: (view) => view.status?.phase === "open",
    card: (view) => askCard(ctx, view),
  }),

  overlay: (ctx) => screenBoard(ctx, ON_OVERLAY),
  wall: (ctx) => screenBoard(ctx, ON_WALL),

  console: (ctx) => ({
    composer: {
      fields: () => [titleField()],
      spec: (form) => ({ id: newId("qa"), title: form.text("f-title") }),
    },
    card: () => moderation(ctx),
    actions(view) {
      const next = { draft: "open", open: "close" }[view.status?.phase ?? "draft"];
      return next ? [ctx.button(view.id, next)] : [];
    },
  }),

  words: {
    en: {
      "kind.qa": "Q&A",
      "qa.ask": "Ask a question",
      "qa.ask.placeholder": "Your question…",
      "qa.ask.send": "Ask",
      "qa.sent": "Sent",
      "qa.upvote": "Upvote",
      "qa.upvoted": "Upvoted",
      "qa.votes": "{n} upvotes",
      "qa.answered": "Answered",
      "qa.pinned": "Pinned",
      "qa.answer.placeholder": "Answer (optional)",
      "action.answer": "Answer",
      "action.hide": "Hide",
      "action.unhide": "Unhide",
    },
    zh: {
      "kind.qa": "问答",
      "qa.ask": "提问",
      "qa.ask.placeholder": "你的问题…",
      "qa.ask.send": "提问",
      "qa.sent": "已发送",
      "qa.upvote": "点赞",
      "qa.upvoted": "已点赞",
      "qa.votes": "{n} 赞",
      "qa.answered": "已回答",
      "qa.pinned": "置顶",
      "qa.answer.placeholder": "回答（可选）",
      "action.answer": "回答",
      "action.hide": "隐藏",
      "action.unhide": "取消隐藏",
    },
  },
};
