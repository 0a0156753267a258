// The pages' words in Chinese and English (issue 7: "UI in Chinese and English, browser
// language, switchable"). The language is the `lang` URL parameter, else the one the
// user chose last (localStorage), else the browser's; `setLang` switches it and pages
// redraw on the "langchange" event of `window`.
//
// Every string a page shows comes from here through `t(key, vars)`; `{name}` in a
// string is replaced by vars.name. Keys missing in one language fall back to English.
// The words of one interaction kind are in its module (kinds/*.js), which the registry
// (registry.js) adds here with `addWords`.

const WORDS = {
  en: {
    "app.name": "hudong",
    "lang.switch": "中文",
    "lang.label": "Language: switch to Chinese",
    "conn.connecting": "Connecting…",
    "conn.connected": "Live",
    "conn.reconnecting": "Reconnecting…",
    "conn.disconnected": "Offline",
    "conn.closing": "Closing…",
    "online": "{n} online",
    "degrade.0": "Normal",
    "degrade.1": "Busy: similar messages are merged",
    "degrade.2": "Overloaded: slow mode",
    "degrade.3": "Essential only: messages paused",
    "degrade.label": "Load level",
    "error.rate_limited": "Slow down a little: try again in {s} s.",
    "error.room_rate_limited": "The room is very busy: try again in {s} s.",
    "error.slow_mode": "Slow mode: you can send again in {s} s.",
    "error.danmaku_paused": "Messages are paused for now; voting still works.",
    "error.muted": "A moderator muted you for {s} more seconds.",
    "error.banned": "A moderator removed you from this room.",
    "error.text_too_long": "Too long: at most {limit} characters.",
    "error.empty_text": "Write something first.",
    "error.text_refused": "That message holds words this room does not allow.",
    "error.links_not_allowed": "Links, phone numbers and WeChat/QQ ids are not allowed here.",
    "error.duplicate_text": "You just sent that; try something new in {s} s.",
    "error.name_reserved": "That name is kept for the room's hosts; pick another.",
    "danmaku.held": "Your message waits for a moderator.",
    "badge.host": "Host",
    "badge.moderator": "Mod",
    "error.room_not_found": "This room does not exist.",
    "error.unauthorized": "This link's token is not valid (expired, or for another room).",
    "error.anonymous_not_allowed": "This room needs an invitation link.",
    "error.forbidden": "This token may not do that.",
    "error.not_open": "This is not open right now.",
    "error.already_done": "You did that already.",
    "error.out_of_stock": "That option is sold out.",
    "error.not_eligible": "You cannot enter this draw.",
    "error.malformed": "The server could not read that request.",
    "error.frame_too_large": "That is too large to send (at most {limit} bytes).",
    "error.unknown_op": "The server does not know that command; reload the page.",
    "error.invalid_field": "Something in that request is missing or not valid.",
    "error.not_joined": "Not in the room yet; joining…",
    "error.already_joined": "Already in this room.",
    "error.invalid_vote": "That answer does not fit this question.",
    "error.unknown_option": "That option does not exist (any more).",
    "error.unknown_target": "Nothing has that id or code (any more).",
    "error.illegal_transition": "That cannot be done in the current state.",
    "error.too_few_picks": "Pick at least {limit}.",
    "error.too_many_picks": "Pick at most {limit}.",
    "error.no_entrants": "Nobody is in this draw yet.",
    "error.limit_reached": "Limit reached (at most {limit}): wait, or close another tab first.",
    "error.internal_error": "The server failed; nothing was changed. Try again.",
    "error.transport_error": "Connection problem; retrying…",
    "error.bad_frame": "The server sent something this page cannot read; reload the page.",
    "error.body_too_large": "That is too large to send.",
    "error.not_found": "Not found.",
    "error.method_not_allowed": "The server does not allow that request.",
    "error.http_error": "The server answered with an error: {message}",
    "error.store_unavailable": "The server is catching up; retrying…",
    "error.disconnected": "Connection lost; retrying…",
    "error.timeout": "No answer from the server; retrying…",
    "error.protocol_mismatch": "This page and the server speak different protocol versions; reload the page.",
    "error.generic": "Something went wrong: {message}",
    "error.no_token": "This page needs a token in its link (…#token=…).",
    "closed.room_deleted": "This room was deleted.",
    "closed.banned": "A moderator removed you from this room.",
    "closed.token_expired": "Your access to this room has expired; open the page with a new link.",
    "closed.token_revoked": "Your access to this room was withdrawn.",
    "you.as": "You: {name}",
    // live page
    "live.title": "Live",
    "live.name": "Your name",
    "live.name.save": "Save",
    "live.name.hint": "Shown next to your messages",
    "live.compose": "Send a bullet comment",
    "live.compose.placeholder": "Say something…",
    "live.send": "Send",
    "live.color": "Colour",
    "live.mode": "Position",
    "mode.scroll": "Scroll",
    "mode.top": "Top",
    "mode.bottom": "Bottom",
    "color.white": "White",
    "color.red": "Red",
    "color.yellow": "Yellow",
    "color.green": "Green",
    "color.blue": "Blue",
    "color.pink": "Pink",
    "live.feed": "Messages",
    "live.now": "Taking part",
    "live.nothing": "Nothing to vote on right now: watch this space.",
    // overlay and wall
    "wall.scan": "Scan to join",
    "wall.online": "watching",
    "wall.reconnecting": "Reconnecting…",
    // console
    "console.title": "Console",
    "console.signin": "Sign in",
    "console.signin.hint": "Paste the admin token, or a host or moderator token of a room.",
    "console.signin.again": "The server no longer takes this sign-in (it restarted with a new secret). Sign in again.",
    "console.token": "Token",
    "console.room": "Room",
    "console.signin.go": "Sign in",
    "console.signout": "Sign out",
    "console.rooms": "Rooms",
    "console.rooms.back": "All rooms",
    "console.rooms.new": "New room",
    "console.rooms.id": "Room id",
    "console.rooms.title": "Title",
    "console.rooms.create": "Create room",
    "console.rooms.open": "Open",
    "console.nav.live": "Live",
    "console.nav.interactions": "Interactions",
    "console.nav.danmaku": "Danmaku",
    "console.nav.settings": "Room",
    "console.stats.online": "Viewers",
    "console.stats.participants": "Participants",
    "console.stats.danmaku": "Danmaku / min",
    "console.stats.votes": "Votes / min",
    "console.stats.posts": "Posts / min",
    "console.stats.degrade": "Load level",
    "console.links": "Screens and links",
    "console.links.make": "Make links for the overlay and wall",
    "console.links.live": "Viewer page",
    "console.links.overlay": "Stream overlay (OBS browser source)",
    "console.links.wall": "Venue wall",
    "console.links.copy": "Copy",
    "console.links.copied": "Copied",
    "console.new": "New interaction",
    "console.kind": "Kind",
    "console.id": "Id",
    "console.titlefield": "Title",
    "console.create": "Create",
    "console.created": "Created {id}",
    "console.none": "No interactions yet: create one above.",
    "phase.draft": "Draft",
    "phase.open": "Open",
    "phase.closed": "Closed",
    "phase.revealed": "Revealed",
    "action.open": "Open",
    "action.close": "Close",
    "action.reveal": "Reveal",
    "action.pin": "Pin",
    "action.unpin": "Unpin",
    "action.retract": "Retract",
    "action.mute": "Mute 10 min",
    "action.unmute": "Unmute",
    "action.ban": "Ban",
    "action.unban": "Unban",
    "console.danmaku.feed": "Recent danmaku",
    "console.danmaku.empty": "No danmaku yet.",
    "console.danmaku.muted": "Muted",
    "console.danmaku.banned": "Banned",
    "console.moderation.list": "Muted and banned",
    "console.words.title": "Blocked words of this room",
    "console.words.help": "One a line; \"mask word\" shows it as ＊, \"review word\" holds it; otherwise it is refused. Only staff see this list.",
    "console.words.save": "Save words",
    "console.settings.links": "Viewers may send links, phone numbers and WeChat/QQ ids",
    "console.until": "until {time}",
    "console.settings.title": "Title",
    "console.settings.mode": "Danmaku",
    "roommode.open": "Everyone",
    "roommode.slow": "Slow mode",
    "roommode.staff": "Hosts and moderators only",
    "console.settings.slow": "Slow mode interval (s)",
    "console.settings.anonymous": "Viewers may join without an invitation",
    "console.settings.floor": "Degrade floor",
    "console.settings.brand": "Wall colour",
    "console.settings.accent": "Accent colour",
    "console.settings.logo": "Logo (a path on this server, e.g. /assets/logo.png)",
    "console.settings.save": "Save settings",
    "console.saved": "Saved",
  },
  zh: {
    "lang.switch": "English",
    "lang.label": "语言：切换为英文",
    "conn.connecting": "连接中…",
    "conn.connected": "直播中",
    "conn.reconnecting": "重新连接中…",
    "conn.disconnected": "已离线",
    "conn.closing": "正在关闭…",
    "online": "{n} 人在线",
    "degrade.0": "正常",
    "degrade.1": "繁忙：相同弹幕合并显示",
    "degrade.2": "过载：慢速模式",
    "degrade.3": "仅保留关键功能：弹幕暂停",
    "degrade.label": "负载等级",
    "error.rate_limited": "发送太快了，请 {s} 秒后再试。",
    "error.room_rate_limited": "房间太热闹了，请 {s} 秒后再试。",
    "error.slow_mode": "慢速模式：{s} 秒后可再次发送。",
    "error.danmaku_paused": "弹幕暂时关闭，投票仍可进行。",
    "error.muted": "你已被管理员禁言，还剩 {s} 秒。",
    "error.banned": "你已被管理员移出本房间。",
    "error.text_too_long": "太长了：最多 {limit} 个字。",
    "error.empty_text": "请先输入内容。",
    "error.text_refused": "消息含有本房间不允许的词语。",
    "error.links_not_allowed": "本房间不允许发送链接、电话号码或微信/QQ 号。",
    "error.duplicate_text": "刚刚发过相同的内容，{s} 秒后再试试别的吧。",
    "error.name_reserved": "这个名字为主持人保留，请换一个。",
    "danmaku.held": "你的消息正在等待审核。",
    "badge.host": "主持人",
    "badge.moderator": "房管",
    "error.room_not_found": "房间不存在。",
    "error.unauthorized": "链接中的令牌无效（已过期或属于其他房间）。",
    "error.anonymous_not_allowed": "本房间需要邀请链接才能进入。",
    "error.forbidden": "此令牌无权执行该操作。",
    "error.not_open": "当前未开放。",
    "error.already_done": "你已经参与过了。",
    "error.out_of_stock": "该选项已售罄。",
    "error.not_eligible": "你不能参加此抽奖。",
    "error.malformed": "服务器无法读取该请求。",
    "error.frame_too_large": "内容太大，无法发送（最多 {limit} 字节）。",
    "error.unknown_op": "服务器不认识该指令，请刷新页面。",
    "error.invalid_field": "请求中有内容缺失或无效。",
    "error.not_joined": "尚未进入房间，正在加入…",
    "error.already_joined": "已在本房间中。",
    "error.invalid_vote": "该回答不符合本题要求。",
    "error.unknown_option": "该选项不存在（或已移除）。",
    "error.unknown_target": "找不到该 ID 或代码（可能已删除）。",
    "error.illegal_transition": "当前状态下无法执行该操作。",
    "error.too_few_picks": "请至少选择 {limit} 项。",
    "error.too_many_picks": "最多只能选择 {limit} 项。",
    "error.no_entrants": "还没有人参加此抽奖。",
    "error.limit_reached": "已达上限（最多 {limit}）：请稍候，或先关闭其他页面。",
    "error.internal_error": "服务器出错，未做任何更改，请重试。",
    "error.transport_error": "连接出现问题，自动重试中…",
    "error.bad_frame": "服务器发送的内容无法读取，请刷新页面。",
    "error.body_too_large": "内容太大，无法发送。",
    "error.not_found": "未找到。",
    "error.method_not_allowed": "服务器不允许该请求。",
    "error.http_error": "服务器返回错误：{message}",
    "error.store_unavailable": "服务器正在恢复，自动重试中…",
    "error.disconnected": "连接中断，自动重试中…",
    "error.timeout": "服务器无响应，自动重试中…",
    "error.protocol_mismatch": "页面与服务器的协议版本不一致，请刷新页面。",
    "error.generic": "出错了：{message}",
    "error.no_token": "此页面的链接需要令牌（…#token=…）。",
    "closed.room_deleted": "房间已被删除。",
    "closed.banned": "你已被管理员移出本房间。",
    "closed.token_expired": "你进入本房间的权限已过期，请用新链接打开页面。",
    "closed.token_revoked": "你进入本房间的权限已被收回。",
    "you.as": "你：{name}",
    "live.title": "互动",
    "live.name": "你的昵称",
    "live.name.save": "保存",
    "live.name.hint": "显示在你的弹幕旁边",
    "live.compose": "发送弹幕",
    "live.compose.placeholder": "说点什么…",
    "live.send": "发送",
    "live.color": "颜色",
    "live.mode": "位置",
    "mode.scroll": "滚动",
    "mode.top": "顶部",
    "mode.bottom": "底部",
    "color.white": "白色",
    "color.red": "红色",
    "color.yellow": "黄色",
    "color.green": "绿色",
    "color.blue": "蓝色",
    "color.pink": "粉色",
    "live.feed": "弹幕",
    "live.now": "参与互动",
    "live.nothing": "暂时没有进行中的互动，敬请期待。",
    "wall.scan": "扫码参与",
    "wall.online": "人在线",
    "wall.reconnecting": "正在重新连接…",
    "console.title": "控制台",
    "console.signin": "登录",
    "console.signin.hint": "粘贴管理员令牌，或某房间的主持人/管理员令牌。",
    "console.signin.again": "服务器已不再接受此登录（它以新的密钥重启了）。请重新登录。",
    "console.token": "令牌",
    "console.room": "房间",
    "console.signin.go": "登录",
    "console.signout": "退出",
    "console.rooms": "房间",
    "console.rooms.back": "全部房间",
    "console.rooms.new": "新建房间",
    "console.rooms.id": "房间 ID",
    "console.rooms.title": "标题",
    "console.rooms.create": "创建房间",
    "console.rooms.open": "进入",
    "console.nav.live": "实时",
    "console.nav.interactions": "互动",
    "console.nav.danmaku": "弹幕",
    "console.nav.settings": "房间设置",
    "console.stats.online": "在线观众",
    "console.stats.participants": "参与人数",
    "console.stats.danmaku": "弹幕/分钟",
    "console.stats.votes": "投票/分钟",
    "console.stats.posts": "上墙/分钟",
    "console.stats.degrade": "负载等级",
    "console.links": "大屏与链接",
    "console.links.make": "生成直播叠加层与大屏链接",
    "console.links.live": "观众页面",
    "console.links.overlay": "直播叠加层（OBS 浏览器源）",
    "console.links.wall": "现场大屏",
    "console.links.copy": "复制",
    "console.links.copied": "已复制",
    "console.new": "新建互动",
    "console.kind": "类型",
    "console.id": "ID",
    "console.titlefield": "标题",
    "console.create": "创建",
    "console.created": "已创建 {id}",
    "console.none": "还没有互动：在上方创建一个。",
    "phase.draft": "草稿",
    "phase.open": "进行中",
    "phase.closed": "已结束",
    "phase.revealed": "已揭晓",
    "action.open": "开始",
    "action.close": "结束",
    "action.reveal": "揭晓",
    "action.pin": "置顶",
    "action.unpin": "取消置顶",
    "action.retract": "撤回",
    "action.mute": "禁言 10 分钟",
    "action.unmute": "解除禁言",
    "action.ban": "封禁",
    "action.unban": "解除封禁",
    "console.danmaku.feed": "最新弹幕",
    "console.danmaku.empty": "还没有弹幕。",
    "console.danmaku.muted": "已禁言",
    "console.danmaku.banned": "已封禁",
    "console.moderation.list": "禁言与封禁",
    "console.words.title": "本房间屏蔽词",
    "console.words.help": "每行一个；写 \"mask 词\" 显示为＊，写 \"review 词\" 先审核；其余直接拒绝。仅主持人和房管可见。",
    "console.words.save": "保存屏蔽词",
    "console.settings.links": "允许观众发送链接、电话号码和微信/QQ 号",
    "console.until": "至 {time}",
    "console.settings.title": "标题",
    "console.settings.mode": "弹幕权限",
    "roommode.open": "所有人",
    "roommode.slow": "慢速模式",
    "roommode.staff": "仅主持人和管理员",
    "console.settings.slow": "慢速间隔（秒）",
    "console.settings.anonymous": "允许观众免邀请进入",
    "console.settings.floor": "最低负载等级",
    "console.settings.brand": "大屏主色",
    "console.settings.accent": "强调色",
    "console.settings.logo": "标志（本服务器上的路径，如 /assets/logo.png）",
    "console.settings.save": "保存设置",
    "console.saved": "已保存",
  },
};

