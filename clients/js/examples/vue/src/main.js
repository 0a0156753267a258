// The page around <LivePoll>: one HudongClient for the whole app, made from the address
//   index.html?node=https://live.example.com&room=demo&poll=p#token=VIEWER_TOKEN
// node: the hudong node (default: this page's origin); poll: which one (default: the
// room's latest); token (a viewer token your backend minted, kept in the #fragment out of
// server logs): without one the app joins as an anonymous guest, if the room allows it.
import { createApp, defineComponent, h, onBeforeUnmount, onMounted, ref } from "vue";
import { HudongClient } from "@hudong/client";
import { LivePoll } from "./LivePoll.js";

const params = new URLSearchParams(location.search);
const node = new URL(params.get("node") ?? location.origin).origin;
const room = params.get("room") ?? "demo";
const poll = params.get("poll");
const token = new URLSearchParams(location.hash.slice(1)).get("token") ?? undefined;

// Made once, outside Vue's reactivity: the client is not a reactive object.
const client = new HudongClient(`${node.replace(/^http/, "ws")}/ws`);

const App = defineComponent({
  setup() {
    const state = ref(client.state);
    const error = ref(null);
    const off = client.on("state", (next) => (state.value = next));
    onMounted(() => {
      client.open(room, token ? { token } : { name: "guest" }).catch((err) => (error.value = err.code));
    });
    onBeforeUnmount(() => {
      off();
      client.close(); // the app is unmounted: leave the room
    });
    return () => [
      h("p", { id: "conn", "data-state": state.value }, state.value),
      error.value ? h("p", { role: "alert" }, `Cannot join ${room}: ${error.value}`) : h(LivePoll, { client, poll }),
    ];
  },
});

createApp(App).mount("#app");
