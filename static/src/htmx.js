// htmx for forms and dashboard panels that update in place.
import htmx from "htmx.org";

window.htmx = htmx;
document.body.addEventListener("htmx:configRequest", (event) => {
  const token = document.querySelector("meta[name=csrf-token]")?.content;
  if (token) event.detail.headers["X-CSRFToken"] = token;
});
