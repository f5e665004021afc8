// Markdown from the model -> safe DOM. Model output is untrusted: raw HTML in it is
// escaped (shown as text, never interpreted), and DOMPurify with a small Markdown tag
// list always stands between the generated HTML and the page. Same policy as the
// server side (assistant/markdown.py: markdown-it-py + nh3).
import { Marked } from "marked";
import DOMPurify from "dompurify";
import hljs from "highlight.js/lib/core";
import bash from "highlight.js/lib/languages/bash";
import c from "highlight.js/lib/languages/c";
import cpp from "highlight.js/lib/languages/cpp";
import css from "highlight.js/lib/languages/css";
import go from "highlight.js/lib/languages/go";
import java from "highlight.js/lib/languages/java";
import javascript from "highlight.js/lib/languages/javascript";
import json from "highlight.js/lib/languages/json";
import markdown from "highlight.js/lib/languages/markdown";
import plaintext from "highlight.js/lib/languages/plaintext";
import python from "highlight.js/lib/languages/python";
import rust from "highlight.js/lib/languages/rust";
import sql from "highlight.js/lib/languages/sql";
import typescript from "highlight.js/lib/languages/typescript";
import xml from "highlight.js/lib/languages/xml";
import yaml from "highlight.js/lib/languages/yaml";

const LANGUAGES = { bash, c, cpp, css, go, java, javascript, json, markdown, plaintext, python, rust, sql, typescript, xml, yaml };
for (const [name, lang] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, lang);

export const ALLOWED_TAGS = [
  "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s",
  "code", "pre", "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody",
  "tr", "th", "td", "span",
];
const PURIFY_CONFIG = {
  ALLOWED_TAGS,
  ALLOWED_ATTR: ["href", "title", "class", "start"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  // DOMPurify keeps data-* attributes whatever ALLOWED_ATTR says, unless told not to; the
  // page's own scripts act on data-* (data-action, data-value), never model output's.
  ALLOW_DATA_ATTR: false,
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("rel", "noopener noreferrer nofollow");
    node.setAttribute("target", "_blank");
  }
});

export function escapeHtml(text) {
  return String(text)
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

const marked = new Marked({ gfm: true, breaks: false });
marked.use({
  renderer: {
    // Raw HTML in model output is shown as text, never interpreted.
    html({ text }) {
      return escapeHtml(text);
    },
    // Images from a model would load third-party URLs: show them as links instead.
    image({ href, text }) {
      return `<a href="${escapeHtml(href)}">${escapeHtml(text || href)}</a>`;
    },
    code({ text, lang }) {
      const language = (lang || "").trim().split(/\s+/)[0].toLowerCase();
      const known = language && hljs.getLanguage(language);
      const body = known ? hljs.highlight(text, { language, ignoreIllegals: true }).value : escapeHtml(text);
      const cls = known ? ` class="hljs language-${escapeHtml(language)}"` : ' class="hljs"';
      return `<pre><code${cls}>${body}</code></pre>\n`;
    },
  },
});

/** HTML -> the HTML that may reach the page: the Markdown tag list, http/https/mailto
 * links, no data-* attributes. */
export function sanitizeHtml(html) {
  return DOMPurify.sanitize(html, PURIFY_CONFIG);
}

/** Markdown text -> sanitised HTML string. */
export function markdownToSafeHtml(text) {
  return sanitizeHtml(marked.parse(text || "", { async: false }));
}

/** Render Markdown into `el` (replacing its content) and decorate code blocks. */
export function renderMarkdownInto(el, text) {
  el.innerHTML = markdownToSafeHtml(text);
  decorateCodeBlocks(el);
}

/** Adds a copy button (and language label) to every <pre> in `root` that has none. */
export function decorateCodeBlocks(root) {
  for (const pre of root.querySelectorAll("pre")) {
    if (pre.parentElement?.classList.contains("codeblock")) continue;
    const code = pre.querySelector("code");
    const wrap = document.createElement("div");
    wrap.className = "codeblock";
    const bar = document.createElement("div");
    bar.className = "codeblock-bar";
    const label = document.createElement("span");
    const match = code && /language-([\w+-]+)/.exec(code.className);
    label.textContent = match ? match[1] : "code";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy-code";
    button.dataset.action = "copy-code";
    button.textContent = "Copy";
    bar.append(label, button);
    pre.replaceWith(wrap);
    wrap.append(bar, pre);
  }
}

/** Highlights server-rendered history code blocks (already sanitised by nh3). */
export function highlightExisting(root) {
  for (const code of root.querySelectorAll("pre > code")) {
    if (code.dataset.highlighted) continue;
    const match = /language-([\w+-]+)/.exec(code.className);
    if (match && hljs.getLanguage(match[1].toLowerCase())) {
      // highlightElement reads textContent and writes escaped spans: no HTML from the model survives.
      hljs.highlightElement(code);
    }
    code.dataset.highlighted = "yes";
  }
  decorateCodeBlocks(root);
}
