/* movierec search suggestions: the site search box as an ARIA 1.2 combobox.
   Without this script the box is a plain GET form to /search. Keys: Down/Up move through
   the suggestions, Enter opens the highlighted movie, Escape closes the list. */
(function () {
  "use strict";
  var DELAY = 150; // ms after the last keystroke before asking the API
  var form = document.querySelector("form.site-search");
  if (!form || !window.fetch) return;
  var input = form.querySelector("input[role=combobox]");
  var list = form.querySelector("[role=listbox]");
  var status = form.querySelector("[data-suggest-status]");
  var api = form.getAttribute("data-suggest");
  var movieUrl = form.getAttribute("data-movie-url").replace(/0$/, "");
  var timer = null, active = -1, items = [], asked = 0;

  function close() {
    list.hidden = true; list.innerHTML = ""; items = []; active = -1;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function highlight(index) {
    items.forEach(function (li, i) { li.setAttribute("aria-selected", i === index ? "true" : "false"); });
    active = index;
    if (index >= 0) {
      input.setAttribute("aria-activedescendant", items[index].id);
      items[index].scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function show(movies) {
    list.innerHTML = ""; items = []; active = -1;
    movies.forEach(function (m, i) {
      var li = document.createElement("li");
      li.id = "site-search-opt-" + i;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      li.dataset.href = movieUrl + m.movieId;
      var title = document.createElement("span");
      title.className = "suggestion-title";
      title.textContent = m.display_title;
      li.appendChild(title);
      if (m.year) {
        var year = document.createElement("span");
        year.className = "suggestion-year";
        year.textContent = " " + m.year;
        li.appendChild(year);
      }
      li.addEventListener("mousedown", function (e) { e.preventDefault(); });
      li.addEventListener("click", function () { window.location.href = li.dataset.href; });
      list.appendChild(li); items.push(li);
    });
    var open = items.length > 0;
    list.hidden = !open;
    input.setAttribute("aria-expanded", open ? "true" : "false");
    status.textContent = open ? items.length + " suggestions; use the arrow keys" : "No suggestions";
  }

  function ask() {
    var q = input.value.trim();
    if (q.length < 2) { close(); return; }
    var ticket = ++asked;
    fetch(api + "?limit=8&q=" + encodeURIComponent(q.slice(0, 200)), { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { movies: [] }; })
      .then(function (body) { if (ticket === asked) show(body.movies || []); })
      .catch(function () { close(); });
  }

  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(ask, DELAY);
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "ArrowDown" && items.length) {
      e.preventDefault(); highlight((active + 1) % items.length);
    } else if (e.key === "ArrowUp" && items.length) {
      e.preventDefault(); highlight(active <= 0 ? items.length - 1 : active - 1);
    } else if (e.key === "Enter" && active >= 0) {
      e.preventDefault(); window.location.href = items[active].dataset.href;
    } else if (e.key === "Escape") {
      if (!list.hidden) { e.preventDefault(); close(); }
    }
  });
  input.addEventListener("blur", function () { setTimeout(close, 100); });
})();
