// The interaction kinds as the pages know them: one module per kind in kinds/, listed by
// /static/kinds/index.js, which the server makes from its own registry of kinds (plug-in
// kinds' modules included), each declaring everything the four pages show of its kind.
// The pages find kinds only through this module and never name one (ARCHITECTURE.md, "Components":
// "a kind is named only in its own module and the registry"); a view whose kind has no
// module is left out on every page.
//
// Loading it merges every kind's words into i18n.js's tables.

import { addWords } from "/static/i18n.js";
import { BY_NAME, KINDS as LISTED } from "/static/kinds/index.js";

/**
 * An interaction's view as the client keeps it (PROTOCOL.md, "Views").
 * @typedef {{id: string, kind: string, [field: string]: any}} View
 */
/**
 * Listeners for the client's events that a kind's part handles, by the client's event
 * name (clients/js/README.md, "Events": a batch event or notice `draw_result` is
 * `drawResult`).
 * @typedef {Record<string, (payload: any) => void>} Listeners
 */
/**
 * Something drawn for one interaction that updates in place: `update` gets each new view
 * of it; `remove` (optional) stops what it runs (timers) when the page takes it away.
 * @typedef {{el: HTMLElement, update: (view: View) => void, remove?: () => void}} Mounted
 */

/**
 * One kind's page module (clients/web/kinds/<kind>.js, default export).
 *
 * Each surface part is a function the page calls once, with the page's services, and
 * whose result holds what it draws and the listeners it needs; a kind leaves out the
 * parts of the pages where it does not show.
 *
 * @typedef {object} KindModule
 * @property {string} kind  the `kind` of its views
 * @property {number} order  its place among kinds: cards, tabs, the composer's choices
 * @property {boolean} [standing]  every room has one, made by the server (no composer):
 *   listed after the others, and not counted as something to take part in
 * @property {string} [start]  the host action that starts a draft of it when the
 *   console's run-sheet reaches it with "Next" (runsheet.js)
 * @property {{en: Record<string, string>, zh: Record<string, string>}} [words]  its words,
 *   merged into i18n.js's tables: `kind.<kind>` (its name), `<kind>.…`, and the
 *   `phase.…` and `action.…` words of its own phases and actions
 * @property {(view: View) => string} [title]  the interaction's title (default `spec.title`, else the id)
 * @property {(view: View) => string} [phase]  its phase, shown as `phase.<phase>`
 *   (default `status.phase`, else `state.phase`, else "draft")
 * @property {(ctx: LiveContext) => LivePart} [live]  the viewer page
 * @property {(ctx: ConsoleContext) => ConsolePart} [console]  the host's console
 * @property {(ctx: ScreenContext) => Widget} [overlay]  the stream overlay
 * @property {(ctx: ScreenContext) => Widget} [wall]  the venue's wall
 */
/**
 * @typedef {object} LiveContext
 * @property {import("/static/client/hudong.js").HudongClient} client
 * @property {Record<string, any>} mine  what this viewer did, by interaction id, kept across reloads
 * @property {(el: HTMLElement, command: () => Promise<any>, done?: (ack: any) => void) => Promise<void>} act
 *   run a viewer command for the card `el` (its `data-interaction`): its buttons wait,
 *   `done` records the ack in `mine`, errors become notices, the card updates after
 * @property {(iid: string) => void} noted  the part changed `mine[iid]` outside a command
 *   (a private notice): it is kept, and the card drawn again
 * @property {number} showEndedS  how long ended results stay on the page
 */
/**
 * @typedef {object} LivePart
 * @property {(view: View) => boolean} shown  whether the page shows the view now
 * @property {(view: View) => boolean} [ended]  whether it is over: folded away below what is
 *   open (default: its phase is closed, revealed or finished)
 * @property {(view: View) => Mounted} card  the view's whole card (widgets.js `liveCard`), with `data-interaction`
 * @property {"section"} [place]  a section of its own after "Taking part", not a card in it
 * @property {Listeners} [on]
 */
/**
 * @typedef {object} ConsoleContext
 * @property {import("/static/client/hudong.js").HudongClient} client
 * @property {(iid: string, action: string, fields?: Record<string, unknown>) => Promise<any>} act  a host action over REST
 * @property {(iid: string, action: string, how?: {fields?: Record<string, unknown>, text?: string, class?: string, data?: Record<string, string>}) => HTMLElement} button
 *   a button (`data-action`) that runs a host action with `fields`; its text is
 *   `t("action.<action>")` unless `text` is given
 * @property {(path: string, filename: string) => Promise<void>} download  a file under the room's REST path
 * @property {() => Record<string, any>} settings  the room's settings
 * @property {(settings: Record<string, unknown>) => Promise<any>} saveSettings  change some of them
 */
/**
 * @typedef {object} ConsolePart
 * @property {Composer} [composer]  its choice under "New interaction"
 * @property {(view: View) => Mounted} [card]  the body of the view's card in the list of interactions
 * @property {(view: View) => Node[]} [actions]  the card's buttons, drawn again after each change
 * @property {Mounted} [tab]  a console tab of its own named `kind.<kind>`; `update` gets each view of the kind
 * @property {{fields: (settings: Record<string, any>) => Node[], read: (data: FormData) => Record<string, unknown>}} [settings]
 *   room settings it owns, in the Room tab
 */
/**
 * @typedef {object} Composer
 * @property {() => Node[]} fields  the form's fields (ids `f-…`; widgets.js builds them)
 * @property {(value: (id: string) => string | undefined) => Record<string, boolean>} [relevant]
 *   which fields apply to what is chosen (field id → shown)
 * @property {(form: {text: (name: string) => string, number: (name: string) => number | undefined, checked: (name: string) => boolean}) => Record<string, unknown>} spec
 *   the spec to create from the form (PROTOCOL.md, "Kinds, specs and host actions")
 */
