// Signing in to the vRA Manager with a FIDO2 security key (no inline script: the CSP forbids it).
//  - sign-in page (#key-form): the key first; the proof of its verified answer is posted with
//    the form, and the next page asks for the passcode;
//  - code page (#key-factor-form): after the passcode, the key answers the challenge the
//    sign-in is waiting for, instead of a code from the authenticator app.
"use strict";
(function () {
  function explain(err) {
    if (err && err.name === "NotAllowedError")
      return "The security key was not used: it was cancelled, timed out, or is not registered here. Press the button and touch your key again.";
    if (err && err.name === "SecurityError") return "This page's web address cannot use security keys.";
    return (err && err.message) || "The security key could not be used.";
  }

  async function call(url, init) {
    const response = await fetch(url, Object.assign({ credentials: "same-origin" }, init));
    const data = await response.json().catch(function () { return {}; });
    if (!response.ok) throw new Error(data.detail || data.title || "The service refused the request.");
    return data;
  }

  function postJSON(url, body, csrf) {
    const headers = { "Content-Type": "application/json" };
    if (csrf) headers["X-CSRF-Token"] = csrf;
    return call(url, { method: "POST", headers: headers, body: JSON.stringify(body) });
  }

  async function useKey(publicKey) {
    const credential = await navigator.credentials.get({
      publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(publicKey),
    });
    return credential.toJSON();
  }

  // --- the sign-in page: key first, then the passcode -----------------------------------
  const keyForm = document.getElementById("key-form");
  if (keyForm) {
    const status = document.getElementById("key-status");
    const proof = document.getElementById("f-key");
    keyForm.addEventListener("submit", async function (event) {
      if (proof.value) return; // the key has answered: let the form go
      event.preventDefault();
      if (!window.PublicKeyCredential) {
        status.textContent = "This browser cannot use security keys.";
        return;
      }
      const button = document.getElementById("key-button");
      button.disabled = true;
      try {
        status.textContent = "Touch your security key now.";
        const begun = await postJSON(keyForm.dataset.begin, {});
        const credential = await useKey(begun.publicKey);
        status.textContent = "Checking the key…";
        const verified = await postJSON(keyForm.dataset.complete,
                                        { ceremony_id: begun.ceremony_id, credential: credential });
        proof.value = verified.proof;
        status.textContent = "Security key “" + verified.key_nickname + "” accepted.";
        keyForm.submit();
      } catch (err) {
        status.textContent = explain(err);
        button.disabled = false;
      }
    });
  }

  // --- the code page: the key as the second factor --------------------------------------
  const factorForm = document.getElementById("key-factor-form");
  if (factorForm) {
    const status = document.getElementById("key-factor-status");
    const errorBox = document.getElementById("key-factor-error");
    const errorText = document.getElementById("key-factor-error-text");
    const button = document.getElementById("key-factor-button");
    factorForm.addEventListener("submit", async function (event) {
      event.preventDefault();
      errorBox.hidden = true;
      button.disabled = true;
      try {
        status.textContent = "Touch your security key now.";
        const options = await call(factorForm.dataset.url, { method: "GET" });
        const credential = await useKey(options.publicKey);
        status.textContent = "Checking the key…";
        const result = await postJSON(factorForm.dataset.url, { credential: credential },
                                      factorForm.dataset.csrf);
        window.location.assign(result.next);
      } catch (err) {
        errorText.textContent = explain(err);
        errorBox.hidden = false;
        errorBox.focus();
        status.textContent = "";
        button.disabled = false;
      }
    });
  }
})();
