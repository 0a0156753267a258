// LivePoll: one poll of a hudong room, live, with a button per option, as a Vue 3
// component written with render functions (no template compiler, no .vue build step).
// Copy this file into your app; it needs only Vue and a HudongClient:
//   h(LivePoll, { client, poll: "p" })   or, with templates,   <LivePoll :client="client" poll="p" />
import { defineComponent, h, onBeforeUnmount, ref, shallowRef } from "vue";

export const LivePoll = defineComponent({
  name: "LivePoll",
  props: {
    client: { type: Object, required: true }, // a HudongClient
    poll: { type: String, default: null }, // null: whichever poll the room shows last
  },
  setup(props) {
    // The latest view: from the join's snapshot, then each time its tallies move. A view
    // is replaced whole, never changed in place, so a shallow ref is enough.
    const view = shallowRef(props.poll ? props.client.interaction(props.poll) ?? null : null);
    const message = ref("");
    // Each view arrives under its kind's name; `on` returns the function that unsubscribes.
    const off = props.client.on("poll", (next) => {
      if (props.poll === null || next.id === props.poll) view.value = next;
    });
    onBeforeUnmount(off);

    async function vote(option) {
      try {
        // Retried with the same idempotency key until the node acknowledges it: counted once.
        await props.client.vote(view.value.id, { option });
        message.value = "Thanks, your vote counts.";
      } catch (err) {
        message.value = `Not counted: ${err.code}`; // not_open, invalid_vote, …
      }
    }

    return () => {
      const v = view.value;
      if (v === null) return h("p", "Waiting for a poll…");
      const open = v.status.phase === "open";
      // Vue escapes text children: the question and labels show as the characters they are.
      return h("section", { class: "live-poll", "data-poll": v.id }, [
        h("h2", v.spec.question),
        h(
          "ul",
          v.spec.options.map((option) => {
            const result = v.results.options?.find((o) => o.id === option.id); // absent while hidden
            return h("li", { key: option.id, "data-option": option.id }, [
              h("button", { disabled: !open, onClick: () => vote(option.id) }, option.label),
              h("meter", { value: result?.share ?? 0 }),
              h("span", { class: "count", "data-count": result?.count ?? 0 }, String(result?.count ?? "–")),
            ]);
          }),
        ),
        h("p", [h("span", { class: "voters" }, String(v.results.voters ?? 0)), ` voters · ${v.status.phase}`]),
        h("p", { role: "status" }, message.value),
      ]);
    };
  },
});
