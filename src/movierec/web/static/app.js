// Progressive enhancement only: every page works without this file.
(() => {
  "use strict";

  const starText = (value) => {
    const stars = Number(value);
    if (!stars) return "";
    const whole = Math.floor(stars);
    const text = (whole ? String(whole) : "") + (stars % 1 ? "½" : "");
    return `${text} star${stars > 1 ? "s" : ""}`;
  };

  // The rating form: each group's "3½ stars" text, and one counter of all the visitor's
  // ratings (those stored for movies not on this page, plus the stars chosen here).
  const form = document.querySelector("[data-rate-form]");
  if (form) {
    const count = form.querySelector("[data-rated-count]");
    const elsewhere = count ? Number(count.dataset.ratedElsewhere || 0) : 0;
    const update = () => {
      let rated = elsewhere;
      form.querySelectorAll("[data-rating]").forEach((group) => {
        const checked = group.querySelector("input:checked");
        const value = checked ? checked.value : "0";
        if (Number(value) > 0) rated += 1;
        const label = group.querySelector("[data-rating-value]");
        if (label) label.textContent = starText(value);
      });
      if (count) {
        count.textContent = rated
          ? `You have rated ${rated} movie${rated > 1 ? "s" : ""}`
          : "Rate at least one movie you have seen";
      }
    };
    form.addEventListener("change", update);
    keepUnsent(form, update);
    update();
    keepFocusAboveBar(form);
  }

  chipsAsOneTabStop();
  seenFormsNeedStars();
  hideInPlace();

  // A TMDB poster that fails to load is replaced by the drawn one.
  const fallBack = (img) => {
    if (img.dataset.fallback && img.src !== img.dataset.fallback) img.src = img.dataset.fallback;
  };
  document.querySelectorAll("img[data-fallback]").forEach((img) => {
    if (img.complete && img.naturalWidth === 0) fallBack(img);
    else img.addEventListener("error", () => fallBack(img), { once: true });
  });
  // Unsent stars survive leaving the page (a genre chip, a header link, "Rate more"):
  // each change is kept in sessionStorage, put back on the cards when the visitor comes
  // back, and sent with the next submit (movies not on this page as hidden fields).
  function keepUnsent(form, update) {
    const KEY = "movierec-unsent";
    const load = () => {
      try {
        return JSON.parse(sessionStorage.getItem(KEY) || "{}") || {};
      } catch (_) {
        return {};
      }
    };
    const store = (value) => {
      try {
        if (Object.keys(value).length) sessionStorage.setItem(KEY, JSON.stringify(value));
        else sessionStorage.removeItem(KEY);
      } catch (_) {
        /* storage off: stars are kept only until the page is left */
      }
    };
    const unsent = load();
    Object.entries(unsent).forEach(([movie, value]) => {
      if (!/^[0-9]{1,9}$/.test(movie) || !/^[0-9](\.[05])?$/.test(String(value))) return;
      const input = form.querySelector(`input[name="rating-${movie}"][value="${value}"]`);
      if (input) {
        input.checked = true;
      } else if (!form.querySelector(`[name="rating-${movie}"]`)) {
        const field = document.createElement("input");
        field.type = "hidden";
        field.name = `rating-${movie}`;
        field.value = value;
        field.dataset.unsent = "";
        form.appendChild(field);
      }
    });
    form.addEventListener("change", (event) => {
      const input = event.target;
      const match = /^rating-([0-9]{1,9})$/.exec(input.name || "");
      if (!match) return;
      if (input.defaultChecked) delete unsent[match[1]];
      else unsent[match[1]] = input.value;
      store(unsent);
    });
    form.addEventListener("submit", () => store({}));
    if (Object.keys(unsent).length) update();
  }

  // The sticky bar never hides the focused control: scroll it into the band above.
  function keepFocusAboveBar(form) {
    const bar = form.querySelector(".finish");
    if (!bar) return;
    form.addEventListener("focusin", (event) => {
      // controls only (the list itself takes focus from "Skip to movies" and clicks)
      if (bar.contains(event.target) || !event.target.matches("input, a, button, select")) return;
      const box = event.target.getBoundingClientRect();
      const top = bar.getBoundingClientRect().top;
      if (box.bottom > top - 8) window.scrollBy(0, box.bottom - top + 16);
    });
  }

  // The genre chips: one tab stop, arrow keys (Home, End) move between them.
  function chipsAsOneTabStop() {
    const chips = Array.from(document.querySelectorAll(".genre-chips .chip"));
    if (!chips.length) return;
    const current = chips.find((c) => c.classList.contains("chip-current")) || chips[0];
    chips.forEach((chip) => { chip.tabIndex = chip === current ? 0 : -1; });
    const keys = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
    chips.forEach((chip, i) => chip.addEventListener("keydown", (event) => {
      let next = null;
      if (event.key in keys) next = (i + keys[event.key] + chips.length) % chips.length;
      else if (event.key === "Home") next = 0;
      else if (event.key === "End") next = chips.length - 1;
      if (next === null) return;
      event.preventDefault();
      chips.forEach((c) => { c.tabIndex = -1; });
      chips[next].tabIndex = 0;
      chips[next].focus();
    }));
  }

  // "Seen it? Rate it" with no star chosen says so instead of sending nothing.
  function seenFormsNeedStars() {
    document.querySelectorAll("[data-seen-form]").forEach((seen) => {
      const hint = seen.querySelector("[data-seen-hint]");
      seen.addEventListener("submit", (event) => {
        if (seen.querySelector(".stars input:checked")) return;
        event.preventDefault();
        if (hint) hint.hidden = false;
        const first = seen.querySelector(".stars input");
        if (first) first.focus();
      });
      seen.addEventListener("change", () => { if (hint) hint.hidden = true; });
    });
  }

  // "Not interested" hides the pick in place, with "Undo" for a few seconds.
  function hideInPlace() {
    const UNDO_SECONDS = 8;
    const post = (action, data) => fetch(action, {
      method: "POST",
      body: data,
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    }).then((r) => {
      if (!r.ok) throw new Error(String(r.status));
      return r.json();
    });
    document.querySelectorAll("[data-hide-form]").forEach((hide) => {
      hide.addEventListener("submit", (event) => {
        event.preventDefault();
        const card = hide.closest("li.result");
        const data = new FormData(hide);
        post(hide.action, data).then((answer) => {
          const kept = Array.from(card.childNodes);
          const note = document.createElement("div");
          note.className = "notice pick-notice";
          note.setAttribute("role", "status");
          const text = document.createElement("span");
          text.textContent = `Hidden: ${answer.title}. We will not suggest it again.`;
          const undo = document.createElement("button");
          undo.type = "button";
          undo.className = "button small-button";
          undo.textContent = "Undo";
          undo.setAttribute("aria-label", `Undo hiding ${answer.title}`);
          note.append(text, " ", undo);
          card.classList.add("hidden-pick");
          card.replaceChildren(note);
          undo.focus();
          const timer = window.setTimeout(() => {
            undo.remove();
            text.textContent = `Hidden: ${answer.title}. Unhide it from My ratings, Hidden.`;
          }, UNDO_SECONDS * 1000);
          undo.addEventListener("click", () => {
            window.clearTimeout(timer);
            const back = new FormData();
            back.append("csrf_token", data.get("csrf_token"));
            back.append("movie_id", data.get("movie_id"));
            post(hide.dataset.unhide, back).then(() => {
              card.classList.remove("hidden-pick");
              card.replaceChildren(...kept);
              const again = card.querySelector("[data-hide-form] button");
              if (again) again.focus();
            }).catch(() => { text.textContent = "Could not undo; reload the page."; });
          });
        }).catch(() => hide.submit());
      });
    });
  }

  // No auto-submit anywhere: choosing a model or years by keyboard (arrow keys) only
  // changes the choice; the visitor confirms with "Update picks".
})();
