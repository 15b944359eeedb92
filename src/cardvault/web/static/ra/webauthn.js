// Registers a FIDO2 security key for a holder from the RA's browser (WebAuthn §7.1).
// Same-origin JSON calls with the page's CSRF token; no inline script (the CSP forbids it).
"use strict";
(function () {
  const form = document.getElementById("fido2-form");
  if (!form) return;
  const status = document.getElementById("fido2-status");
  const errorBox = document.getElementById("fido2-error");
  const errorText = document.getElementById("fido2-error-text");
  const button = document.getElementById("fido2-register");

  function showError(message) {
    errorText.textContent = message;
    errorBox.hidden = false;
    errorBox.focus();
    status.textContent = "";
    button.disabled = false;
  }

  async function post(url, body) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": form.dataset.csrf },
      body: JSON.stringify(body || {}),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.detail || data.title || "The service refused the request.");
    return data;
  }

  function explain(err) {
    if (err && err.name === "NotAllowedError")
      return "The security key was not used: the request was cancelled or timed out. Press the button and touch the key again.";
    if (err && err.name === "InvalidStateError")
      return "This security key is already registered for this card.";
    if (err && err.name === "SecurityError")
      return "This page's web address cannot use security keys.";
    return (err && err.message) || "The security key could not be registered.";
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    errorBox.hidden = true;
    const nickname = document.getElementById("f-nickname").value.trim();
    if (!nickname) return showError("Give the key a name, like 'Blue YubiKey'.");
    if (!window.PublicKeyCredential) return showError("This browser cannot use security keys.");
    button.disabled = true;
    try {
      status.textContent = "Touch the security key now.";
      const options = await post(form.dataset.begin);
      const credential = await navigator.credentials.create({
        publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey),
      });
      status.textContent = "Checking the key…";
      const result = await post(form.dataset.complete, { credential: credential.toJSON(), nickname: nickname });
      status.textContent = "Registered.";
      window.location.assign(result.next);
    } catch (err) {
      showError(explain(err));
    }
  });
})();
