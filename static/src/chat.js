// Lhama chat page: the WebSocket client for protocol v1 (docs/protocol.md), streamed
// Markdown rendering, message actions, the sponsored card and the sidebar toggles.
// Everything the page needs comes from data-attributes on #chat (CSP: no inline script).
// This file wires the modules of static/src/chat/ together; each says what it owns.
import { highlightExisting } from "./chat/render.js";
import { createPage } from "./chat/page.js";
import { createSocket } from "./chat/socket.js";
import { createPicker } from "./chat/picker.js";
import { createStream } from "./chat/stream.js";
import { createComposer } from "./chat/composer.js";
import { createActions } from "./chat/actions.js";
import { createSidebar } from "./chat/sidebar.js";
import { createAttachments } from "./chat/attachments.js";
import { createKeyboard } from "./chat/keyboard.js";
import { createFrames } from "./chat/frames.js";
import { resumeOnLoad } from "./chat/resume.js";

const root = document.getElementById("chat");
if (root) init(root);

function init(root) {
  const page = createPage(root);
  const { state } = page;
  const { thread, input } = page.els;
  // The modules below call each other both ways (a failed answer's Retry sends again;
  // sending starts an answer), so the later ones are reached through these arrows.
  let composer = null;
  let frames = null;

  const socket = createSocket({
    path: root.dataset.wsPath || "/ws/chat/",
    connection: page.els.connection,
    onFrame: (msg) => frames.onFrame(msg),
    onRefused: () => {
      if (state.view) stream.failView(state.view, { message: "The chat connection was refused.", retryable: false });
    },
    onDrop: () => {
      if (state.view && state.view.status === "streaming") {
        state.view.el.querySelector(".msg-body").setAttribute("aria-busy", "true");
      }
    },
  });
  const picker = createPicker(page.els);
  const stream = createStream(page, {
    send: socket.send,
    tier: picker.tier,
    retry: (v) => composer.retryView(v),
    updateCounter: () => composer.updateCounter(),
  });
  const attachments = createAttachments(page);
  composer = createComposer(page, { socket, stream, attachments });
  createKeyboard(page, { socket });
  createActions(page, { socket, stream });
  const sidebar = createSidebar(page);
  frames = createFrames(page, { socket, stream, composer, sidebar });

  highlightExisting(thread);
  stream.markLast();
  composer.updateCounter();
  picker.updateServedBy();
  page.scrollToBottom();
  resumeOnLoad(page, stream);
  socket.connect();
  input.focus({ preventScroll: true });

  root.dataset.ready = "yes";
}
