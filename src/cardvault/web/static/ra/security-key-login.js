// Signing in to the vRA Manager with a FIDO2 security key (no inline script: the CSP forbids it;
// the calls are /static/ui/security-key.js's, loaded first).
//  - sign-in page (#key-form): the key first; the proof of its verified answer is posted with
//    the form, and the next page asks for the passcode;
//  - code page (#key-factor-form): after the passcode, the key answers the challenge the
//    sign-in is waiting for, instead of a code from the authenticator app.
"use strict";
(function () {
  const key = window.cardvaultKey;

  function explain(err) {
    return key.explain(err,
      "The security key was not used: it was cancelled, timed out, or is not registered here. Press the button and touch your key again.",
      "The security key could not be used.");
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
        const begun = await key.postJSON(keyForm.dataset.begin, {});
        const credential = await key.sign(begun.publicKey);
        status.textContent = "Checking the key…";
        const verified = await key.postJSON(keyForm.dataset.complete,
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
    const button = document.getElementById("key-factor-button");
    const box = key.errorBox("key-factor", button);
    factorForm.addEventListener("submit", async function (event) {
      event.preventDefault();
      box.hide();
      button.disabled = true;
      try {
        box.status.textContent = "Touch your security key now.";
        const options = await key.call(factorForm.dataset.url, { method: "GET" });
        const credential = await key.sign(options.publicKey);
        box.status.textContent = "Checking the key…";
        const result = await key.postJSON(factorForm.dataset.url, { credential: credential },
                                          factorForm.dataset.csrf);
        window.location.assign(result.next);
      } catch (err) {
        box.show(explain(err));
      }
    });
  }
})();
