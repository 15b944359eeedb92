// The error summary's links, as GOV.UK's error summary does it: a link brings its field into
// view with the field's label (or, for radios and checkboxes, the question) above it, then
// focuses the field. Without this script the link still moves to the field and focuses it;
// the stylesheet's scroll-margin-top then leaves room above it for the label and message.
"use strict";
(function () {
  function anchorFor(input) {
    const fieldset = input.closest("fieldset");
    const legend = fieldset ? fieldset.querySelector("legend") : null;
    if (legend && (input.type === "radio" || input.type === "checkbox")) {
      // the question, if the field is still on screen below it; else the option's own label
      const gap = input.getBoundingClientRect().top - legend.getBoundingClientRect().top;
      if (gap < window.innerHeight * 0.75) return legend;
    }
    return (input.id && document.querySelector("label[for='" + CSS.escape(input.id) + "']")) || legend;
  }

  document.querySelectorAll(".error-summary a[href^='#']").forEach(function (link) {
    link.addEventListener("click", function (event) {
      const input = document.getElementById(decodeURIComponent(link.hash.slice(1)));
      if (!input) return;
      event.preventDefault();
      (anchorFor(input) || input).scrollIntoView({ block: "start" });
      input.focus({ preventScroll: true });
    });
  });
})();
