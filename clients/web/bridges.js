// Platform chat bridges on the console (PROTOCOL.md, "Bridges").
//
// A host brings a platform's chat into the room: the platform (those the node has) and the
// channel's id (a Twitch login, a webhook channel name). Credentials are the node's
// configuration, never typed here. Each bridge shows its health as the node that runs it
// sees it (connected, lag, messages, refusals, errors), and the node that runs it (the owner
// of its lease: another node takes it over if that one dies), read again every few seconds.

import { h, replace, t } from "/static/common.js";

export const BRIDGE_WORDS = {
  en: {
    "bridges.title": "Platform chat bridges",
    "bridges.help": "Each chat message of the channel becomes a danmaku here, through this room's filter and limits. Credentials are in the server's configuration.",
    "bridges.platform": "Platform",
    "bridges.channel": "Channel id",
    "bridges.add": "Add bridge",
    "bridges.remove": "Remove",
    "bridges.none": "No bridges: only this room's viewers send danmaku.",
    "bridges.state.connecting": "connecting",
    "bridges.state.connected": "connected",
    "bridges.state.retrying": "reconnecting",
    "bridges.state.failed": "failed",
    "bridges.state.stopped": "stopped",
    "bridges.state.elsewhere": "on another node",
    "bridges.health": "{messages} messages · {refused} refused · {errors} errors",
    "bridges.lag": "lag {lag} ms",
    "bridges.node": "on {node}",
    "bridges.added": "Bridge added.",
    "bridges.removed": "Bridge removed.",
  },
  zh: {
    "bridges.title": "直播平台弹幕桥接",
    "bridges.help": "该频道的每条聊天消息都会成为本房间的弹幕，并经过本房间的过滤和限流。凭据保存在服务器配置里。",
    "bridges.platform": "平台",
    "bridges.channel": "频道 ID",
    "bridges.add": "添加桥接",
    "bridges.remove": "删除",
    "bridges.none": "没有桥接：只有本房间的观众发送弹幕。",
    "bridges.state.connecting": "连接中",
    "bridges.state.connected": "已连接",
    "bridges.state.retrying": "重连中",
    "bridges.state.failed": "失败",
    "bridges.state.stopped": "已停止",
    "bridges.state.elsewhere": "在其他节点",
    "bridges.health": "{messages} 条消息 · {refused} 条被拒 · {errors} 次错误",
    "bridges.lag": "延迟 {lag} 毫秒",
    "bridges.node": "运行于 {node}",
    "bridges.added": "桥接已添加。",
    "bridges.removed": "桥接已删除。",
  },
};

const EVERY_MS = 5000; // how often the health is read again

/**
 * @typedef {object} BridgesHow
 * @property {(path: string, method?: string, body?: unknown) => Promise<any>} call  a REST call on the room (errors become notices)
 * @property {(path: string) => Promise<any>} read  a quiet GET on the room (null when refused)
 * @property {(text: string, level?: string) => void} notify
 */

export class BridgesPanel {
  /** @param {BridgesHow} how */
  constructor(how) {
    this.how = how;
    /** @type {any[]} */
    this.bridges = [];
    /** @type {string[]} */
    this.platforms = [];
    this.allowed = false; // hosts and the admin manage bridges; moderators do not see them
    /** @type {number | undefined} */
    this.timer = undefined;
  }

  /** Read the room's bridges now and every few seconds. */
  start() {
    clearInterval(this.timer);
    this.timer = window.setInterval(() => this.refresh(), EVERY_MS);
    this.refresh();
  }

  stop() {
    clearInterval(this.timer);
  }

  /** A console that may not manage bridges (a moderator's) shows none. */
  hide() {
    this.stop();
    this.allowed = false;
    this.draw();
  }

  async refresh() {
    const answer = await this.how.read("/bridges");
    this.allowed = answer !== null;
    this.bridges = answer?.bridges ?? [];
    this.platforms = answer?.platforms ?? [];
    this.draw();
  }

  /** @param {HTMLFormElement} form */
  async add(form) {
    const data = new FormData(form);
    const body = { platform: String(data.get("platform") ?? ""), channel: String(data.get("channel") ?? "").trim() };
    const answer = await this.how.call("/bridges", "POST", body);
    if (!answer) return;
    form.reset();
    this.how.notify(t("bridges.added"), "ok");
    await this.refresh();
  }

  /** @param {any} bridge */
  async remove(bridge) {
    const path = `/bridges/${encodeURIComponent(bridge.platform)}/${encodeURIComponent(bridge.channel)}`;
    await this.how.call(path, "DELETE"); // 204: no answer; a refusal is a notice
    await this.refresh();
    if (!this.bridges.some((x) => x.id === bridge.id)) this.how.notify(t("bridges.removed"), "ok");
  }

  draw() {
    const card = document.getElementById("bridges-card");
    const list = document.getElementById("bridge-list");
    const select = document.getElementById("bridge-platform");
    if (!card || !list || !select) return;
    card.hidden = !this.allowed;
    const chosen = /** @type {HTMLSelectElement} */ (select).value;
    replace(select, ...this.platforms.map((p) => h("option", { attrs: { value: p }, text: p })));
    if (this.platforms.includes(chosen)) /** @type {HTMLSelectElement} */ (select).value = chosen;
    replace(list, ...(this.bridges.length ? this.bridges.map((b) => this.item(b)) : [h("li", { class: "muted-text", text: t("bridges.none") })]));
  }

  /** @param {any} b */
  item(b) {
    const s = b.status ?? {};
    const state = h("span", { class: `bridge-state bridge-${s.state}`, data: { state: s.state }, text: t(`bridges.state.${s.state}`) });
    const parts = [];
    if (typeof b.node === "string") parts.push(t("bridges.node", { node: b.node })); // the lease's owner
    if (s.state !== "elsewhere") parts.push(t("bridges.health", { messages: s.messages ?? 0, refused: s.refused ?? 0, errors: s.errors ?? 0 }));
    if (typeof s.lag_ms === "number") parts.push(t("bridges.lag", { lag: s.lag_ms }));
    return h(
      "li",
      { class: "row item", data: { bridge: b.id } },
      h(
        "span",
        { class: "grow" },
        h("strong", { text: `${b.platform} · ${b.channel}` }),
        " ",
        state,
        h("span", { class: "muted-text", text: parts.length ? ` · ${parts.join(" · ")}` : "" }),
        s.last_error ? h("span", { class: "muted-text bridge-error", text: ` · ${s.last_error}` }) : "",
      ),
      h("button", { class: "small secondary", attrs: { type: "button" }, data: { action: "remove-bridge" }, text: t("bridges.remove"), on: { click: () => this.remove(b) } }),
    );
  }
}
