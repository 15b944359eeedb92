// Show / Hide buttons for secret fields (the answers to security questions), in the manner
// of the GOV.UK password input. The buttons come hidden: without JavaScript the fields
// stay password fields and work as they are. A field is hidden again when its form is sent
// (so the browser never keeps it as plain text) and when the page comes back from history.
(function () {
  "use strict";

  function setUp(button) {
    var input = document.getElementById(button.getAttribute("aria-controls"));
    if (!input) {
      return;
    }
    var what = button.getAttribute("data-reveal");
    var status = document.createElement("div");
    status.className = "visually-hidden";
    status.setAttribute("aria-live", "polite");
    button.parentNode.appendChild(status);

    function show(visible, announce) {
      input.type = visible ? "text" : "password";
      button.textContent = visible ? "Hide" : "Show";
      button.setAttribute("aria-label", (visible ? "Hide " : "Show ") + what);
      if (announce) {
        status.textContent = "Your " + what + " is " + (visible ? "visible" : "hidden");
      }
    }

    button.addEventListener("click", function () {
      show(input.type === "password", true);
    });
    if (input.form) {
      input.form.addEventListener("submit", function () {
        show(false, false);
      });
    }
    window.addEventListener("pageshow", function (event) {
      if (event.persisted) {
        show(false, false);
      }
    });
    button.hidden = false;
  }

  document.querySelectorAll("button[data-reveal]").forEach(setUp);
})();