export const LANGS = Object.freeze(["zh", "en"]);
const STORAGE_KEY = "hudong.lang";

function initialLang() {
  const asked = new URLSearchParams(location.search).get("lang");
  if (asked && LANGS.includes(asked)) return asked;
  try {
    const saved = localStorage.getItem(STORAGE_KEY);
    if (saved && LANGS.includes(saved)) return saved;
  } catch {
    // storage may be off (private mode): the browser's language then
  }
  const preferred = navigator.languages?.length ? navigator.languages : [navigator.language];
  return preferred.some((l) => String(l).toLowerCase().startsWith("zh")) ? "zh" : "en";
}

let current = initialLang();

/** @returns {"zh"|"en"} */
export function lang() {
  return /** @type {"zh"|"en"} */ (current);
}

/**
 * The string for `key` in the current language, with `{name}` replaced from `vars`.
 * @param {string} key
 * @param {Record<string, string|number>} [vars]
 */
export function t(key, vars = {}) {
  const table = /** @type {Record<string, string>} */ (WORDS[/** @type {"zh"|"en"} */ (current)]);
  const text = table[key] ?? /** @type {Record<string, string>} */ (WORDS.en)[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/**
 * Add words to the tables (a kind's module brings its own); a key already there keeps
 * its first words, so a module cannot change what another shows.
 * @param {{en?: Record<string, string>, zh?: Record<string, string>} | undefined} words
 */
export function addWords(words) {
  for (const language of /** @type {const} */ (["en", "zh"])) {
    const table = /** @type {Record<string, string>} */ (WORDS[language]);
    for (const [key, text] of Object.entries(words?.[language] ?? {})) {
      if (!Object.hasOwn(table, key) && typeof text === "string") table[key] = text;
    }
  }
}

/** @param {string} next */
export function setLang(next) {
  if (!LANGS.includes(next) || next === current) return;
  current = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // not kept: fine
  }
  document.documentElement.lang = next === "zh" ? "zh-CN" : "en";
  window.dispatchEvent(new CustomEvent("langchange", { detail: next }));
}

/**
 * Fill the words of static markup: `data-i18n` (text), `data-i18n-label` (aria-label),
 * `data-i18n-placeholder`, `data-i18n-title`.
 * @param {ParentNode} root
 */
export function applyI18n(root = document) {
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  for (const el of root.querySelectorAll("[data-i18n]")) {
    el.textContent = t(/** @type {string} */ (el.getAttribute("data-i18n")));
  }
  for (const [attr, target] of [
    ["data-i18n-label", "aria-label"],
    ["data-i18n-placeholder", "placeholder"],
    ["data-i18n-title", "title"],
  ]) {
    for (const el of root.querySelectorAll(`[${attr}]`)) {
      el.setAttribute(target, t(/** @type {string} */ (el.getAttribute(attr))));
    }
  }
}
