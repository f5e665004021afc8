// The elements of the message list: a user turn, an assistant turn (with its actions),
// the model line above an answer, and the list's own bookkeeping.

function actionButton(action, text, extra = {}) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "msg-action";
  b.dataset.action = action;
  b.textContent = text;
  for (const [k, v] of Object.entries(extra)) b.setAttribute(k, v);
  return b;
}

export function userMessageEl(text) {
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

export function assistantMessageEl() {
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

/** The line above an answer: the tier, and the model that answered when it is another. */
export function setMeta(art, tier) {
  const meta = art.querySelector(".msg-meta");
  if (!meta || !tier) return;
  meta.textContent = tier.served_by && tier.served_by !== tier.display_name
    ? `${tier.display_name} · answered by ${tier.served_by}`
    : tier.display_name || "";
}

/** Only the last answer offers Regenerate; the empty state goes once there is a message. */
export function markLastAnswer(thread, emptyState) {
  const answers = thread.querySelectorAll(".msg-assistant");
  answers.forEach((a, i) => a.classList.toggle("is-last", i === answers.length - 1));
  if (emptyState) emptyState.hidden = thread.querySelector(".msg") !== null;
}

/** Takes every element after `el` off the page and returns them, in order. */
export function removeAfter(el) {
  const removed = [];
  while (el.nextElementSibling) {
    removed.push(el.nextElementSibling);
    el.nextElementSibling.remove();
  }
  return removed;
}
