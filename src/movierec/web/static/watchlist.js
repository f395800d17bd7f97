// "Want to see" without a page load: the watchlist forms are sent with fetch and the
// button flips in place. Without this file the forms post and come back (303).
(() => {
  "use strict";

  const live = document.createElement("p");
  live.className = "visually-hidden";
  live.setAttribute("role", "status");
  document.body.appendChild(live);

  const show = (form, on) => {
    form.action = on ? form.dataset.remove : form.dataset.add;
    const button = form.querySelector("button");
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.classList.toggle("on", on);
    const mark = form.querySelector("[data-watch-mark]");
    if (mark) mark.textContent = on ? "✓" : "+";
  };

  document.addEventListener("submit", async (event) => {
    const form = event.target.closest("[data-watch-form]");
    if (!form) return;
    event.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) throw new Error(String(response.status));
      const answer = await response.json();
      // every button of this movie on the page (a pick may also be a similar movie)
      const movie = form.querySelector("[name=movie_id]").value;
      document.querySelectorAll("[data-watch-form]").forEach((other) => {
        if (other.querySelector("[name=movie_id]").value === movie) show(other, answer.on_watchlist);
      });
      live.textContent = answer.message;
    } catch (_error) {
      form.submit(); // let the server answer (and explain) the plain way
      return;
    } finally {
      button.disabled = false;
    }
  });
})();
