// The room's wall (PROTOCOL.md, "Wall"): viewers post short texts from the viewer page;
// the console moderates them in a tab of their own (pre- or post-moderation, the queue,
// pin, reject) and owns the room's `wall_moderation` setting, and the screens' danmaku
// settings (`wall_danmaku`, `danmaku_merge_s`); the wall page shows the approved posts,
// pinned first, as many as fit. Posts carry `data-post`.

import { h, notify, replace, t } from "/static/common.js";
import { field, placeInOrder, select } from "/static/widgets.js";

const POSTS_SHOWN = 24;
const MODES = ["pre", "post"];

/** The form that posts to the wall: a section of its own on the viewer page. @param {import("/static/registry.js").LiveContext} ctx @param {any} view */
function postSection(ctx, view) {
  const text = /** @type {HTMLTextAreaElement} */ (h("textarea", { attrs: { id: "post-text", name: "text", rows: 2, maxlength: 140, placeholder: t("wall.post.placeholder") } }));
  const status = h("span", { attrs: { id: "post-status", role: "status" }, class: "muted-text" });
  const form = h(
    "form",
    { attrs: { id: "post-form" }, class: "post-form" },
    h("label", { attrs: { for: "post-text" }, class: "visually-hidden", text: t("wall.post") }),
    text,
    h("div", { class: "row" }, h("button", { attrs: { type: "submit" }, text: t("wall.post.send") }), status),
  );
  const el = h("section", { attrs: { id: "wall-section" }, class: "card", aria: { labelledby: "wall-heading" }, data: { interaction: view.id } }, h("h2", { attrs: { id: "wall-heading" }, text: t("wall.post") }), form);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const post = text.value.trim();
    if (!post) return notify(t("error.empty_text"), "warn");
    ctx.act(el, () => ctx.client.post(post), (ack) => {
      text.value = "";
      status.textContent = t(ack.status === "approved" ? "wall.post.approved" : "wall.post.pending");
    });
  });
  return {
    el,
    /** @param {any} next */
    update(next) {
      text.setAttribute("maxlength", String(next.spec?.max_chars ?? 140));
    },
  };
}

/** Approved posts, pinned first, in the view's order. */
function posts() {
  // the wall page leaves out the last posts that do not fit (`data-fit="trim"`)
  const list = h("ol", { attrs: { id: "posts" }, class: "posts", aria: { live: "polite" }, data: { fit: "trim" } });
  const empty = h("p", { attrs: { id: "posts-empty" }, class: "posts-empty", data: { i18n: "wall.empty" }, text: t("wall.empty") });
  /** @type {Map<string, HTMLElement>} */
  const shown = new Map();
  const el = h(
    "section",
    { class: "posts-area", aria: { labelledby: "posts-heading" }, data: { empty: "true" } },
    h("h2", { attrs: { id: "posts-heading" }, class: "visually-hidden", data: { i18n: "kind.wall" }, text: t("kind.wall") }),
    list,
    empty,
  );
  return {
    el,
    region: /** @type {const} */ ("main"),
    /** @param {any[]} views */
    update([view]) {
      if (!view) return;
      const wanted = (view.posts ?? []).slice(0, POSTS_SHOWN);
      const keep = new Set(wanted.map((/** @type {any} */ p) => p.id));
      for (const [id, el] of shown) {
        if (!keep.has(id)) {
          el.remove();
          shown.delete(id);
        }
      }
      for (const post of wanted) {
        let el = shown.get(post.id);
        if (!el) {
          el = h("li", { class: "post", data: { post: post.id } }, h("span", { class: "who", text: post.name ?? "" }), h("span", { class: "text", text: post.text }));
          shown.set(post.id, el);
        }
        el.classList.toggle("pinned", Boolean(post.pinned_at));
      }
      // the view's order, pinned first, then newest; moving only those out of place, so a
      // post already shown does not play its entrance again
      placeInOrder(list, wanted.map((/** @type {any} */ p) => /** @type {HTMLElement} */ (shown.get(p.id))));
      empty.hidden = wanted.length > 0;
      el.dataset.empty = String(wanted.length === 0); // the wall gives the room to other panels
    },
  };
}

