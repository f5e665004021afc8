// The run this tab is following, kept in sessionStorage so that a reload mid-answer
// picks it up again: the page shows the text so far, the socket's resync frame the rest.

const RUN_KEY = "lhama.activeRun";

export function saveRun(view) {
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

export function clearRun() {
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

/**
 * A run still going when the page loaded (reload mid-answer): follow it. Its view is
 * subscribed when the socket's hello arrives. A stored run of this page that is no
 * longer streaming finished while we were away: the page already shows the saved answer.
 */
export function resumeOnLoad(page, stream) {
  const { thread } = page.els;
  const streaming = [...thread.querySelectorAll('.msg-assistant[data-status="streaming"]')].pop();
  const stored = loadRun();
  if (streaming) {
    const runId = streaming.dataset.runId || (stored && stored.message_id === streaming.dataset.messageId ? stored.run_id : null);
    if (runId) {
      const userEl = streaming.previousElementSibling?.closest(".msg-user") || null;
      const v = stream.startView({ clientId: page.newId(), el: streaming, userEl, retry: null });
      clearTimeout(v.startTimer);
      stream.bindRun(v, runId);
      v.status = "streaming";
      v.messageId = streaming.dataset.messageId;
      v.text = streaming.querySelector(".msg-body")?.dataset.raw || "";
      v.seq = 0; // the page's text is a snapshot without a seq: the resync frame replaces it
      v.announced = v.text.length;
      stream.startAnnouncing(v);
      streaming.querySelector(".msg-body").setAttribute("aria-busy", "true");
    }
  } else if (stored && stored.conversation_id !== page.state.conversationId) {
    // The stored run belongs to another page; leave it alone.
  } else if (stored) {
    clearRun();
  }
}
