// Registers a FIDO2 security key for a holder from the RA's browser (WebAuthn §7.1).
// Same-origin JSON calls with the page's CSRF token (/static/ui/security-key.js, loaded
// first); no inline script (the CSP forbids it).
"use strict";
(function () {
  const form = document.getElementById("fido2-form");
  if (!form) return;
  const key = window.cardvaultKey;
  const button = document.getElementById("fido2-register");
  const box = key.errorBox("fido2", button);

  function explain(err) {
    return key.explain(err,
      "The security key was not used: the request was cancelled or timed out. Press the button and touch the key again.",
      "The security key could not be registered.");
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    box.hide();
    const nickname = document.getElementById("f-nickname").value.trim();
    if (!nickname) return box.show("Give the key a name, like 'Blue YubiKey'.");
    if (!window.PublicKeyCredential) return box.show("This browser cannot use security keys.");
    button.disabled = true;
    try {
      box.status.textContent = "Touch the security key now.";
      const options = await key.postJSON(form.dataset.begin, {}, form.dataset.csrf);
      const credential = await navigator.credentials.create({
        publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options.publicKey),
      });
      box.status.textContent = "Checking the key…";
      const result = await key.postJSON(form.dataset.complete,
                                        { credential: credential.toJSON(), nickname: nickname },
                                        form.dataset.csrf);
      box.status.textContent = "Registered.";
      window.location.assign(result.next);
    } catch (err) {
      box.show(explain(err));
    }
  });
})();
