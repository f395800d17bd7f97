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

  const form = document.querySelector("[data-rate-form]");
  if (form) {
    const count = form.querySelector("[data-rated-count]");
    const update = () => {
      let rated = 0;
      form.querySelectorAll("[data-rating]").forEach((group) => {
        const checked = group.querySelector("input:checked");
        const value = checked ? checked.value : "0";
        if (Number(value) > 0) rated += 1;
        const label = group.querySelector("[data-rating-value]");
        if (label) label.textContent = starText(value);
      });
      if (count) {
        count.textContent = rated
          ? `${rated} movie${rated > 1 ? "s" : ""} rated on this page`
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

  // Results page: changing the model or years updates the picks at once.
  document.querySelectorAll("form[data-autosubmit]").forEach((controls) => {
    controls.addEventListener("change", () => controls.requestSubmit());
  });
})();
