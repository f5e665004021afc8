// The chat page itself: its elements, its URLs (data-attributes on #chat; CSP: no
// inline script), the state the chat modules share, and small page helpers.

const ZERO = "00000000-0000-0000-0000-000000000000";

export const BUSY = "Wait for the current answer to finish or stop it first.";

export function createPage(root) {
  const $ = (id) => document.getElementById(id);
  const els = {
    root,
    thread: $("thread"),
    composer: $("composer"),
    input: $("composer-input"),
    sendButton: $("send-button"),
    stopButton: $("stop-button"),
    counter: $("char-count"),
    tierSelect: $("tier-select"),
    servedBy: $("served-by"),
    connection: $("connection-status"),
    live: $("live-region"),
    toast: $("chat-toast"),
    emptyState: $("empty-state"),
    temporaryToggle: $("temporary-toggle"),
    temporaryBanner: $("temporary-banner"),
    attachInput: $("attach-input"),
    attachButton: $("attach-button"),
    attachmentChips: $("attachment-chips"),
    scrollLatest: $("scroll-latest"),
    shortcuts: $("shortcuts"),
    shortcutsButton: $("shortcuts-button"),
  };
  const urls = {
    feedback: root.dataset.feedbackUrl,
    header: root.dataset.headerUrl,
    list: root.dataset.listUrl,
    title: root.dataset.titleUrl,
    conversation: root.dataset.conversationUrl,
    attachment: root.dataset.attachmentUrl,
    attachmentRemove: root.dataset.attachmentRemoveUrl,
    branch: root.dataset.branchUrl,
  };
  const state = {
    conversationId: root.dataset.conversationId || null,
    maxChars: parseInt(root.dataset.maxChars || "8000", 10),
    // The one run this page is showing live (a page streams one answer at a time).
    view: null,
    views: new Map(), // client_id or run_id -> view
    // A temporary chat (toggled on the new-chat page): never saved, listed or given ads.
    temporary: false,
  };

  const urlFor = (template, id) => template.replace(ZERO, id);
  const csrfToken = () => document.querySelector("meta[name=csrf-token]")?.content || "";

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
    els.toast.textContent = text;
    els.toast.hidden = !text;
    els.toast.dataset.kind = text ? kind : "";
  }

  function newId() {
    return window.crypto?.randomUUID ? window.crypto.randomUUID() : `c${Date.now()}${Math.random().toString(16).slice(2)}`;
  }

  function nearBottom() {
    return els.thread.scrollHeight - els.thread.scrollTop - els.thread.clientHeight < 120;
  }

  function scrollToBottom() {
    els.thread.scrollTop = els.thread.scrollHeight;
  }

  /** A multipart POST (a file upload) with the CSRF header. */
  async function postForm(url, formData) {
    return fetch(url, {
      method: "POST",
      body: formData,
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch" },
    });
  }

  return { els, urls, state, urlFor, post, postForm, showToast, newId, nearBottom, scrollToBottom };
}
