// The second step of a passcode reset (no inline script: the CSP forbids it): on the factor
// page (#key-form) the security key answers this reset's challenge, through the calls of
// /static/ui/security-key.js (loaded first). The push page's waiting is /static/ui/push-wait.js,
// shared with the vRA Manager.
"use strict";
(function () {
  const keyForm = document.getElementById("key-form");
  if (!keyForm) return;
  const key = window.cardvaultKey;
  document.getElementById("key-section").hidden = false;
  const button = document.getElementById("f-key");
  const box = key.errorBox("key", button);

  keyForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    box.hide();
    if (!window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) {
      box.show("This browser cannot use security keys. Use another browser, or another way on this page.");
      return;
    }
    button.disabled = true;
    try {
      const csrf = keyForm.dataset.csrf;
      const options = await key.postJSON(keyForm.dataset.options, {}, csrf);
      box.status.textContent = "Touch your security key now.";
      const credential = await key.sign(options.publicKey);
      box.status.textContent = "Checking the key…";
      const result = await key.postJSON(keyForm.dataset.answer, { credential: credential }, csrf);
      window.location.assign(result.next);
    } catch (err) {
      box.show(key.explain(err,
        "The security key was not used: it was cancelled, timed out, or is not registered for your card. Press the button and touch your key again.",
        "The security key could not be used."));
    }
  });
})();
