// Advertiser dashboard: live preview of the sponsored card, the performance chart,
// character counters. Advertiser text is untrusted: it only ever reaches the DOM
// through textContent, never innerHTML.
import uPlot from "uplot";

// --- live card preview ----------------------------------------------------------
// A form marked data-preview-form="ID" drives the card #ID: each input with
// data-preview="slot" fills the card's [data-slot="slot"] as the user types.
function hostnameOf(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" ? parsed.hostname.replace(/^www\./, "") : "";
  } catch {
    return "";
  }
}

function bindPreview(form) {
  const card = document.getElementById(form.dataset.previewForm);
  if (!card) return;
  const inputs = form.querySelectorAll("[data-preview]");
  const valueOf = (slot) => {
    const input = form.querySelector(`[data-preview="${slot}"]`);
    return input ? input.value.trim() : "";
  };
  const render = () => {
    for (const slotEl of card.querySelectorAll("[data-slot]")) {
      const slot = slotEl.dataset.slot;
      const input = form.querySelector(`[data-preview="${slot}"]`);
      // Only fields present in this form update the card (the advertiser name is fixed).
      if (!input && slot !== "display_domain") continue;
      let value = input ? input.value.trim() : "";
      if (slot === "display_domain" && !value) value = hostnameOf(valueOf("landing_url"));
      slotEl.textContent = value || slotEl.dataset.placeholder || "";
      slotEl.classList.toggle("is-placeholder", !value);
    }
  };
  for (const input of inputs) input.addEventListener("input", render);
  render();
}

// --- character counters ---------------------------------------------------------
function bindCounter(input) {
  const max = Number(input.getAttribute("maxlength"));
  if (!max) return;
  const counter = document.createElement("span");
  counter.className = "char-counter";
  counter.setAttribute("aria-live", "polite");
  input.insertAdjacentElement("afterend", counter);
  const update = () => {
    const left = max - input.value.length;
    counter.textContent = `${left} characters left`;
    counter.classList.toggle("is-low", left < Math.min(10, max / 5));
  };
  input.addEventListener("input", update);
  update();
}

// --- performance chart -------------------------------------------------------------
const fmtInt = new Intl.NumberFormat("en-US");
const fmtUsd = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });

// A colour variable as the canvas can draw it: the variables are light-dark(...) pairs,
// which only the browser's style engine resolves, so a probe element's computed colour
// (rgb(...)) is read instead of the variable's text.
function cssVar(name, fallback) {
  return cssColor(`var(${name}, ${fallback})`, fallback);
}

function cssColor(expression, fallback) {
  const probe = document.createElement("span");
  probe.style.color = expression;
  probe.hidden = true;
  document.body.append(probe);
  const value = getComputedStyle(probe).color;
  probe.remove();
  return value || fallback;
}

function bindChart(el) {
  const source = document.getElementById(el.dataset.chart);
  if (!source) return;
  const rows = JSON.parse(source.textContent);
  if (!rows.length) return;
  // uPlot wants unix seconds on x and one array per series.
  const xs = rows.map((r) => Date.parse(`${r.day}T00:00:00Z`) / 1000);
  const data = [
    xs,
    rows.map((r) => r.impressions),
    rows.map((r) => r.clicks),
    rows.map((r) => r.spend_micros / 1e6),
  ];
  const accent = cssVar("--accent", "#6b4eff");
  const accentFill = cssColor("color-mix(in srgb, var(--accent) 13%, transparent)", "rgba(107, 78, 255, 0.13)");
  const text = cssVar("--muted", "#5f6368");
  const grid = cssVar("--border", "#dedbd5");
  const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
  // Impressions on the left axis, spend on the right; clicks (far fewer) get their own
  // scale so their shape shows; the legend gives every exact value under the cursor.
  const fromZero = (u, min, max) => [0, max > 0 ? max * 1.08 : 1];
  const usdAxis = (s) => (Number.isInteger(s) ? `$${fmtInt.format(s)}` : fmtUsd.format(s));
  const opts = {
    width: Math.max(300, el.clientWidth),
    height: 280,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
    cursor: { drag: { x: false, y: false } },
    legend: { live: true },
    scales: { x: { time: true }, count: { range: fromZero }, clicks: { range: fromZero }, usd: { range: fromZero } },
    series: [
      { label: "Day", value: (u, v) => (v == null ? "—" : new Date(v * 1000).toISOString().slice(0, 10)) },
      { label: "Impressions", scale: "count", stroke: accent, width: 2, fill: accentFill, value: (u, v) => (v == null ? "—" : fmtInt.format(v)) },
      { label: "Clicks", scale: "clicks", stroke: "#e07a1f", width: 2, value: (u, v) => (v == null ? "—" : fmtInt.format(v)) },
      { label: "Spend", scale: "usd", stroke: "#2e7d32", width: 2, dash: [6, 4], value: (u, v) => (v == null ? "—" : fmtUsd.format(v)) },
    ],
    axes: [
      { ...axis, values: (u, splits) => splits.map((s) => new Date(s * 1000).toISOString().slice(5, 10)) },
      { ...axis, scale: "count", size: 60, values: (u, splits) => splits.map((s) => fmtInt.format(s)) },
      { ...axis, scale: "usd", side: 1, size: 70, grid: { show: false }, values: (u, splits) => splits.map(usdAxis) },
    ],
  };
  const plot = new uPlot(opts, data, el);
  // Until the cursor moves over the chart, the legend shows the latest day.
  plot.setLegend({ idx: xs.length - 1 });
  new ResizeObserver(() => {
    plot.setSize({ width: Math.max(300, el.clientWidth), height: 280 });
    plot.setLegend({ idx: xs.length - 1 });
  }).observe(el);
}

// --- small conveniences ------------------------------------------------------------
function bindConfirm(form) {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
}

function init(root = document) {
  root.querySelectorAll("form[data-preview-form]").forEach(bindPreview);
  root.querySelectorAll("[data-counter][maxlength]").forEach(bindCounter);
  root.querySelectorAll("[data-chart]").forEach(bindChart);
  root.querySelectorAll("form[data-confirm]").forEach(bindConfirm);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => init());
else init();
