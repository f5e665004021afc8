// The colour theme: the system's (default), light or dark. Loaded in <head> as a classic
// script so the stored choice applies before the first paint (no flash of the other
// theme). The CSS follows `color-scheme` through light-dark(); the code-highlighting
// stylesheets carry a media query per scheme, rewritten here to follow the choice.
const KEY = "lhama-theme";
const CHOICES = ["system", "light", "dark"];
const LABELS = { system: "Theme: system", light: "Theme: light", dark: "Theme: dark" };

function stored() {
  try {
    const value = localStorage.getItem(KEY);
    return CHOICES.includes(value) ? value : "system";
  } catch {
    return "system"; // storage disabled: follow the system
  }
}

function apply(choice) {
  const root = document.documentElement;
  if (choice === "system") delete root.dataset.theme;
  else root.dataset.theme = choice;
  for (const link of document.querySelectorAll("link[data-scheme]")) {
    const scheme = link.dataset.scheme;
    link.media = choice === "system" ? `(prefers-color-scheme: ${scheme})` : choice === scheme ? "all" : "not all";
  }
  const button = document.querySelector("[data-theme-switch]");
  if (button) {
    button.textContent = LABELS[choice];
    const next = CHOICES[(CHOICES.indexOf(choice) + 1) % CHOICES.length];
    button.setAttribute("aria-label", `${LABELS[choice]}. Switch to ${next}.`);
  }
}

apply(stored());
document.addEventListener("DOMContentLoaded", () => {
  apply(stored()); // the stylesheet links and the button exist now
  const button = document.querySelector("[data-theme-switch]");
  if (!button) return;
  button.hidden = false;
  button.addEventListener("click", () => {
    const next = CHOICES[(CHOICES.indexOf(stored()) + 1) % CHOICES.length];
    try {
      localStorage.setItem(KEY, next);
    } catch {
      /* not stored: applies to this page only */
    }
    apply(next);
  });
});
