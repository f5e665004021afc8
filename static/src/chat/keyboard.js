// Keyboard shortcuts and the "scroll to latest" button.
//   ?   the list of shortcuts (a <dialog>; Esc or Close closes it)
//   Esc stop the answer being written (when no menu or dialog is open to close first)
//   ↑   in an empty message box: edit your last message
//   /   go to the message box
// While an answer streams and the thread is scrolled up, "Scroll to latest" takes you
// back down (the thread stops following the answer when you scroll away from it).

function typingIn(target) {
  return target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
}

export function createKeyboard(page, { socket }) {
  const { thread, input, shortcuts, shortcutsButton, scrollLatest, root } = page.els;
  const { state } = page;

  function openShortcuts() {
    if (shortcuts && !shortcuts.open) shortcuts.showModal();
  }
  shortcutsButton?.addEventListener("click", openShortcuts);

  /** Something that Escape closes first: a dialog, an open menu, the phone sidebar. */
  const somethingToClose = () =>
    Boolean(document.querySelector("dialog[open], details[open]")) || root.classList.contains("sidebar-open");

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.isComposing || event.ctrlKey || event.metaKey || event.altKey) return;
    const typing = typingIn(event.target);
    if (event.key === "?" && !typing) {
      event.preventDefault();
      openShortcuts();
    } else if (event.key === "/" && !typing) {
      event.preventDefault();
      input.focus();
    } else if (event.key === "Escape" && state.view && !somethingToClose()) {
      const { view } = state;
      if (view.runId) socket.send({ type: "run.stop", run_id: view.runId });
      else page.els.stopButton.click(); // not started yet: the Stop button's own path
    } else if (event.key === "ArrowUp" && event.target === input && input.value === "" && !event.shiftKey) {
      if (state.view) return;
      const mine = thread.querySelectorAll(".msg-user [data-action=edit]");
      const last = mine[mine.length - 1];
      if (last) {
        event.preventDefault();
        last.click();
      }
    }
  });

  // ---------------------------------------------------------------- scroll to latest
  if (scrollLatest) {
    const update = () => {
      scrollLatest.hidden = !(state.view && !page.nearBottom());
    };
    thread.addEventListener("scroll", update, { passive: true });
    new MutationObserver(update).observe(thread, { childList: true, subtree: true, characterData: true });
    scrollLatest.addEventListener("click", () => {
      page.scrollToBottom();
      scrollLatest.hidden = true;
      input.focus({ preventScroll: true });
    });
  }
}
