// Lhama chat page: the WebSocket client for protocol v1 (docs/protocol.md), streamed
// Markdown rendering, message actions, the sponsored card and the sidebar toggles.
// Everything the page needs comes from data-attributes on #chat (CSP: no inline script).
import { highlightExisting, renderMarkdownInto } from "./chat/render.js";
import { acknowledgeWhenVisible, buildAdCard } from "./chat/ads.js";

const RUN_KEY = "lhama.activeRun";
const START_TIMEOUT_MS = 20000;
const ANNOUNCE_EVERY_MS = 1500;

const root = document.getElementById("chat");
if (root) init(root);

function init(root) {
  const $ = (id) => document.getElementById(id);
  const thread = $("thread");
  const composer = $("composer");
  const input = $("composer-input");
  const sendButton = $("send-button");
  const stopButton = $("stop-button");
  const counter = $("char-count");
  const tierSelect = $("tier-select");
  const servedBy = $("served-by");
  const connection = $("connection-status");
  const live = $("live-region");
  const toast = $("chat-toast");
  const emptyState = $("empty-state");
  const urls = {
    feedback: root.dataset.feedbackUrl,
    header: root.dataset.headerUrl,
    list: root.dataset.listUrl,
    title: root.dataset.titleUrl,
    conversation: root.dataset.conversationUrl,
  };
  const ZERO = "00000000-0000-0000-0000-000000000000";
  const urlFor = (template, id) => template.replace(ZERO, id);
  const csrfToken = () => document.querySelector("meta[name=csrf-token]")?.content || "";

  let conversationId = root.dataset.conversationId || null;
  let maxChars = parseInt(root.dataset.maxChars || "8000", 10);
  let socket = null;
  let attempt = 0;
  let reconnectTimer = null;
  let pingTimer = null;
  let closedForGood = false;
  // The one run this page is showing live (a page streams one answer at a time).
  let view = null;
  const views = new Map(); // client_id or run_id -> view

  // ---------------------------------------------------------------- helpers
  async function post(url, data) {
    const body = new URLSearchParams(data || {});
    return fetch(url, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch" },
    });
  }

  function showToast(text, kind = "") {
    toast.textContent = text;
    toast.hidden = !text;
    toast.dataset.kind = text ? kind : "";
  }

  function setConnection(state, text) {
    connection.dataset.state = state;
    connection.textContent = text;
  }

  function newId() {
    return window.crypto?.randomUUID ? window.crypto.randomUUID() : `c${Date.now()}${Math.random().toString(16).slice(2)}`;
  }

  function nearBottom() {
    return thread.scrollHeight - thread.scrollTop - thread.clientHeight < 120;
  }

  function scrollToBottom() {
    thread.scrollTop = thread.scrollHeight;
  }

  function saveRun() {
    if (!view || !view.runId) return;
    try {
      sessionStorage.setItem(
        RUN_KEY,
        JSON.stringify({ run_id: view.runId, seq: view.seq, conversation_id: view.conversationId, message_id: view.messageId || null }),
      );
    } catch {
      /* storage full or disabled: resume still works from the page's data-run-id */
    }
  }

  function clearRun() {
    try {
      sessionStorage.removeItem(RUN_KEY);
    } catch {
      /* ignore */
    }
  }

  function loadRun() {
    try {
      return JSON.parse(sessionStorage.getItem(RUN_KEY) || "null");
    } catch {
      return null;
    }
  }

  // ---------------------------------------------------------------- message DOM
  function actionButton(action, text, extra = {}) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "msg-action";
    b.dataset.action = action;
    b.textContent = text;
    for (const [k, v] of Object.entries(extra)) b.setAttribute(k, v);
    return b;
  }

  function userMessageEl(text) {
    const art = document.createElement("article");
    art.className = "msg msg-user";
    art.dataset.role = "user";
    const body = document.createElement("div");
    body.className = "msg-body";
    body.textContent = text;
    body.dataset.raw = text;
    const actions = document.createElement("div");
    actions.className = "msg-actions";
    actions.append(actionButton("edit", "Edit"));
    art.append(body, actions);
    return art;
  }

  function assistantMessageEl() {
    const art = document.createElement("article");
    art.className = "msg msg-assistant";
    art.dataset.role = "assistant";
    art.dataset.status = "pending";
    const meta = document.createElement("div");
    meta.className = "msg-meta";
    const body = document.createElement("div");
    body.className = "msg-body markdown";
    body.setAttribute("aria-busy", "true");
    const typing = document.createElement("span");
    typing.className = "typing";
    typing.textContent = "Thinking…";
    body.append(typing);
    const actions = document.createElement("div");
    actions.className = "msg-actions";
    actions.append(
      actionButton("copy", "Copy"),
      actionButton("regenerate", "Regenerate"),
      actionButton("feedback", "Good", { "data-value": "up", "aria-pressed": "false", "aria-label": "Good answer" }),
      actionButton("feedback", "Bad", { "data-value": "down", "aria-pressed": "false", "aria-label": "Bad answer" }),
    );
    art.append(meta, body, actions);
    return art;
  }

  function setMeta(art, tier) {
    const meta = art.querySelector(".msg-meta");
    if (!meta || !tier) return;
    meta.textContent = tier.served_by && tier.served_by !== tier.display_name
      ? `${tier.display_name} · answered by ${tier.served_by}`
      : tier.display_name || "";
  }

  function markLastAnswer() {
    const answers = thread.querySelectorAll(".msg-assistant");
    answers.forEach((a, i) => a.classList.toggle("is-last", i === answers.length - 1));
    if (emptyState) emptyState.hidden = thread.querySelector(".msg") !== null;
  }

  function removeAfter(el) {
    const removed = [];
    while (el.nextElementSibling) {
      removed.push(el.nextElementSibling);
      el.nextElementSibling.remove();
    }
    return removed;
  }

  // An edit or regenerate takes the later turns off the page at once; if the server
  // refuses it before an answer starts (a limit, a locked tier), put them back as they
  // were, since the server kept them.
  function restoreRefused(v, msg) {
    clearTimeout(v.startTimer);
    clearInterval(v.announceTimer);
    views.delete(v.clientId);
    v.restore();
    if (view === v) {
      view = null;
      streamingUi(false);
      clearRun();
    }
    markLastAnswer();
    showToast(msg.message || "Something went wrong.");
  }

  // ---------------------------------------------------------------- rendering
  let rafPending = false;
  const dirty = new Set();

  function scheduleRender(v) {
    dirty.add(v);
    if (rafPending) return;
    rafPending = true;
    requestAnimationFrame(() => {
      rafPending = false;
      const stick = nearBottom();
      for (const d of dirty) renderView(d);
      dirty.clear();
      if (stick) scrollToBottom();
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

  // ---------------------------------------------------------------- runs
  function streamingUi(on) {
    stopButton.hidden = !on;
    sendButton.hidden = on;
    root.classList.toggle("is-streaming", on);
    updateCounter();
  }

  function startView({ clientId, el, userEl, retry }) {
    const v = {
      clientId,
      el,
      userEl,
      retry, // how to send this again: {type, content, message_id}
      runId: null,
      messageId: null,
      conversationId,
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
    views.set(clientId, v);
    view = v;
    streamingUi(true);
    return v;
  }

  function bindRun(v, runId) {
    v.runId = runId;
    views.set(runId, v);
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
    if (status === "stopped") {
      const note = document.createElement("p");
      note.className = "msg-note";
      note.textContent = "Stopped.";
      body.append(note);
    } else if (status === "interrupted") {
      const note = document.createElement("p");
      note.className = "msg-note";
      note.textContent = "This answer was interrupted; the text so far is kept.";
      body.append(note);
    }
    announceProgress(v, status === "complete" ? "Answer complete." : `Answer ${status}.`);
    if (view === v) {
      view = null;
      streamingUi(false);
      clearRun();
    }
    markLastAnswer();
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
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "button small";
    retry.textContent = "Retry";
    retry.addEventListener("click", () => retryView(v));
    buttons.append(retry);
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
    if (view === v) {
      view = null;
      streamingUi(false);
      clearRun();
    }
    markLastAnswer();
  }

  function retryView(v) {
    if (view) return showToast("Wait for the current answer to finish or stop it first.");
    const userId = v.userEl?.dataset.messageId;
    const content = v.retry?.content ?? v.userEl?.querySelector(".msg-body")?.dataset.raw ?? "";
    v.el.remove();
    const adCard = thread.querySelector(`.ad-card[data-run-id="${v.runId}"]`);
    if (adCard) adCard.remove();
    if (userId) {
      // Edit-and-resend with the same text re-runs the turn without a duplicate message.
      dispatch({ type: "message.edit", message_id: userId, content }, v.userEl);
    } else {
      if (v.userEl) v.userEl.remove();
      sendMessage(content);
    }
  }

  function dispatch(frame, userEl) {
    const clientId = newId();
    const el = assistantMessageEl();
    if (userEl) userEl.after(el);
    else thread.append(el);
    const v = startView({ clientId, el, userEl, retry: { content: frame.content } });
    const full = { ...frame, client_id: clientId, conversation_id: conversationId, tier: tierSelect.value };
    markLastAnswer();
    scrollToBottom();
    if (!send(full)) failView(v, { message: "You are offline; Lhama is reconnecting. Your message is kept: retry in a moment.", retryable: true });
    return v;
  }

  function sendMessage(text) {
    const content = text.trim();
    if (!content) return false;
    if (content.length > maxChars) {
      showToast(`Your message is ${content.length} characters; the limit is ${maxChars}.`);
      return false;
    }
    if (view) {
      showToast("Wait for the current answer to finish or stop it first.");
      return false;
    }
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      showToast("Not connected yet — Lhama is reconnecting. Your message is kept.", "offline");
      return false;
    }
    showToast("");
    const userEl = userMessageEl(content);
    thread.append(userEl);
    dispatch({ type: "message.send", content }, userEl);
    return true;
  }

  // ---------------------------------------------------------------- frames
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
        onTitle(msg.conversation_id, msg.title);
        break;
      case "ad":
        onAd(msg);
        break;
      default:
        break; // pong and frames from a newer server
    }
  }

  function onHello(msg) {
    attempt = 0;
    setConnection("open", "");
    if (toast.dataset.kind === "offline") showToast(""); // connected again: that warning is stale
    const limit = msg.limits?.max_message_chars;
    if (Number.isInteger(limit) && limit > 0) {
      maxChars = limit;
      updateCounter();
    }
    // Resume the run this page was showing (after a reconnect) or that it found on load.
    if (view && view.runId) {
      send({ type: "run.subscribe", run_id: view.runId, after_seq: view.seq });
    } else if (view && view.status === "pending") {
      failView(view, { message: "The connection dropped before the answer started. Retry?", retryable: true });
    }
  }

  function onRunStarted(msg) {
    const v = views.get(msg.client_id);
    if (!v) return;
    if (v.stopRequested) {
      send({ type: "run.stop", run_id: msg.run_id });
      return;
    }
    if (v.status === "error") {
      // Started after all (a slow start we had given up on): follow it if nothing else runs.
      if (view) {
        send({ type: "run.stop", run_id: msg.run_id });
        return;
      }
      v.el.querySelector(".msg-error")?.remove();
      const actions = v.el.querySelector(".msg-actions");
      if (actions) actions.hidden = false;
      v.el.querySelector(".msg-body").setAttribute("aria-busy", "true");
      view = v;
      streamingUi(true);
    }
    clearTimeout(v.startTimer);
    bindRun(v, msg.run_id);
    v.status = "streaming";
    v.el.dataset.status = "streaming";
    v.messageId = msg.assistant_message_id;
    v.el.dataset.messageId = msg.assistant_message_id;
    if (v.userEl && msg.user_message_id) v.userEl.dataset.messageId = msg.user_message_id;
    v.conversationId = msg.conversation_id;
    setMeta(v.el, msg.tier);
    v.announceTimer = setInterval(() => announceProgress(v, null), ANNOUNCE_EVERY_MS);
    if (msg.conversation_id && msg.conversation_id !== conversationId) adoptConversation(msg.conversation_id);
    saveRun();
  }

  function onDelta(msg) {
    const v = views.get(msg.run_id);
    if (!v || v !== view) return;
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
    scheduleRender(v);
    saveRun();
  }

  function onResync(msg) {
    const v = views.get(msg.run_id);
    if (!v) return;
    // The resync frame carries the whole text so far and its last seq: replace, never append.
    v.text = msg.text || "";
    v.seq = msg.seq || 0;
    if (msg.conversation_id) v.conversationId = msg.conversation_id;
    if (msg.status === "running") {
      v.status = "streaming";
      v.el.dataset.status = "streaming";
      if (!v.announceTimer) v.announceTimer = setInterval(() => announceProgress(v, null), ANNOUNCE_EVERY_MS);
      scheduleRender(v);
      saveRun();
    } else if (msg.status === "error" || msg.status === "interrupted") {
      // The error frame that follows says what happened; show the text kept so far meanwhile.
      v.status = "streaming";
      scheduleRender(v);
    } else {
      v.announced = v.text.length;
      finishView(v, msg.status);
    }
  }

  function onDone(msg) {
    const v = views.get(msg.run_id);
    if (!v) return;
    if (msg.message_id) {
      v.messageId = msg.message_id;
      v.el.dataset.messageId = msg.message_id;
    }
    if (v.status === "complete" || v.status === "stopped") return; // a resync already ended it
    finishView(v, msg.status || "complete");
    if (!document.querySelector(`[data-conversation-id="${v.conversationId}"] .conv-title`)?.dataset.hasTitle) {
      pollTitle(v.conversationId);
    }
  }

  function onError(msg) {
    const v = (msg.run_id && views.get(msg.run_id)) || (msg.client_id && views.get(msg.client_id)) || null;
    if (v && !v.runId && v.restore && v.status === "pending") {
      restoreRefused(v, msg);
      return;
    }
    if (v && v.status !== "complete" && v.status !== "stopped") {
      failView(v, msg);
      return;
    }
    if (msg.code === "not_found" && msg.run_id) {
      clearRun();
      return;
    }
    showToast(msg.message || "Something went wrong.");
  }

  const knownTitles = new Map(); // titles pushed to this page, re-applied after a sidebar refresh

  function onTitle(id, title) {
    if (!id || !title) return;
    knownTitles.set(id, title);
    for (const el of document.querySelectorAll(`[data-conversation-id="${CSS.escape(id)}"] .conv-title`)) {
      el.textContent = title;
      el.dataset.hasTitle = "yes";
    }
    for (const el of document.querySelectorAll(`[data-conversation-id="${CSS.escape(id)}"] .conv-menu-label`)) {
      el.textContent = `Options for ${title}`; // what a screen reader calls the ⋯ menu
    }
    if (id === conversationId) {
      const h = document.getElementById("conversation-title");
      if (h) h.textContent = title;
      document.title = `${title} · Lhama`;
    }
  }

  // Without Redis a title made by a worker cannot be pushed: ask for it a few times after done.
  function pollTitle(id) {
    if (!id || !urls.title) return;
    const delays = [1500, 4000, 10000];
    const tryOnce = async (i) => {
      if (document.querySelector(`[data-conversation-id="${CSS.escape(id)}"] .conv-title`)?.dataset.hasTitle) return;
      const resp = await fetch(urlFor(urls.title, id), { credentials: "same-origin" }).catch(() => null);
      const data = resp && resp.ok ? await resp.json().catch(() => null) : null;
      if (data && data.title) onTitle(id, data.title);
      else if (i + 1 < delays.length) setTimeout(() => tryOnce(i + 1), delays[i + 1]);
    };
    setTimeout(() => tryOnce(0), delays[0]);
  }

  function onAd(msg) {
    const ad = msg.ad;
    if (!ad || msg.conversation_id !== conversationId) return;
    if (ad.impression_id && thread.querySelector(`.ad-card[data-impression-id="${CSS.escape(ad.impression_id)}"]`)) return;
    const card = buildAdCard(ad, {
      conversationId,
      post,
      ask: (question) => {
        if (!sendMessage(question)) input.value = question;
      },
    });
    card.dataset.runId = msg.run_id || "";
    const v = msg.run_id ? views.get(msg.run_id) : null;
    const anchor = v?.el?.isConnected ? v.el : [...thread.querySelectorAll(".msg-assistant")].pop();
    const stick = nearBottom(); // the reader is at the answer's end: bring the card into view too
    if (anchor) anchor.after(card);
    else thread.append(card);
    if (stick) scrollToBottom();
    acknowledgeWhenVisible(card, ad.ack_url, post);
  }

  // ---------------------------------------------------------------- conversation
  async function adoptConversation(id) {
    conversationId = id;
    root.dataset.conversationId = id;
    const activeField = document.getElementById("search-active");
    if (activeField) activeField.value = id;
    if (urls.conversation) history.replaceState(null, "", urlFor(urls.conversation, id));
    await refreshSidebar();
    if (urls.header) {
      const resp = await fetch(urlFor(urls.header, id), { credentials: "same-origin" }).catch(() => null);
      if (resp && resp.ok) {
        const header = document.getElementById("conversation-header");
        if (header) {
          header.outerHTML = await resp.text();
          const fresh = document.getElementById("conversation-header");
          if (fresh && window.htmx) window.htmx.process(fresh);
          const title = knownTitles.get(id);
          if (title) onTitle(id, title); // it may have arrived while the header was loading
        }
      }
    }
  }

  async function refreshSidebar() {
    const list = document.getElementById("conversation-list");
    if (!list || !urls.list) return;
    const url = new URL(urls.list, window.location.origin);
    if (conversationId) url.searchParams.set("active", conversationId);
    const resp = await fetch(url, { credentials: "same-origin" }).catch(() => null);
    if (!resp || !resp.ok) return;
    list.innerHTML = await resp.text(); // our own server-rendered, auto-escaped partial
    if (window.htmx) window.htmx.process(list);
    for (const [id, title] of knownTitles) onTitle(id, title);
  }

  // ---------------------------------------------------------------- socket
  function send(frame) {
    if (!socket || socket.readyState !== WebSocket.OPEN) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  function connect() {
    clearTimeout(reconnectTimer);
    const scheme = window.location.protocol === "https:" ? "wss" : "ws";
    const path = root.dataset.wsPath || "/ws/chat/";
    setConnection(attempt ? "connecting" : "connecting", attempt ? "Reconnecting…" : "Connecting…");
    let ws;
    try {
      ws = new WebSocket(`${scheme}://${window.location.host}${path}`);
    } catch {
      scheduleReconnect();
      return;
    }
    socket = ws;
    ws.addEventListener("message", (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg && typeof msg.type === "string") onFrame(msg);
    });
    ws.addEventListener("close", (event) => {
      if (socket !== ws) return;
      socket = null;
      clearInterval(pingTimer);
      if (event.code === 4403) {
        closedForGood = true;
        setConnection("closed", "The chat connection was refused. Reload the page to try again.");
        if (view) failView(view, { message: "The chat connection was refused.", retryable: false });
        return;
      }
      if (view && view.status === "streaming") {
        const body = view.el.querySelector(".msg-body");
        body.setAttribute("aria-busy", "true");
      }
      scheduleReconnect();
    });
    ws.addEventListener("open", () => {
      clearInterval(pingTimer);
      pingTimer = setInterval(() => send({ type: "ping" }), 25000);
    });
  }

  function scheduleReconnect() {
    if (closedForGood) return;
    // Exponential backoff with jitter: 0.5 s, 1 s, 2 s … capped at 15 s.
    const base = Math.min(15000, 500 * 2 ** attempt);
    const delay = base / 2 + Math.random() * (base / 2);
    attempt += 1;
    setConnection("connecting", `Connection lost — reconnecting in ${Math.ceil(delay / 1000)} s…`);
    reconnectTimer = setTimeout(connect, delay);
  }

  window.addEventListener("online", () => {
    if (!socket) {
      attempt = 0;
      connect();
    }
  });

  // ---------------------------------------------------------------- composer
  function updateCounter() {
    const n = input.value.length;
    counter.textContent = `${n.toLocaleString()} / ${maxChars.toLocaleString()}`;
    const over = n > maxChars;
    counter.classList.toggle("over", over);
    input.setAttribute("aria-invalid", over ? "true" : "false");
    sendButton.disabled = over || !input.value.trim();
  }

  function autosize() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 240)}px`;
  }

  input.addEventListener("input", () => {
    updateCounter();
    autosize();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      composer.requestSubmit();
    }
  });
  composer.addEventListener("submit", (event) => {
    event.preventDefault();
    if (sendMessage(input.value)) {
      input.value = "";
      updateCounter();
      autosize();
    }
  });
  stopButton.addEventListener("click", () => {
    if (view && view.runId) send({ type: "run.stop", run_id: view.runId });
    else if (view) {
      view.stopRequested = true; // stop it as soon as the server says which run it is
      failView(view, { message: "Stopped before the answer started.", retryable: true });
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && view && view.runId && document.activeElement === input) {
      send({ type: "run.stop", run_id: view.runId });
    }
  });

  function updateServedBy() {
    const opt = tierSelect.selectedOptions[0];
    servedBy.textContent = opt?.dataset.servedBy ? `Answered by ${opt.dataset.servedBy}` : "";
  }
  tierSelect.addEventListener("change", updateServedBy);

  // ---------------------------------------------------------------- message actions
  thread.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button || !thread.contains(button)) return;
    const art = button.closest(".msg");
    const action = button.dataset.action;
    if (action === "copy-code") {
      const code = button.closest(".codeblock")?.querySelector("code");
      await copyText(code ? code.textContent : "", button);
    } else if (action === "copy") {
      await copyText(art.querySelector(".msg-body")?.dataset.raw || art.querySelector(".msg-body")?.innerText || "", button);
    } else if (action === "regenerate") {
      if (view) return showToast("Wait for the current answer to finish or stop it first.");
      const id = art.dataset.messageId;
      if (!id) return;
      const userEl = art.previousElementSibling?.closest(".msg-user") || null;
      const removed = [art, ...removeAfter(art)];
      art.remove();
      const v = dispatch({ type: "message.regenerate", message_id: id }, userEl);
      v.retry = { content: userEl?.querySelector(".msg-body")?.dataset.raw };
      v.restore = () => v.el.replaceWith(...removed);
    } else if (action === "edit") {
      startEdit(art);
    } else if (action === "feedback") {
      await sendFeedback(art, button);
    }
  });

  async function copyText(text, button) {
    const label = button.textContent;
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
    } catch {
      button.textContent = "Copy failed";
    }
    setTimeout(() => {
      button.textContent = label;
    }, 1500);
  }

  async function sendFeedback(art, button) {
    const id = art.dataset.messageId;
    if (!id || !urls.feedback) return;
    const pressed = button.getAttribute("aria-pressed") === "true";
    const value = pressed ? "" : button.dataset.value;
    const resp = await post(urlFor(urls.feedback, id), { value }).catch(() => null);
    if (!resp || !resp.ok) {
      showToast("Your feedback could not be saved; try again.");
      return;
    }
    const data = await resp.json();
    for (const b of art.querySelectorAll('button[data-action="feedback"]')) {
      b.setAttribute("aria-pressed", String(b.dataset.value === data.feedback));
    }
  }

  function startEdit(art) {
    if (view) return showToast("Wait for the current answer to finish or stop it first.");
    if (art.querySelector(".edit-form")) return;
    const id = art.dataset.messageId;
    if (!id) return;
    const body = art.querySelector(".msg-body");
    const form = document.createElement("form");
    form.className = "edit-form";
    const label = document.createElement("label");
    label.className = "sr-only";
    label.textContent = "Edit your message";
    const area = document.createElement("textarea");
    area.value = body.dataset.raw || body.textContent;
    area.rows = Math.min(10, Math.max(2, area.value.split("\n").length));
    const editId = `edit-${id}`;
    area.id = editId;
    label.htmlFor = editId;
    const save = document.createElement("button");
    save.type = "submit";
    save.className = "button small";
    save.textContent = "Send";
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "button small secondary";
    cancel.textContent = "Cancel";
    const row = document.createElement("div");
    row.className = "edit-actions";
    row.append(save, cancel);
    form.append(label, area, row);
    body.hidden = true;
    art.querySelector(".msg-actions").hidden = true;
    art.append(form);
    area.focus();
    const close = () => {
      form.remove();
      body.hidden = false;
      art.querySelector(".msg-actions").hidden = false;
    };
    cancel.addEventListener("click", close);
    area.addEventListener("keydown", (event) => {
      if (event.key === "Escape") close();
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const content = area.value.trim();
      if (!content) return;
      if (content.length > maxChars) return showToast(`Your message is ${content.length} characters; the limit is ${maxChars}.`);
      if (!socket || socket.readyState !== WebSocket.OPEN) return showToast("Not connected yet — Lhama is reconnecting.", "offline");
      close();
      const before = { nodes: [...body.childNodes], raw: body.dataset.raw };
      body.textContent = content;
      body.dataset.raw = content;
      const removed = removeAfter(art);
      const v = dispatch({ type: "message.edit", message_id: id, content }, art);
      v.restore = () => {
        body.replaceChildren(...before.nodes);
        body.dataset.raw = before.raw;
        v.el.replaceWith(...removed);
      };
    });
  }

  // ---------------------------------------------------------------- sidebar (phone)
  const toggle = document.getElementById("sidebar-toggle");
  const sidebar = document.getElementById("chat-sidebar");
  if (toggle && sidebar) {
    const setOpen = (open) => {
      root.classList.toggle("sidebar-open", open);
      toggle.setAttribute("aria-expanded", String(open));
      if (open) sidebar.querySelector("input, a, button")?.focus();
    };
    toggle.addEventListener("click", () => setOpen(!root.classList.contains("sidebar-open")));
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && root.classList.contains("sidebar-open")) {
        setOpen(false);
        toggle.focus();
      }
    });
    document.getElementById("sidebar-backdrop")?.addEventListener("click", () => setOpen(false));
  }

  // Menus (<details>): one open at a time; a click elsewhere or Escape closes them.
  const openMenus = () => document.querySelectorAll("details.menu[open], details.conv-menu[open]");
  document.addEventListener("click", (event) => {
    for (const menu of openMenus()) if (!menu.contains(event.target)) menu.open = false;
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    for (const menu of openMenus()) {
      menu.open = false;
      menu.querySelector("summary")?.focus();
    }
  });

  // Copy buttons in the share panel (swapped in by htmx).
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-copy-target]");
    if (!button) return;
    const target = document.getElementById(button.dataset.copyTarget);
    if (target) await copyText(target.value || target.textContent, button);
  });

  // ---------------------------------------------------------------- start
  highlightExisting(thread);
  markLastAnswer();
  updateCounter();
  updateServedBy();
  scrollToBottom();

  // A run still going when the page loaded (reload mid-answer): resume it.
  const streaming = [...thread.querySelectorAll('.msg-assistant[data-status="streaming"]')].pop();
  const stored = loadRun();
  if (streaming) {
    const runId = streaming.dataset.runId || (stored && stored.message_id === streaming.dataset.messageId ? stored.run_id : null);
    if (runId) {
      const userEl = streaming.previousElementSibling?.closest(".msg-user") || null;
      const v = startView({ clientId: newId(), el: streaming, userEl, retry: null });
      clearTimeout(v.startTimer);
      bindRun(v, runId);
      v.status = "streaming";
      v.messageId = streaming.dataset.messageId;
      v.text = streaming.querySelector(".msg-body")?.dataset.raw || "";
      v.seq = 0; // the page's text is a snapshot without a seq: the resync frame replaces it
      v.announced = v.text.length;
      v.announceTimer = setInterval(() => announceProgress(v, null), ANNOUNCE_EVERY_MS);
      streaming.querySelector(".msg-body").setAttribute("aria-busy", "true");
    }
  } else if (stored && stored.conversation_id !== conversationId) {
    // The stored run belongs to another page; leave it alone.
  } else if (stored) {
    clearRun(); // finished while we were away: the page already shows the saved answer
  }
  connect();
  input.focus({ preventScroll: true });

  root.dataset.ready = "yes";
}
