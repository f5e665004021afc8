// What each server frame of protocol v1 does to the page (docs/protocol.md), resync
// included: after a reconnect the page asks for its run again from the last seq it has,
// a gap in the seqs asks again, and a run.resync frame replaces the text, never appends.
import { showAd } from "./ads.js";
import { saveRun, clearRun } from "./resume.js";
import { setMeta, setVersions } from "./messages.js";

export function createFrames(page, { socket, stream, composer, sidebar }) {
  const { state } = page;
  const { send } = socket;

  function onFrame(msg) {
    switch (msg.type) {
      case "hello":
        onHello(msg);
        break;
      case "run.started":
        onRunStarted(msg);
        break;
      case "delta":
        onDelta(msg);
        break;
      case "run.resync":
        onResync(msg);
        break;
      case "done":
        onDone(msg);
        break;
      case "error":
        onError(msg);
        break;
      case "title":
        sidebar.applyTitle(msg.conversation_id, msg.title);
        break;
      case "ad":
        showAd(msg, page, composer.ask);
        break;
      default:
        break; // pong and frames from a newer server
    }
  }

  function onHello(msg) {
    socket.greeted();
    if (page.els.toast.dataset.kind === "offline") page.showToast(""); // connected again: that warning is stale
    const limit = msg.limits?.max_message_chars;
    if (Number.isInteger(limit) && limit > 0) {
      state.maxChars = limit;
      composer.updateCounter();
    }
    if (state.temporary && state.conversationId) {
      // The server deleted the temporary chat when the old socket closed: say so.
      page.showToast("The connection dropped, and a temporary chat is not kept: this one has ended. Reload to start a new chat.");
    }
    // Resume the run this page was showing (after a reconnect) or that it found on load.
    const { view } = state;
    if (view && view.runId) {
      send({ type: "run.subscribe", run_id: view.runId, after_seq: view.seq });
    } else if (view && view.status === "pending") {
      stream.failView(view, { message: "The connection dropped before the answer started. Retry?", retryable: true });
    }
  }

  function onRunStarted(msg) {
    const v = state.views.get(msg.client_id);
    if (!v) return;
    if (v.stopRequested) {
      send({ type: "run.stop", run_id: msg.run_id });
      return;
    }
    if (v.status === "error") {
      // Started after all (a slow start we had given up on): follow it if nothing else runs.
      if (state.view) {
        send({ type: "run.stop", run_id: msg.run_id });
        return;
      }
      v.el.querySelector(".msg-error")?.remove();
      const actions = v.el.querySelector(".msg-actions");
      if (actions) actions.hidden = false;
      v.el.querySelector(".msg-body").setAttribute("aria-busy", "true");
      state.view = v;
      stream.streamingUi(true);
    }
    clearTimeout(v.startTimer);
    stream.bindRun(v, msg.run_id);
    v.status = "streaming";
    v.el.dataset.status = "streaming";
    v.messageId = msg.assistant_message_id;
    v.el.dataset.messageId = msg.assistant_message_id;
    if (v.userEl && msg.user_message_id) v.userEl.dataset.messageId = msg.user_message_id;
    v.conversationId = msg.conversation_id;
    setMeta(v.el, msg.tier);
    if (msg.versions) {
      // A regenerated answer or an edited question: it is the newest of its versions.
      const target = msg.versions.message_id === msg.assistant_message_id ? v.el : v.userEl;
      if (target) setVersions(target, msg.versions);
    }
    stream.startAnnouncing(v);
    if (msg.temporary) {
      // Never saved: no address of its own, nothing in the list. A reload starts afresh.
      state.conversationId = msg.conversation_id;
      page.els.root.dataset.conversationId = msg.conversation_id;
      if (page.els.temporaryToggle) page.els.temporaryToggle.disabled = true;
    } else if (msg.conversation_id && msg.conversation_id !== state.conversationId) sidebar.adoptConversation(msg.conversation_id);
    saveRun(state.view);
  }

  function onDelta(msg) {
    const v = state.views.get(msg.run_id);
    if (!v || v !== state.view) return;
    if (msg.seq <= v.seq) return; // already have it (resync overlap)
    if (msg.seq !== v.seq + 1) {
      // A gap: ask for the run again from what we have; the resync frame fills it.
      send({ type: "run.subscribe", run_id: v.runId, after_seq: v.seq });
      return;
    }
    v.seq = msg.seq;
    v.text += msg.text;
    if (v.status === "pending") {
      v.status = "streaming";
      v.el.dataset.status = "streaming";
    }
    stream.scheduleRender(v);
    saveRun(state.view);
  }

  function onResync(msg) {
    const v = state.views.get(msg.run_id);
    if (!v) return;
    // The resync frame carries the whole text so far and its last seq: replace, never append.
    v.text = msg.text || "";
    v.seq = msg.seq || 0;
    if (msg.conversation_id) v.conversationId = msg.conversation_id;
    if (msg.status === "running") {
      v.status = "streaming";
      v.el.dataset.status = "streaming";
      if (!v.announceTimer) stream.startAnnouncing(v);
      stream.scheduleRender(v);
      saveRun(state.view);
    } else if (msg.status === "error" || msg.status === "interrupted") {
      // The error frame that follows says what happened; show the text kept so far meanwhile.
      v.status = "streaming";
      stream.scheduleRender(v);
    } else {
      v.announced = v.text.length;
      stream.finishView(v, msg.status);
    }
  }

  function onDone(msg) {
    const v = state.views.get(msg.run_id);
    if (!v) return;
    if (msg.message_id) {
      v.messageId = msg.message_id;
      v.el.dataset.messageId = msg.message_id;
    }
    if (v.status === "complete" || v.status === "stopped") return; // a resync already ended it
    v.finishReason = msg.finish_reason || "";
    stream.finishView(v, msg.status || "complete");
    if (!state.temporary && !sidebar.hasTitle(v.conversationId)) sidebar.pollTitle(v.conversationId); // a temporary chat has none
  }

  function onError(msg) {
    const v = (msg.run_id && state.views.get(msg.run_id)) || (msg.client_id && state.views.get(msg.client_id)) || null;
    if (v && !v.runId && v.restore && v.status === "pending") {
      stream.restoreRefused(v, msg);
      return;
    }
    if (v && v.status !== "complete" && v.status !== "stopped") {
      stream.failView(v, msg);
      return;
    }
    if (msg.code === "not_found" && msg.run_id) {
      clearRun();
      return;
    }
    page.showToast(msg.message || "Something went wrong.");
  }

  return { onFrame };
}
