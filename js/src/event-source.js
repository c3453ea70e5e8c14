// watchEventSource: the last event of a drained server-sent event stream
// (docs/protocol.md, "Stream drain"), kept out of index.js so that index.js stays small.
import { start } from "./index.js";

/**
 * Learn the new version from `es`, an `EventSource`: when the old build's drain ends the
 * stream, its last event (type `spa-version`, data: the new release's header value) is
 * offered like a header, and the tab follows its policy. The `EventSource` reconnects by
 * itself after the event's `retry`, through the balancer to the live build. Returns `es`.
 */
export function watchEventSource(es, sv = start()) {
  es.addEventListener("spa-version", (e) => sv.offer(e.data));
  return es;
}
