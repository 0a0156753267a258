// The page around <LivePoll>: one HudongClient for the whole app, made from the address
//   index.html?node=https://live.example.com&room=demo&poll=p#token=VIEWER_TOKEN
// node: the hudong node (default: this page's origin); poll: which one (default: the
// room's latest); token (a viewer token your backend minted, kept in the #fragment out of
// server logs): without one the app joins as an anonymous guest, if the room allows it.
import { createRoot } from "react-dom/client";
import { useEffect, useState } from "react";
import { HudongClient } from "@hudong/client";
import { LivePoll } from "./LivePoll.jsx";

const params = new URLSearchParams(location.search);
const node = new URL(params.get("node") ?? location.origin).origin;
const room = params.get("room") ?? "demo";
const poll = params.get("poll");
const token = new URLSearchParams(location.hash.slice(1)).get("token") ?? undefined;

// Made once, outside React: a component that re-renders must not open a second socket.
const client = new HudongClient(`${node.replace(/^http/, "ws")}/ws`);

function App() {
  const [state, setState] = useState(client.state);
  const [error, setError] = useState(null);
  useEffect(() => client.on("state", setState), []);
  useEffect(() => {
    client.open(room, token ? { token } : { name: "guest" }).catch((err) => setError(err.code));
    return () => void client.close(); // the app is unmounted: leave the room
  }, []);
  return (
    <>
      <p id="conn" data-state={state}>{state}</p>
      {error ? <p role="alert">Cannot join {room}: {error}</p> : <LivePoll client={client} poll={poll} />}
    </>
  );
}

createRoot(document.getElementById("app")).render(<App />);
