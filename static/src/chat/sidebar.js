// The conversation list and header: titles as they arrive (pushed, or asked for when
// nothing can push them), taking on a new conversation's URL, header and list entry;
// the phone sidebar toggle, and the menus (one open at a time).

const TITLE_POLL_DELAYS_MS = [1500, 4000, 10000];

export function createSidebar(page) {
  const { root } = page.els;
  const { state, urls } = page;
  const knownTitles = new Map(); // titles pushed to this page, re-applied after a sidebar refresh
  const titleEls = (id) => document.querySelectorAll(`[data-conversation-id="${CSS.escape(id)}"] .conv-title`);

  function applyTitle(id, title) {
    if (!id || !title) return;
    knownTitles.set(id, title);
    for (const el of titleEls(id)) {
      el.textContent = title;
      el.dataset.hasTitle = "yes";
    }
    for (const el of document.querySelectorAll(`[data-conversation-id="${CSS.escape(id)}"] .conv-menu-label`)) {
      el.textContent = `Options for ${title}`; // what a screen reader calls the ⋯ menu
    }
    if (id === state.conversationId) {
      const h = document.getElementById("conversation-title");
      if (h) h.textContent = title;
      document.title = `${title} · Lhama`;
    }
  }

  // Without Redis a title made by a worker cannot be pushed: ask for it a few times after done.
  function pollTitle(id) {
    if (!id || !urls.title) return;
    const delays = TITLE_POLL_DELAYS_MS;
    const tryOnce = async (i) => {
      if (titleEls(id)[0]?.dataset.hasTitle) return;
      const resp = await fetch(page.urlFor(urls.title, id), { credentials: "same-origin" }).catch(() => null);
      const data = resp && resp.ok ? await resp.json().catch(() => null) : null;
      if (data && data.title) applyTitle(id, data.title);
      else if (i + 1 < delays.length) setTimeout(() => tryOnce(i + 1), delays[i + 1]);
    };
    setTimeout(() => tryOnce(0), delays[0]);
  }

  /** The first answer of a new chat made a conversation: this page becomes its page. */
  async function adoptConversation(id) {
    state.conversationId = id;
    root.dataset.conversationId = id;
    const activeField = document.getElementById("search-active");
    if (activeField) activeField.value = id;
    if (urls.conversation) history.replaceState(null, "", page.urlFor(urls.conversation, id));
    await refreshList();
    if (urls.header) {
      const resp = await fetch(page.urlFor(urls.header, id), { credentials: "same-origin" }).catch(() => null);
      if (resp && resp.ok) {
        const header = document.getElementById("conversation-header");
        if (header) {
          header.outerHTML = await resp.text();
          const fresh = document.getElementById("conversation-header");
          if (fresh && window.htmx) window.htmx.process(fresh);
          const title = knownTitles.get(id);
          if (title) applyTitle(id, title); // it may have arrived while the header was loading
        }
      }
    }
  }

  async function refreshList() {
    const list = document.getElementById("conversation-list");
    if (!list || !urls.list) return;
    const url = new URL(urls.list, window.location.origin);
    if (state.conversationId) url.searchParams.set("active", state.conversationId);
    if (root.dataset.projectId) url.searchParams.set("project", root.dataset.projectId); // a project's page lists its own
    const resp = await fetch(url, { credentials: "same-origin" }).catch(() => null);
    if (!resp || !resp.ok) return;
    list.innerHTML = await resp.text(); // our own server-rendered, auto-escaped partial
    if (window.htmx) window.htmx.process(list);
    for (const [id, title] of knownTitles) applyTitle(id, title);
  }

  // ---------------------------------------------------------------- phone sidebar
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

  // A refused htmx request (a project that cannot be deleted now, a move that found
  // nothing) says why in the toast: the server's plain-text reason, or a generic line.
  document.body.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    const plain = (xhr.getResponseHeader("Content-Type") || "").startsWith("text/plain");
    page.showToast(plain && xhr.responseText ? xhr.responseText : "That did not work. Reload the page and try again.");
  });

  /** Whether the list already shows a title for conversation `id`. */
  const hasTitle = (id) => Boolean(titleEls(id)[0]?.dataset.hasTitle);

  return { applyTitle, pollTitle, adoptConversation, hasTitle };
}
