// Quizzes (PROTOCOL.md, "Kinds, specs and host actions"): the host asks one question at
// a time; viewers answer within its time limit; the answers are revealed and scored.
// The viewer page shows the current question with a countdown; the console composes
// the questions, asks, closes, reveals and finishes, with the answers and leaderboard.

import { h, replace, t } from "/static/common.js";
import { Bars, area, choicesOf, items, liveCard, newId, rows, titleField } from "/static/widgets.js";

/** @param {any} view */
const currentQuestion = (view) => view.spec?.questions?.find((/** @type {any} */ q) => q.id === view.state?.current);

/** @param {import("/static/registry.js").LiveContext} ctx @param {any} view */
function questionCard(ctx, view) {
  const { el, heading, body } = liveCard("quiz", view.id, view.spec.title);
  const area = h("div", {});
  body.append(area);
  let timer = 0;
  return {
    el,
    /** @param {any} next */
    update(next) {
      heading.textContent = next.spec.title;
      const current = next.state?.current;
      const question = currentQuestion(next);
      clearInterval(timer);
      if (!question) {
        replace(area);
        return;
      }
      const answered = ctx.mine[next.id]?.[current];
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
                ctx.act(el, () => ctx.client.answer(next.id, current, option.id), () => {
                  ctx.mine[next.id] = { ...(ctx.mine[next.id] ?? {}), [current]: option.id };
                }),
            },
          }),
        );
      }
      const correct = question.options.find((/** @type {any} */ o) => o.id === results?.correct);
      replace(
        area,
        h("p", { class: "question", text: question.text }),
        clock,
        options,
        answered ? h("p", { class: "muted-text", text: t("quiz.answered") }) : null,
        results?.correct ? h("p", { class: "tag ok", text: t("quiz.correct", { label: correct?.label ?? results.correct }) }) : null,
      );
    },
    remove: () => clearInterval(timer),
  };
}

/** The current question, its answers once revealed, the leaderboard. */
function details() {
  const el = h("div", {});
  const bars = new Bars({ plain: true });
  return {
    el,
    /** @param {any} view */
    update(view) {
      const current = currentQuestion(view);
      const results = (view.results ?? []).find((/** @type {any} */ r) => r.question === view.state?.current);
      if (results) bars.update(results.options.map((/** @type {any} */ o) => ({ id: o.id, label: o.label, count: o.count, share: 0, leading: o.id === current?.correct })));
      replace(
        el,
        current ? h("p", { text: t("quiz.current", { text: current.text }) }) : null,
        results ? bars.el : null,
        view.leaderboard?.length
          ? h("div", {}, h("h3", { text: t("quiz.leaderboard") }), h("ol", {}, ...view.leaderboard.map((/** @type {any} */ row) => h("li", { text: `${row.name ?? row.viewer} · ${row.points}` }))))
          : null,
      );
    },
  };
}

/** @type {import("/static/registry.js").KindModule} */
export default {
  kind: "quiz",
  order: 20,
  phase: (view) => (view.state?.finished ? "finished" : view.state?.current ? "asking" : "draft"),

  live: (ctx) => ({
    shown: (view) => !view.state?.finished && (Boolean(view.state?.current) || (view.state?.asked?.length ?? 0) > 0),
    card: (view) => questionCard(ctx, view),
  }),

  console: (ctx) => ({
    composer: {
      fields: () => [titleField(), area("f-questions", "quiz.questions", "2 + 2? | 3, 4, 5 | 2")],
      spec: (form) => ({
        id: newId("quiz"),
        title: form.text("f-title"),
        questions: rows(form.text("f-questions")).map(([text, labels = "", correct = "1"], i) => ({
          id: `q${i + 1}`,
          text,
          options: choicesOf(items(labels)),
          correct: `o${Math.max(1, Number(correct) || 1)}`,
        })),
      }),
    },
    card: details,
    actions(view) {
      if (view.state?.finished) return [];
      const asked = view.state?.asked?.length ?? 0;
      const total = view.spec?.questions?.length ?? 0;
      return [
        asked < total && !view.accepting ? ctx.button(view.id, "ask") : null,
        view.accepting ? ctx.button(view.id, "close") : null,
        view.state?.current && !view.accepting && !view.state?.revealed ? ctx.button(view.id, "reveal") : null,
        asked > 0 ? ctx.button(view.id, "finish", { class: "secondary" }) : null,
      ].filter((b) => b !== null);
    },
  }),

  words: {
    en: {
      "kind.quiz": "Quiz",
      "quiz.answered": "Answer locked in ✓",
      "quiz.correct": "Correct answer: {label}",
      "quiz.questions": "Questions: “question | option, option, … | number of the correct option”, one per line",
      "quiz.current": "Current question: {text}",
      "quiz.leaderboard": "Leaderboard",
      "phase.asking": "Asking",
      "phase.finished": "Finished",
      "action.ask": "Ask next question",
      "action.finish": "Finish",
    },
    zh: {
      "kind.quiz": "答题",
      "quiz.answered": "已作答 ✓",
      "quiz.correct": "正确答案：{label}",
      "quiz.questions": "题目：“题干 | 选项, 选项, … | 正确选项序号”，每行一题",
      "quiz.current": "当前题目：{text}",
      "quiz.leaderboard": "排行榜",
      "phase.asking": "答题中",
      "phase.finished": "已完成",
      "action.ask": "出下一题",
      "action.finish": "完成",
    },
  },
};