/** The console's wall tab: moderation mode, open or close, the queue and the posts on the wall. @param {import("/static/registry.js").ConsoleContext} ctx */
function moderationTab(ctx) {
  const tools = h("div", { attrs: { id: "wall-tools" }, class: "card" });
  const queue = h("ol", { attrs: { id: "wall-queue" }, class: "items" });
  const approved = h("ol", { attrs: { id: "wall-approved" }, class: "items" });
  /** @param {string} id @param {string} word @param {HTMLElement} list */
  const column = (id, word, list) => h("section", { class: "card", aria: { labelledby: id } }, h("h2", { attrs: { id }, data: { i18n: word }, text: t(word) }), list);
  const el = h("div", {}, tools, h("div", { class: "columns" }, column("queue-heading", "wall.queue", queue), column("approved-heading", "wall.approved", approved)));
  return {
    el,
    /** @param {any} wall */
    update(wall) {
      const mode = ctx.settings().wall_moderation ?? "pre";
      const open = wall.status?.phase === "open";
      replace(
        tools,
        h(
          "fieldset",
          {},
          h("legend", { text: t("wall.moderation") }),
          ...MODES.map((m) =>
            h(
              "label",
              { class: "inline", attrs: { for: `wallmod-${m}` } },
              h("input", { attrs: { type: "radio", name: "wall-moderation", id: `wallmod-${m}`, value: m }, checked: mode === m, on: { change: () => ctx.saveSettings({ wall_moderation: m }) } }),
              t(`wall.mode.${m}`),
            ),
          ),
        ),
        h(
          "div",
          { class: "row" },
          h("span", { class: "tag", data: { phase: open ? "open" : "closed" }, text: t(`phase.${open ? "open" : "closed"}`) }),
          ctx.button(wall.id, open ? "close" : "open", { class: "secondary" }),
        ),
      );
      /** @param {any} p @param {HTMLElement[]} buttons */
      const item = (p, buttons) =>
        h("li", { class: `item${p.pinned_at ? " pinned" : ""}`, data: { post: p.id } }, h("p", {}, h("strong", { text: p.name ?? "?" }), " ", p.text), h("div", { class: "row" }, ...buttons));
      /** @param {string} action @param {any} p @param {string} [cls] */
      const button = (action, p, cls = "small") => ctx.button(wall.id, action, { fields: { post: p.id }, class: cls });
      const waiting = wall.queue ?? [];
      replace(
        queue,
        ...(waiting.length ? waiting.map((/** @type {any} */ p) => item(p, [button("approve", p), button("reject", p, "small danger")])) : [h("li", { class: "muted-text", text: t("wall.queue.empty") })]),
      );
      replace(approved, ...(wall.posts ?? []).map((/** @type {any} */ p) => item(p, [button(p.pinned_at ? "unpin" : "pin", p, "small secondary"), button("reject", p, "small danger")])));
    },
  };
}

/** @type {import("/static/registry.js").KindModule} */
export default {
  kind: "wall",
  order: 70,
  standing: true,

  live: (ctx) => ({
    shown: (view) => view.status?.phase === "open",
    card: (view) => postSection(ctx, view),
    place: "section",
  }),

  console: (ctx) => ({
    tab: moderationTab(ctx),
    // the wall's settings, and how the screens (the wall and the overlay) show danmaku
    settings: {
      fields: (settings) => [
        select("s-wallmod", "wall.moderation", MODES.map((m) => [m, `wall.mode.${m}`]), { name: "wall_moderation", value: settings.wall_moderation ?? "pre" }),
        h("label", { class: "inline", attrs: { for: "s-walldanmaku" } }, h("input", { attrs: { id: "s-walldanmaku", name: "wall_danmaku", type: "checkbox" }, checked: settings.wall_danmaku === true }), t("wall.danmaku")),
        field("s-merge", "wall.merge", h("input", { attrs: { id: "s-merge", name: "danmaku_merge_s", type: "number", min: 0, max: 30, value: settings.danmaku_merge_s ?? 3 } })),
      ],
      read: (data) => ({
        wall_moderation: data.get("wall_moderation"),
        wall_danmaku: data.get("wall_danmaku") === "on",
        danmaku_merge_s: Number(data.get("danmaku_merge_s") ?? 3),
      }),
    },
  }),

  wall: posts,

  words: {
    en: {
      "kind.wall": "Wall",
      "wall.post": "Post to the wall",
      "wall.post.placeholder": "Say hi to the venue…",
      "wall.post.send": "Post",
      "wall.post.pending": "Sent: your post shows on the wall once a moderator approves it.",
      "wall.post.approved": "Posted to the wall ✓",
      "wall.empty": "Posts appear here once approved. Scan the code to post!",
      "wall.queue": "Waiting for approval",
      "wall.queue.empty": "No posts waiting.",
      "wall.approved": "On the wall",
      "wall.moderation": "Moderation",
      "wall.mode.pre": "Approve posts before they show",
      "wall.mode.post": "Show posts at once (reject later)",
      "wall.danmaku": "Danmaku fly across the wall too",
      "wall.merge": "Merge identical danmaku on the screens within (s, 0: never)",
      "action.approve": "Approve",
      "action.reject": "Reject",
    },
    zh: {
      "kind.wall": "上墙",
      "wall.post": "上墙",
      "wall.post.placeholder": "和现场打个招呼…",
      "wall.post.send": "发送上墙",
      "wall.post.pending": "已发送：审核通过后将显示在大屏上。",
      "wall.post.approved": "已上墙 ✓",
      "wall.empty": "审核通过的留言将显示在这里，扫码即可上墙！",
      "wall.queue": "待审核",
      "wall.queue.empty": "没有待审核的留言。",
      "wall.approved": "已上墙",
      "wall.moderation": "审核方式",
      "wall.mode.pre": "先审后发",
      "wall.mode.post": "先发后审",
      "wall.danmaku": "大屏也显示弹幕",
      "wall.merge": "大屏和直播画面合并相同弹幕的时间窗（秒，0 为不合并）",
      "action.approve": "通过",
      "action.reject": "拒绝",
    },
  },
};
