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
    update();
  }

  // A TMDB poster that fails to load is replaced by the drawn one.
  const fallBack = (img) => {
    if (img.dataset.fallback && img.src !== img.dataset.fallback) img.src = img.dataset.fallback;
  };
  document.querySelectorAll("img[data-fallback]").forEach((img) => {
    if (img.complete && img.naturalWidth === 0) fallBack(img);
    else img.addEventListener("error", () => fallBack(img), { once: true });
  });
  // No auto-submit anywhere: choosing a model or years by keyboard (arrow keys) only
  // changes the choice; the visitor confirms with "Update picks".
})();
