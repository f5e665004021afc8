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

/**
 * The "‹ 2 / 3 ›" switcher of a message with versions (the server's `versions` object:
 * index, count, previous_id, next_id); the buttons carry the version to show.
 */
export function versionsEl(versions) {
  const group = document.createElement("span");
  group.className = "versions";
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", "Versions of this message");
  const button = (id, text, label, cls) => {
    const b = actionButton("version", text, { "aria-label": label, "data-value": id || "" });
    b.classList.add(cls);
    if (!id) b.disabled = true;
    return b;
  };
  const label = document.createElement("span");
  label.className = "version-label";
  label.textContent = `${versions.index} / ${versions.count}`;
  group.append(
    button(versions.previous_id, "‹", "Previous version", "version-prev"),
    label,
    button(versions.next_id, "›", "Next version", "version-next"),
  );
  return group;
}

/** Puts the version switcher on a message (replacing the one it had). */
export function setVersions(art, versions) {
  const actions = art.querySelector(".msg-actions");
  if (!actions) return;
  actions.querySelector(".versions")?.remove();
  if (versions && versions.count > 1) actions.prepend(versionsEl(versions));
}

/** Offers Continue on an answer that can be continued, and only then. */
export function setContinuable(art, on) {
  const actions = art.querySelector(".msg-actions");
  if (!actions) return;
  const existing = actions.querySelector('button[data-action="continue"]');
  if (on && !existing) {
    const regenerate = actions.querySelector('button[data-action="regenerate"]');
    const b = actionButton("continue", "Continue");
    if (regenerate) regenerate.after(b);
    else actions.append(b);
  } else if (!on && existing) existing.remove();
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
