// What the buttons on a message do: copy (an answer or a code block), regenerate, edit
// and resend a question, rate an answer, continue a cut answer, show another version;
// and the copy buttons of the share panel.
import { BUSY } from "./page.js";
import { removeAfter } from "./messages.js";
import { highlightExisting } from "./render.js";

export function createActions(page, { socket, stream }) {
  const { thread } = page.els;
  const { state, urls } = page;

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
      if (state.view) return page.showToast(BUSY);
      const id = art.dataset.messageId;
      if (!id) return;
      const userEl = art.previousElementSibling?.closest(".msg-user") || null;
      const removed = [art, ...removeAfter(art)];
      art.remove();
      const v = stream.dispatch({ type: "message.regenerate", message_id: id }, userEl);
      v.retry = { content: userEl?.querySelector(".msg-body")?.dataset.raw };
      v.restore = () => v.el.replaceWith(...removed);
    } else if (action === "edit") {
      startEdit(art);
    } else if (action === "continue") {
      if (state.view) return page.showToast(BUSY);
      if (!art.dataset.messageId) return;
      if (!socket.isOpen()) return page.showToast("Not connected yet — Lhama is reconnecting.", "offline");
      stream.continueAnswer(art);
    } else if (action === "version") {
      await switchVersion(button.dataset.value, button.classList.contains("version-prev") ? "version-prev" : "version-next");
    } else if (action === "feedback") {
      await sendFeedback(art, button);
    }
  });

  /**
   * Shows another version of a message: the server makes its branch the active one and
   * sends that branch's messages (rendered as on page load), which replace the thread's.
   */
  async function switchVersion(messageId, direction) {
    if (!messageId || !state.conversationId || !urls.branch) return;
    if (state.view) return page.showToast(BUSY);
    const resp = await page.post(page.urlFor(urls.branch, state.conversationId), { message_id: messageId }).catch(() => null);
    if (!resp || !resp.ok) {
      page.showToast(resp && resp.status === 409 ? await resp.text() : "That version could not be shown; try again.");
      return;
    }
    const fresh = document.createElement("template");
    fresh.innerHTML = await resp.text(); // the server's own rendering (Markdown sanitised by nh3), as on page load
    for (const old of thread.querySelectorAll(".msg, .ad-card")) old.remove();
    thread.append(fresh.content);
    highlightExisting(thread);
    stream.markLast();
    // Keep the keyboard where it was: on the same switcher, now of the version shown.
    const group = thread.querySelector(`.msg[data-message-id="${CSS.escape(messageId)}"] .versions`);
    const target = group && ([...group.querySelectorAll(`.${direction}:not([disabled])`), ...group.querySelectorAll("button:not([disabled])")][0]);
    if (target) target.focus();
  }

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
    const resp = await page.post(page.urlFor(urls.feedback, id), { value }).catch(() => null);
    if (!resp || !resp.ok) {
      page.showToast("Your feedback could not be saved; try again.");
      return;
    }
    const data = await resp.json();
    for (const b of art.querySelectorAll('button[data-action="feedback"]')) {
      b.setAttribute("aria-pressed", String(b.dataset.value === data.feedback));
    }
  }

  function startEdit(art) {
    if (state.view) return page.showToast(BUSY);
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
      if (content.length > state.maxChars) return page.showToast(`Your message is ${content.length} characters; the limit is ${state.maxChars}.`);
      if (!socket.isOpen()) return page.showToast("Not connected yet — Lhama is reconnecting.", "offline");
      close();
      const before = { nodes: [...body.childNodes], raw: body.dataset.raw };
      body.textContent = content;
      body.dataset.raw = content;
      const removed = removeAfter(art);
      const v = stream.dispatch({ type: "message.edit", message_id: id, content }, art);
      v.restore = () => {
        body.replaceChildren(...before.nodes);
        body.dataset.raw = before.raw;
        v.el.replaceWith(...removed);
      };
    });
  }

  // Copy buttons in the share panel (swapped in by htmx).
  document.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-copy-target]");
    if (!button) return;
    const target = document.getElementById(button.dataset.copyTarget);
    if (target) await copyText(target.value || target.textContent, button);
  });
}
