// The message list while an answer streams. A *view* is one answer on the page: its
// element, its run, the text so far and its last seq. This module starts views, renders
// their text as Markdown once per frame, announces it to screen readers, and ends them
// (complete, stopped, interrupted, failed, or refused before it started).
import { renderMarkdownInto } from "./render.js";
import { assistantMessageEl, markLastAnswer, setContinuable } from "./messages.js";
import { clearRun } from "./resume.js";

const START_TIMEOUT_MS = 20000;
const ANNOUNCE_EVERY_MS = 1500;

/** deps: send(frame) -> bool, tier() -> slug, retry(view), updateCounter(). */
export function createStream(page, { send, tier, retry, updateCounter }) {
  const { root, thread, live, stopButton, sendButton, emptyState } = page.els;
  const { state } = page;
  const markLast = () => markLastAnswer(thread, emptyState);

  // ---------------------------------------------------------------- rendering
  let rafPending = false;
  const dirty = new Set();

  function scheduleRender(v) {
    dirty.add(v);
    if (rafPending) return;
    rafPending = true;
    requestAnimationFrame(() => {
      rafPending = false;
      const stick = page.nearBottom();
      for (const d of dirty) renderView(d);
      dirty.clear();
      if (stick) page.scrollToBottom();
    });
  }

  function renderView(v) {
    const body = v.el.querySelector(".msg-body");
    renderMarkdownInto(body, v.text);
    body.dataset.raw = v.text;
    if (v.status === "streaming" || v.status === "pending") {
      const caret = document.createElement("span");
      caret.className = "caret";
      caret.setAttribute("aria-hidden", "true");
      (body.lastElementChild || body).append(caret);
    }
  }

  // Screen readers: announce new text in sentence-sized pieces, never the whole answer again.
  function announceProgress(v, final) {
    if (!live) return;
    const pending = v.text.slice(v.announced);
    if (!pending) {
      if (final) live.textContent = final;
      return;
    }
    let cut = pending.length;
    if (!final) {
      const m = pending.match(/^[\s\S]*[.!?:\n]/);
      if (m) cut = m[0].length;
      else if (pending.length > 120) cut = pending.lastIndexOf(" ") + 1; // long text without a sentence end
      else return;
      if (cut <= 0) return;
    }
    const chunk = pending.slice(0, cut).replace(/[`*_#>|]/g, "").trim();
    v.announced += cut;
    live.textContent = final ? `${chunk} ${final}`.trim() : chunk;
  }

  function startAnnouncing(v) {
    v.announceTimer = setInterval(() => announceProgress(v, null), ANNOUNCE_EVERY_MS);
  }

  // ---------------------------------------------------------------- views
  function streamingUi(on) {
    stopButton.hidden = !on;
    sendButton.hidden = on;
    root.classList.toggle("is-streaming", on);
    updateCounter();
  }

  /** The page no longer shows `v` live (if it did): the composer is free again. */
  function release(v) {
    if (state.view !== v) return;
    state.view = null;
    streamingUi(false);
    clearRun();
  }

  function startView({ clientId, el, userEl, retry: again }) {
    const v = {
      clientId,
      el,
      userEl,
      retry: again, // how to send this again: {type, content, message_id}
      runId: null,
      messageId: null,
      conversationId: state.conversationId,
      seq: 0,
      text: "",
      status: "pending",
      announced: 0,
      announceTimer: null,
      startTimer: null,
    };
    v.startTimer = setTimeout(() => {
      if (v.status === "pending") failView(v, { message: "The server did not start an answer. Check your connection and retry.", retryable: true });
    }, START_TIMEOUT_MS);
    state.views.set(clientId, v);
    state.view = v;
    streamingUi(true);
    return v;
  }

  function bindRun(v, runId) {
    v.runId = runId;
    state.views.set(runId, v);
    v.el.dataset.runId = runId;
  }

  function finishView(v, status) {
    clearTimeout(v.startTimer);
    clearInterval(v.announceTimer);
    v.status = status;
    v.el.dataset.status = status;
    const body = v.el.querySelector(".msg-body");
    body.removeAttribute("aria-busy");
    renderView(v);
    v.el.dataset.finishReason = v.finishReason || "";
    if (status === "stopped") {
      const note = document.createElement("p");
      note.className = "msg-note";
      note.textContent = "Stopped.";
      body.append(note);
    } else if (v.finishReason === "length") {
      const note = document.createElement("p");
      note.className = "msg-note";
      note.textContent = "The answer reached its length limit.";
      body.append(note);
    } else if (status === "interrupted") {
      const note = document.createElement("p");
      note.className = "msg-note";
      note.textContent = "This answer was interrupted; the text so far is kept.";
      body.append(note);
    }
    // An answer stopped, cut at the length limit or interrupted can be continued.
    setContinuable(v.el, Boolean(v.text) && (status === "stopped" || status === "interrupted" || v.finishReason === "length"));
    announceProgress(v, status === "complete" ? "Answer complete." : `Answer ${status}.`);
    release(v);
    markLast();
  }

  function failView(v, err) {
    if (v.status === "error") return;
    clearTimeout(v.startTimer);
    clearInterval(v.announceTimer);
    v.status = "error";
    v.el.dataset.status = "error";
    const body = v.el.querySelector(".msg-body");
    body.removeAttribute("aria-busy");
    if (v.text) renderView(v);
    else body.replaceChildren();
    // Nothing to copy, rate or regenerate when no answer came: Retry (below) is the one action.
    const actions = v.el.querySelector(".msg-actions");
    if (actions) actions.hidden = !v.text;
    // A crash keeps the text so far: it can be continued.
    setContinuable(v.el, Boolean(v.text) && err.code === "interrupted");
    const box = document.createElement("div");
    box.className = "msg-error";
    box.setAttribute("role", "alert");
    const p = document.createElement("p");
    p.textContent = err.message || "Something went wrong.";
    box.append(p);
    if (err.reset_at) {
      const when = new Date(err.reset_at);
      if (!Number.isNaN(when.getTime())) {
        const r = document.createElement("p");
        r.className = "muted small";
        r.textContent = `You can send again after ${when.toLocaleString()}.`;
        box.append(r);
      }
    }
    const buttons = document.createElement("div");
    buttons.className = "msg-error-actions";
    const retryButton = document.createElement("button");
    retryButton.type = "button";
    retryButton.className = "button small";
    retryButton.textContent = "Retry";
    retryButton.addEventListener("click", () => retry(v));
    buttons.append(retryButton);
    if (err.upgrade_url) {
      const a = document.createElement("a");
      a.className = "button small secondary";
      a.href = err.upgrade_url.startsWith("/") ? err.upgrade_url : "/billing/pricing";
      a.textContent = a.pathname.includes("signup") ? "Sign up free" : "See plans";
      buttons.append(a);
    }
    box.append(buttons);
    body.append(box);
    if (live) live.textContent = `Error: ${p.textContent}`;
    release(v);
    markLast();
  }

  // An edit or regenerate takes the later turns off the page at once; if the server
  // refuses it before an answer starts (a limit, a locked tier), put them back as they
  // were, since the server kept them.
  function restoreRefused(v, msg) {
    clearTimeout(v.startTimer);
    clearInterval(v.announceTimer);
    state.views.delete(v.clientId);
    v.restore();
    release(v);
    markLast();
    page.showToast(msg.message || "Something went wrong.");
  }

  /** Starts an answer after `userEl` (or at the end) and sends `frame` for it. */
  function dispatch(frame, userEl) {
    const clientId = page.newId();
    const el = assistantMessageEl();
    if (userEl) userEl.after(el);
    else thread.append(el);
    const v = startView({ clientId, el, userEl, retry: { content: frame.content } });
    const full = { ...frame, client_id: clientId, conversation_id: state.conversationId, tier: tier() };
    markLast();
    page.scrollToBottom();
    if (!send(full)) failView(v, { message: "You are offline; Lhama is reconnecting. Your message is kept: retry in a moment.", retryable: true });
    return v;
  }

  /**
   * Goes on writing a stopped, cut or interrupted answer (message.continue) in its own
   * element: the view starts from the text it has, and the deltas are appended to it.
   */
  function continueAnswer(art) {
    const body = art.querySelector(".msg-body");
    const before = { nodes: [...body.childNodes], raw: body.dataset.raw || "", status: art.dataset.status };
    for (const note of body.querySelectorAll(".msg-note, .msg-error")) note.remove();
    setContinuable(art, false);
    const userEl = art.previousElementSibling?.closest(".msg-user") || null;
    const clientId = page.newId();
    const v = startView({ clientId, el: art, userEl, retry: null });
    v.text = before.raw;
    v.announced = v.text.length;
    art.dataset.status = "pending";
    body.setAttribute("aria-busy", "true");
    v.restore = () => {
      body.replaceChildren(...before.nodes);
      body.removeAttribute("aria-busy");
      art.dataset.status = before.status;
      setContinuable(art, true);
    };
    const frame = {
      type: "message.continue", client_id: clientId, conversation_id: state.conversationId,
      message_id: art.dataset.messageId, tier: tier(),
    };
    if (!send(frame)) failView(v, { message: "You are offline; Lhama is reconnecting. Retry in a moment.", retryable: true });
    return v;
  }

  return {
    markLast, scheduleRender, startAnnouncing, streamingUi,
    startView, bindRun, finishView, failView, restoreRefused, dispatch, continueAnswer,
  };
}
