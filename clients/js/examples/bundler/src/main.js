// A danmaku box for your own page: the room's danmaku scroll by, and viewers send their own.
// Bundled by esbuild (build.mjs) with the client installed from npm or a checkout:
//   "@hudong/client": "file:../.."  (this repository), or the tarball of `npm pack`.
import { HudongClient, HudongError } from "@hudong/client";

// Where to connect, from the page's address:
//   index.html?node=https://live.example.com&room=demo#token=VIEWER_TOKEN
// node: the hudong node (default: this page's origin); the token (a viewer token your
// backend minted) stays in the #fragment, out of server logs; without one the page joins
// as an anonymous guest, if the room allows it.
const params = new URLSearchParams(location.search);
const node = new URL(params.get("node") ?? location.origin).origin;
const room = params.get("room") ?? "demo";
const token = new URLSearchParams(location.hash.slice(1)).get("token") ?? undefined;

// MessagePack frames are smaller than JSON; the bundle carries the codec, so this costs
// the page nothing more to load.
const client = new HudongClient(`${node.replace(/^http/, "ws")}/ws`, { protocol: "msgpack" });

const $ = (id) => document.getElementById(id);
const feed = $("feed");

function show(event) {
  const line = document.createElement("li");
  line.dataset.id = event.id;
  // user text is data: textContent, never innerHTML
  line.textContent = `${event.user.name}: ${event.text}${event.count > 1 ? ` ×${event.count}` : ""}`;
  feed.append(line);
  while (feed.children.length > 50) feed.firstElementChild.remove(); // keep the page small
}

client.on("state", (state) => {
  $("conn").dataset.state = state;
  $("conn").textContent = state;
});
client.on("online", (online) => ($("online").textContent = String(online)));
// The recent danmaku the room keeps, on joining (and again after a reconnect): redraw.
client.on("snapshot", () => {
  feed.replaceChildren();
  client.recent.forEach(show);
  $("online").textContent = String(client.online);
});
client.on("danmaku", (event) => show(event));
// A moderator took one back.
client.on("retract", (event) => feed.querySelector(`[data-id="${CSS.escape(event.id)}"]`)?.remove());

$("send").addEventListener("submit", async (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  try {
    await client.sendDanmaku(text); // it comes back in the room's next batch, to us too
    $("text").value = "";
    $("message").textContent = "";
  } catch (err) {
    // rate_limited, slow_mode and muted say when to try again
    const wait = err instanceof HudongError && err.retryAfterMs ? ` (again in ${Math.ceil(err.retryAfterMs / 1000)} s)` : "";
    $("message").textContent = `Not sent: ${err.code}${wait}`;
  }
});

client.open(room, token ? { token } : { name: "guest" }).then(
  ({ you }) => ($("you").textContent = you.name),
  (err) => ($("message").textContent = `Cannot join ${room}: ${err.code}`),
);
