// Quizzes (PROTOCOL.md, "Kinds, specs and host actions"): the host asks one question at
// a time; viewers answer within its time limit; the answers are revealed and scored.
// The viewer page shows the current question with a countdown, and the player's own
// score and rank after each reveal (a private `quiz_standing` notice); the finished
// quiz stays with the final score. The console composes the questions, asks, closes,
// reveals and finishes, with the answers and leaderboard. The overlay and the wall
// put the top ten on stage after each reveal and at the end (the wall full screen).

import { formatNumber, h, replace, t } from "/static/common.js";
import { Bars, area, choicesOf, items, liveCard, newId, rows, titleField, within } from "/static/widgets.js";

const STAGE_S = 20; // how long a screen shows the leaderboard after a reveal
const FINAL_S = 600; // and after the quiz finished

/** The top ten, by name. @param {any[]} board */
function leaderList(board) {
  return h(
    "ol",
    { class: "leaderboard" },
    ...board.map((/** @type {any} */ row) =>
      h(
        "li",
        { class: "leader", data: { viewer: row.viewer, rank: row.rank, points: row.points } },
        h("span", { class: "leader-rank", text: `${row.rank}` }),
        h("span", { class: "leader-name", text: row.name ?? row.viewer }),
        h("span", { class: "leader-points", text: t("quiz.points", { n: formatNumber(row.points) }) }),
      ),
    ),
  );
}

/** This player's standing, as the last `quiz_standing` notice told it. @param {any} standing */
function standingLine(standing) {
  if (!standing) return null;
  const key = standing.final ? "quiz.final" : "quiz.standing";
  return h("p", {
    class: "standing",
    data: { rank: standing.rank, points: standing.points },
    text: t(key, { points: formatNumber(standing.points), rank: standing.rank, players: standing.players }),
  });
}

/**
 * The quiz a screen puts on stage: one just revealed, or finished a while ago (any time
 * ago while the host pushed it to the screens: `showEndedS` is then Infinity).
 * @param {any[]} views @param {number} showEndedS
 */
function onStage(views, showEndedS) {
  const pushed = showEndedS === Infinity;
  const staged = views.filter((v) =>
    v.state?.finished
      ? pushed || within(v.state.finished_at, FINAL_S)
      : v.state?.revealed && (pushed || within(v.state.revealed_at, STAGE_S)),
  );
  return staged.sort((a, b) => stageTime(b) - stageTime(a))[0] ?? null;
}
/** @param {any} view */
const stageTime = (view) => (view.state?.finished ? view.state.finished_at : view.state?.revealed_at) ?? 0;

/** Which leaderboard it is: the final one, or after which question. @param {any} view */
const stageKicker = (view) => (view.state?.finished ? t("quiz.finalboard") : t("quiz.after", { n: view.state?.asked?.length ?? 0 }));

/** The leaderboard on a screen: its title, which one it is, the top ten. @param {any} view */
function stageBoard(view) {
  return [h("h2", { class: "board-title", text: view.spec?.title ?? view.id }), h("p", { class: "tag", text: stageKicker(view) }), leaderList(view.leaderboard ?? [])];
}

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
      const standing = standingLine(ctx.mine[next.id]?.standing);
      clearInterval(timer);
      if (next.state?.finished) {
        replace(area, h("p", { class: "tag ok", text: t("phase.finished") }), standing ?? h("p", { class: "muted-text", text: t("quiz.nostanding") }));
        return;
      }
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
        standing,
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
          ? h("div", {}, h("h3", { text: t("quiz.leaderboard") }), leaderList(view.leaderboard), h("p", { class: "muted-text", text: t("quiz.players", { n: formatNumber(view.players ?? 0) }) }))
          : null,
      );
    },
  };
}

/**
 * The leaderboard on a screen after a reveal and at the end; on the wall (`full`) each
 * reveal and the end also take the whole screen for a while.
 * @param {import("/static/registry.js").ScreenContext} ctx @param {boolean} [full]
 */
function stage(ctx, full = false) {
  const el = ctx.frame();
  el.classList.add("quiz-stage");
  let shown = "";
  return {
    el,
    /** @param {any[]} views */
    update(views) {
      const quiz = onStage(views, ctx.showEndedS);
      el.hidden = !quiz;
      if (!quiz) return;
      replace(el, ...stageBoard(quiz));
      el.dataset.quiz = quiz.id;
      const moment = `${quiz.id}:${quiz.state?.asked?.length}:${quiz.state?.finished}`;
      if (full && moment !== shown) {
        shown = moment;
        ctx.reveal?.({ kicker: stageKicker(quiz), title: quiz.spec?.title ?? quiz.id, body: leaderList(quiz.leaderboard ?? []), id: quiz.id });
      }
    },
  };
}

/** @type {import("/static/registry.js").KindModule} */
export default {
  kind: "quiz",
  order: 20,
  start: "ask",
  phase: (view) => (view.state?.finished ? "finished" : view.state?.current ? "asking" : "draft"),

  live: (ctx) => ({
    // A finished quiz stays, with the final score.
    shown: (view) => Boolean(view.state?.current) || (view.state?.asked?.length ?? 0) > 0,
    card: (view) => questionCard(ctx, view),
    on: {
      /** This player's own score and rank, kept across reloads. @param {any} notice */
      quizStanding(notice) {
        ctx.mine[notice.interaction] = { ...(ctx.mine[notice.interaction] ?? {}), standing: notice };
        ctx.noted(notice.interaction);
      },
    },
  }),

  overlay: (ctx) => stage(ctx),
  wall: (ctx) => stage(ctx, true),

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
      "quiz.points": "{n} pts",
      "quiz.players": "{n} players",
      "quiz.standing": "You: {points} points, rank {rank} of {players}",
      "quiz.final": "Final score: {points} points, rank {rank} of {players}",
      "quiz.nostanding": "You did not score in this quiz.",
      "quiz.after": "Leaderboard after question {n}",
      "quiz.finalboard": "Final leaderboard",
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
      "quiz.points": "{n} 分",
      "quiz.players": "{n} 名玩家",
      "quiz.standing": "你的得分：{points} 分，第 {rank} 名（共 {players} 人）",
      "quiz.final": "最终得分：{points} 分，第 {rank} 名（共 {players} 人）",
      "quiz.nostanding": "你在本次答题中没有得分。",
      "quiz.after": "第 {n} 题后的排行榜",
      "quiz.finalboard": "最终排行榜",
      "phase.asking": "答题中",
      "phase.finished": "已完成",
      "action.ask": "出下一题",
      "action.finish": "完成",
    },
  },
};
