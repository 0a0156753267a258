// <LivePoll client={client} poll="p" />: one poll of a hudong room, live, with a button
// per option. Copy this file into your app; it needs only React and a HudongClient.
import { useEffect, useState } from "react";

/**
 * The latest view of a poll: from the join's snapshot, then each time its tallies move.
 * `poll` null: whichever poll the room shows last.
 */
export function usePollView(client, poll) {
  const [view, setView] = useState(() => (poll ? client.interaction(poll) ?? null : null));
  useEffect(
    // Each view arrives under its kind's name; `on` returns the function that unsubscribes.
    () => client.on("poll", (next) => (poll === null || next.id === poll) && setView(next)),
    [client, poll],
  );
  return view;
}

export function LivePoll({ client, poll = null }) {
  const view = usePollView(client, poll);
  const [message, setMessage] = useState("");
  if (view === null) return <p>Waiting for a poll…</p>;

  const open = view.status.phase === "open";
  async function vote(option) {
    try {
      // Retried with the same idempotency key until the node acknowledges it: counted once.
      await client.vote(view.id, { option });
      setMessage("Thanks, your vote counts.");
    } catch (err) {
      setMessage(`Not counted: ${err.code}`); // not_open, invalid_vote, …
    }
  }

  return (
    <section className="live-poll" data-poll={view.id}>
      {/* React escapes text: the question and labels are shown as the characters they are */}
      <h2>{view.spec.question}</h2>
      <ul>
        {view.spec.options.map((option) => {
          const result = view.results.options?.find((o) => o.id === option.id); // absent while hidden
          return (
            <li key={option.id} data-option={option.id}>
              <button disabled={!open} onClick={() => vote(option.id)}>
                {option.label}
              </button>
              <meter value={result?.share ?? 0} />
              <span className="count" data-count={result?.count ?? 0}>
                {result?.count ?? "–"}
              </span>
            </li>
          );
        })}
      </ul>
      <p>
        <span className="voters">{view.results.voters ?? 0}</span> voters · {view.status.phase}
      </p>
      <p role="status">{message}</p>
    </section>
  );
}
