// The sponsored card shown BELOW an answer (never inside it). Every advertiser string
// is plain text and goes into the page with textContent only.

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/** Only http(s) URLs on any origin, or paths on ours; anything else (javascript:, data:) is dropped. */
export function safeHref(url) {
  if (typeof url !== "string" || !url) return null;
  try {
    const parsed = new URL(url, window.location.origin);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/**
 * Builds the card. `handlers`: { post(url, data) -> Promise<Response>, ask(question) }.
 * Returns the element (not yet in the page).
 */
export function buildAdCard(ad, { conversationId, post, ask }) {
  const card = el("aside", "ad-card");
  card.setAttribute("aria-label", "Sponsored suggestion");
  card.dataset.impressionId = ad.impression_id || "";
  card.dataset.conversationId = conversationId || "";

  const head = el("div", "ad-head");
  const label = el("span", "ad-label", "Sponsored");
  const advertiser = el("span", "ad-advertiser", ad.advertiser);
  const dismiss = el("button", "ad-dismiss icon-button", "×");
  dismiss.type = "button";
  dismiss.title = "Dismiss this ad";
  dismiss.setAttribute("aria-label", "Dismiss this ad");
  head.append(label, el("span", "ad-sep", "·"), advertiser, dismiss);
  card.append(head);

  const href = safeHref(ad.click_url);
  const title = href ? el("a", "ad-headline", ad.headline) : el("span", "ad-headline", ad.headline);
  if (href) {
    title.href = href;
    title.target = "_blank";
    title.rel = "sponsored noopener";
  }
  const titleRow = el("div", "ad-title-row");
  titleRow.append(title);
  if (ad.display_domain) titleRow.append(el("span", "ad-domain", ad.display_domain));
  card.append(titleRow);
  if (ad.text) card.append(el("p", "ad-text", ad.text));

  if (ad.question) {
    const ask_ = el("button", "ad-question", ad.question);
    ask_.type = "button";
    ask_.title = "Ask the assistant this question";
    ask_.addEventListener("click", () => ask(ad.question));
    card.append(ask_);
  }

  const why = el("details", "ad-why");
  why.append(el("summary", null, "Why this ad?"));
  const info = ad.why || {};
  const list = el("dl");
  const addRow = (term, value) => {
    if (!value) return;
    list.append(el("dt", null, term), el("dd", null, value));
  };
  addRow("Advertiser", info.advertiser || ad.advertiser);
  addRow("Paid for by", info.paid_by);
  if (Array.isArray(info.matched) && info.matched.length) addRow("Matched", info.matched.join(", "));
  why.append(list);
  if (info.explanation) why.append(el("p", "ad-explanation", info.explanation));
  if (typeof ad.library_url === "string" && ad.library_url.startsWith("/") && !ad.library_url.startsWith("//")) {
    const library = el("a", "ad-library-link", "See this ad in the public ad library");
    library.href = ad.library_url;
    library.target = "_blank";
    library.rel = "noopener";
    const line = el("p", "ad-explanation");
    line.append(library);
    why.append(line);
  }
  why.append(el("p", "ad-explanation", "Ads are chosen from this conversation only, never from a profile, and never change the answer."));
  card.append(why);

  const feedback = el("div", "ad-feedback");
  feedback.append(el("span", "muted", "Report this ad:"));
  const status = el("span", "ad-feedback-status muted");
  status.setAttribute("role", "status");
  for (const [kind, text] of [["not_relevant", "Not relevant"], ["offensive", "Offensive"]]) {
    const b = el("button", "link-button ad-feedback-button", text);
    b.type = "button";
    b.dataset.kind = kind;
    b.addEventListener("click", async () => {
      if (!ad.feedback_url) return;
      const resp = await post(ad.feedback_url, { kind }).catch(() => null);
      status.textContent = resp && resp.ok ? "Thanks, noted." : "Could not send that; try again.";
      if (resp && resp.ok) for (const x of feedback.querySelectorAll("button")) x.disabled = true;
    });
    feedback.append(b);
  }
  feedback.append(status);
  card.append(feedback);

  dismiss.addEventListener("click", async () => {
    if (ad.dismiss_url) post(ad.dismiss_url, {}).catch(() => null);
    card.remove();
  });

  return card;
}

/** How long the card must stay viewable without a break (MRC: one continuous second). */
export const VIEWABLE_MS = 1000;
/** The share of the card's pixels that must be in view (MRC: half). */
export const VIEWABLE_RATIO = 0.5;

/**
 * POSTs `ackUrl` once, when the card has been viewable as the MRC measures it: at least
 * half of its pixels in view (IntersectionObserver), on a visible (Page Visibility API)
 * and focused tab, for one continuous second. Any break (scrolled away, tab hidden,
 * window blurred, card removed) stops the clock, and it starts again from zero. The
 * request carries the measured time in view (`visible_ms`). Returns a function that
 * stops watching.
 */
export function acknowledgeWhenVisible(card, ackUrl, post, { viewableMs = VIEWABLE_MS } = {}) {
  if (!ackUrl || !("IntersectionObserver" in window)) return () => {};
  let inView = false;
  let since = null; // when the current unbroken viewable stretch began
  let timer = null;
  let done = false;

  const viewable = () =>
    inView && card.isConnected && document.visibilityState === "visible" && document.hasFocus();

  const check = () => {
    if (done) return;
    if (!card.isConnected) return stop();
    if (!viewable()) {
      since = null;
      card.dataset.viewable = "no";
      clearTimeout(timer);
      timer = null;
      return;
    }
    const now = performance.now();
    if (since === null) since = now;
    card.dataset.viewable = "yes";
    const left = since + viewableMs - now;
    if (left > 0) {
      clearTimeout(timer);
      timer = setTimeout(check, left);
      return;
    }
    const visibleMs = Math.round(now - since);
    stop();
    card.dataset.acknowledged = "yes";
    post(ackUrl, { visible_ms: String(visibleMs) }).catch(() => null);
  };

  const observer = new IntersectionObserver(
    (entries) => {
      for (const entry of entries) inView = entry.isIntersecting && entry.intersectionRatio >= VIEWABLE_RATIO;
      check();
    },
    { threshold: [0, VIEWABLE_RATIO, 1] },
  );
  document.addEventListener("visibilitychange", check);
  window.addEventListener("focus", check);
  window.addEventListener("blur", check);
  observer.observe(card);

  function stop() {
    done = true;
    clearTimeout(timer);
    observer.disconnect();
    document.removeEventListener("visibilitychange", check);
    window.removeEventListener("focus", check);
    window.removeEventListener("blur", check);
  }
  return stop;
}

/**
 * An `ad` frame: its card goes right after the answer it belongs to (or the last answer),
 * once per impression, and only on the conversation it was chosen for.
 */
export function showAd(msg, page, ask) {
  const { thread } = page.els;
  const { state } = page;
  const ad = msg.ad;
  if (!ad || msg.conversation_id !== state.conversationId) return;
  if (ad.impression_id && thread.querySelector(`.ad-card[data-impression-id="${CSS.escape(ad.impression_id)}"]`)) return;
  const card = buildAdCard(ad, { conversationId: state.conversationId, post: page.post, ask });
  card.dataset.runId = msg.run_id || "";
  const v = msg.run_id ? state.views.get(msg.run_id) : null;
  const anchor = v?.el?.isConnected ? v.el : [...thread.querySelectorAll(".msg-assistant")].pop();
  const stick = page.nearBottom(); // the reader is at the answer's end: bring the card into view too
  if (anchor) anchor.after(card);
  else thread.append(card);
  if (stick) page.scrollToBottom();
  acknowledgeWhenVisible(card, ad.ack_url, page.post);
}
