// The composer: the message box (character count, auto-height, Enter to send), the Stop
// button, sending a message (with its attached files, and in the page's project when it
// starts a conversation), and sending a failed one again (Retry). Escape is keyboard.js's.
import { BUSY } from "./page.js";
import { userMessageEl } from "./messages.js";
import { sentChips } from "./attachments.js";

export function createComposer(page, { socket, stream, attachments }) {
  const { thread, composer, input, counter, sendButton, stopButton } = page.els;
  const { state } = page;

  function updateCounter() {
    const n = input.value.length;
    counter.textContent = `${n.toLocaleString()} / ${state.maxChars.toLocaleString()}`;
    const over = n > state.maxChars;
    counter.classList.toggle("over", over);
    input.setAttribute("aria-invalid", over ? "true" : "false");
    sendButton.disabled = over || !input.value.trim();
  }

  function autosize() {
    input.style.height = "auto";
    input.style.height = `${Math.min(input.scrollHeight, 240)}px`;
  }

  /**
   * Sends `text` as a new turn, with the composer's attached files (or `files`, when a
   * refused message is sent again); false (with a toast saying why) when it cannot go now.
   */
  function sendMessage(text, files = null) {
    const content = text.trim();
    if (!content) return false;
    if (content.length > state.maxChars) {
      page.showToast(`Your message is ${content.length} characters; the limit is ${state.maxChars}.`);
      return false;
    }
    if (state.view) {
      page.showToast(BUSY);
      return false;
    }
    if (!socket.isOpen()) {
      page.showToast("Not connected yet — Lhama is reconnecting. Your message is kept.", "offline");
      return false;
    }
    if (!files && attachments.busy()) {
      page.showToast("Wait for the attached files to finish reading.");
      return false;
    }
    page.showToast("");
    const attached = files || attachments.take();
    const userEl = userMessageEl(content);
    if (attached.length) userEl.querySelector(".msg-body").after(sentChips(attached));
    thread.append(userEl);
    const frame = { type: "message.send", content };
    if (attached.length) frame.attachments = attached.map((file) => file.id);
    if (state.temporary && !state.conversationId) frame.temporary = true; // the first message starts it
    // A new chat on a project's page is filed in that project.
    else if (!state.conversationId && page.els.root.dataset.projectId) frame.project_id = page.els.root.dataset.projectId;
    const v = stream.dispatch(frame, userEl);
    v.files = attached; // a refused message keeps its files for Retry (the server did not take them)
    if (page.els.temporaryToggle) page.els.temporaryToggle.disabled = true;
    return true;
  }

  /** The Retry button of a failed answer. */
  function retryView(v) {
    if (state.view) return page.showToast(BUSY);
    const userId = v.userEl?.dataset.messageId;
    const content = v.retry?.content ?? v.userEl?.querySelector(".msg-body")?.dataset.raw ?? "";
    v.el.remove();
    const adCard = thread.querySelector(`.ad-card[data-run-id="${v.runId}"]`);
    if (adCard) adCard.remove();
    if (userId) {
      // Edit-and-resend with the same text re-runs the turn without a duplicate message.
      stream.dispatch({ type: "message.edit", message_id: userId, content }, v.userEl);
    } else {
      if (v.userEl) v.userEl.remove();
      sendMessage(content, v.files || []);
    }
  }

  // The temporary chat toggle (new-chat page only): the server keeps nothing of it.
  const toggle = page.els.temporaryToggle;
  if (toggle) {
    const apply = () => {
      state.temporary = toggle.checked;
      if (page.els.temporaryBanner) page.els.temporaryBanner.hidden = !toggle.checked;
      page.els.root.classList.toggle("is-temporary", toggle.checked);
    };
    toggle.addEventListener("change", apply);
    apply(); // a checkbox the browser restored on reload
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
    const { view } = state;
    if (view && view.runId) socket.send({ type: "run.stop", run_id: view.runId });
    else if (view) {
      view.stopRequested = true; // stop it as soon as the server says which run it is
      stream.failView(view, { message: "Stopped before the answer started.", retryable: true });
    }
  });
  /** What a sponsored question does: ask it now, or leave it in the box when it cannot go yet. */
  function ask(question) {
    if (!sendMessage(question)) input.value = question;
  }

  return { updateCounter, sendMessage, retryView, ask };
}
