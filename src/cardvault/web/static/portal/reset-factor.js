// The second step of a passcode reset (no inline script: the CSP forbids it): on the factor
// page (#key-form) the security key answers this reset's challenge. The push page's waiting
// is /static/ui/push-wait.js, shared with the vRA Manager.
"use strict";
(function () {
  async function call(url, init) {
    const response = await fetch(url, Object.assign({ credentials: "same-origin", cache: "no-store" }, init));
    const data = await response.json().catch(function () { return {}; });
    if (!response.ok) {
      const error = new Error([data.detail || data.title, data.remedy].filter(Boolean).join(" ") ||
                              "The service refused the request.");
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function postJSON(url, body, csrf) {
    return call(url, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    });
  }

  // --- the security key ------------------------------------------------------------------
  const keyForm = document.getElementById("key-form");
  if (keyForm) {
    document.getElementById("key-section").hidden = false;
    const status = document.getElementById("key-status");
    const errorBox = document.getElementById("key-error");
    const errorText = document.getElementById("key-error-text");
    const button = document.getElementById("f-key");

    function explain(err) {
      if (err && err.name === "NotAllowedError")
        return "The security key was not used: it was cancelled, timed out, or is not registered for your card. Press the button and touch your key again.";
      if (err && err.name === "SecurityError") return "This page's web address cannot use security keys.";
      return (err && err.message) || "The security key could not be used.";
    }

    function showError(message) {
      errorText.textContent = message;
      errorBox.hidden = false;
      errorBox.focus();
      status.textContent = "";
      button.disabled = false;
    }

    keyForm.addEventListener("submit", async function (event) {
      event.preventDefault();
      errorBox.hidden = true;
      if (!window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) {
        showError("This browser cannot use security keys. Use another browser, or another way on this page.");
        return;
      }
      button.disabled = true;
      try {
        const csrf = keyForm.dataset.csrf;
        const options = await postJSON(keyForm.dataset.options, {}, csrf);
        status.textContent = "Touch your security key now.";
        const credential = await navigator.credentials.get({
          publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options.publicKey),
        });
        status.textContent = "Checking the key…";
        const result = await postJSON(keyForm.dataset.answer, { credential: credential.toJSON() }, csrf);
        window.location.assign(result.next);
      } catch (err) {
        showError(explain(err));
      }
    });
  }
})();
