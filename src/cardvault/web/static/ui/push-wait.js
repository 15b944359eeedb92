// A push page (#push-form; the vRA Manager's sign-in, the portal's reset), as a static file
// because the CSP forbids inline script: wait for the phone's answer at the form's
// data-status URL and continue by ourselves. Without this script the person chooses "I have
// approved it — continue". Each status endpoint answers only this browser's own push.
"use strict";
(function () {
  const form = document.getElementById("push-form");
  if (!form) return;
  const status = document.getElementById("push-status");
  const WAIT_SECONDS = 25;
  const MAX_POLLS = 40; // longer than any push lives

  async function state() {
    const response = await fetch(form.dataset.status + "?wait=" + WAIT_SECONDS,
                                 { credentials: "same-origin", cache: "no-store" });
    if (!response.ok) throw new Error("status " + response.status);
    return (await response.json()).status;
  }

  status.textContent = "Waiting for your phone…";
  (async function () {
    for (let i = 0; i < MAX_POLLS; i++) {
      let answer;
      try {
        answer = await state();
      } catch (err) {
        break;
      }
      if (answer !== "pending") {
        status.textContent = answer === "approved"
          ? "Approved on your phone. Continuing…"
          : "Your phone has answered. Continuing…";
        form.submit();
        return;
      }
    }
    status.textContent = "When you have approved the request on your phone, choose continue.";
  })();
})();