/**
 * @typedef {object} ScreenContext
 * @property {import("/static/client/hudong.js").HudongClient} client
 * @property {{get: (name: string) => string | null}} params  the page's link parameters
 * @property {number} showEndedS  how long an ended interaction stays on the screen
 *   (Infinity while the host pushed one to the screens: it stays)
 * @property {() => View[]} views  the views of this kind
 * @property {(...children: Node[]) => HTMLElement} frame  the page's box for a widget, hidden at first
 * @property {(shown: {kicker: string, title: string, body: Node, id: string}) => void} [reveal]
 *   the wall: show something full screen for a while
 */
/**
 * What a kind shows on a screen (overlay, wall).
 * @typedef {object} Widget
 * @property {HTMLElement} el  hidden while it has nothing to show
 * @property {string} [name]  overlay: its name in `widgets=` (default the kind)
 * @property {"counter"|"main"|"side"} [region]  wall: where it goes (default "side")
 * @property {(views: View[]) => void} [update]  every view of the kind, after each change and every few seconds
 * @property {Listeners} [on]
 */

/** @param {any} module */
const valid = (module) => typeof module?.kind === "string" && Number.isFinite(module.order);

/** The kinds' modules, in their order. @type {readonly KindModule[]} */
export const KINDS = Object.freeze([...LISTED].filter(valid).sort((a, b) => a.order - b.order));

for (const kind of KINDS) addWords(kind.words);

/** The module of a kind, or null. @param {string} name @returns {KindModule | null} */
export function kindNamed(name) {
  const found = Object.hasOwn(BY_NAME, name) ? /** @type {any} */ (BY_NAME)[name] : null;
  return found && found.kind === name && KINDS.includes(found) ? found : null;
}

/** The module of a view's kind, or null (the view is then left out). @param {any} view */
export function kindOf(view) {
  return typeof view?.kind === "string" ? kindNamed(view.kind) : null;
}

/** @param {View} view */
export function titleOf(view) {
  return kindOf(view)?.title?.(view) ?? view.spec?.title ?? view.id;
}

/** @param {View} view */
export function phaseOf(view) {
  return kindOf(view)?.phase?.(view) ?? view.status?.phase ?? view.state?.phase ?? "draft";
}

/** The views of one kind. @param {{interactions: Map<string, View>}} client @param {string} name */
export function viewsOf(client, name) {
  return [...client.interactions.values()].filter((view) => view.kind === name);
}

/**
 * Each kind's part of a page, by kind name, in the kinds' order: `partOf(kind)` is the
 * kind's function for this page (absent where the kind does not show there), called once
 * with `context(kind)`; `keep` says which parts the page wants, and their listeners
 * (`on`) are subscribed to `client` if one is given.
 * @template C, P
 * @param {(kind: KindModule) => ((ctx: C) => P) | undefined} partOf
 * @param {(kind: KindModule) => C} context
 * @param {{client?: {on: (type: any, listener: any) => unknown}, keep?: (kind: KindModule, part: P) => boolean}} [how]
 * @returns {Map<string, {kind: KindModule, part: P}>}
 */
export function partsOf(partOf, context, { client, keep = () => true } = {}) {
  /** @type {Map<string, {kind: KindModule, part: P}>} */
  const parts = new Map();
  for (const kind of KINDS) {
    const make = partOf(kind);
    if (typeof make !== "function") continue;
    const part = make(context(kind));
    if (!keep(kind, part)) continue;
    parts.set(kind.kind, { kind, part });
    for (const [event, listener] of Object.entries(/** @type {any} */ (part)?.on ?? {})) client?.on(event, listener);
  }
  return parts;
}

/**
 * The widgets of a screen page (overlay, wall): `partsOf` with the context's `client`
 * and `views` filled in.
 * @param {any} client
 * @param {(kind: KindModule) => ((ctx: ScreenContext) => Widget) | undefined} partOf
 * @param {(kind: KindModule) => Omit<ScreenContext, "client" | "views">} context
 * @param {(kind: KindModule, widget: Widget) => boolean} [keep]
 */
export function screenWidgets(client, partOf, context, keep) {
  const widgets = partsOf(
    partOf,
    (kind) => {
      const base = context(kind);
      return {
        ...base,
        client,
        views: () => screenViews(client, kind),
        // What the host pushed shows however long ago it ended.
        get showEndedS() {
          return pushedView(client) ? Infinity : base.showEndedS;
        },
      };
    },
    { client, keep },
  );
  return {
    widgets,
    /** Give each widget its kind's views (only the pushed one while the host pushed one). */
    update() {
      for (const { kind, part } of widgets.values()) part.update?.(screenViews(client, kind));
    },
  };
}

/**
 * The interaction the host pushed to the screens (room setting `on_screen`, PROTOCOL.md,
 * "REST API"), or null: the screens then show what moved last.
 * @param {any} client
 * @returns {View | null}
 */
export function pushedView(client) {
  const id = client.snapshot?.room?.settings?.on_screen;
  return (id && client.interactions.get(id)) || null;
}

/**
 * A kind's views as a screen shows them: while the host pushed an interaction, only that
 * one (the room's standing kinds, posts and counters, keep theirs).
 * @param {any} client @param {KindModule} kind
 */
function screenViews(client, kind) {
  const pushed = pushedView(client);
  if (!pushed || kind.standing) return viewsOf(client, kind.kind);
  return pushed.kind === kind.kind ? [pushed] : [];
}
