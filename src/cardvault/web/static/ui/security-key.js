// What every page that uses a security key shares (no inline script: the CSP forbids it):
// same-origin JSON calls that turn a problem answer (RFC 9457) into an Error carrying its
// detail and remedy, a form's error box, and the words for the browser's own refusals.
// Load it before the page's script: deferred scripts run in the order they stand.
"use strict";
window.cardvaultKey = (function () {
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
    const headers = { "Content-Type": "application/json" };
    if (csrf) headers["X-CSRF-Token"] = csrf;
    return call(url, { method: "POST", headers: headers, body: JSON.stringify(body || {}) });
  }

  // The error box above a form (ids prefix-error, prefix-error-text, prefix-status): showing
  // a message moves the focus there and lets the person press the button again.
  function errorBox(prefix, button) {
    const box = document.getElementById(prefix + "-error");
    const text = document.getElementById(prefix + "-error-text");
    const status = document.getElementById(prefix + "-status");
    return {
      status: status,
      hide: function () { box.hidden = true; },
      show: function (message) {
        text.textContent = message;
        box.hidden = false;
        box.focus();
        status.textContent = "";
        button.disabled = false;
      },
    };
  }

  // notAllowed: what a cancelled or unknown key means on this page; fallback: anything else.
  function explain(err, notAllowed, fallback) {
    if (err && err.name === "NotAllowedError") return notAllowed;
    if (err && err.name === "InvalidStateError")
      return "This security key is already registered for this card.";
    if (err && err.name === "SecurityError") return "This page's web address cannot use security keys.";
    return (err && err.message) || fallback;
  }

  async function sign(publicKey) {
    const credential = await navigator.credentials.get({
      publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(publicKey),
    });
    return credential.toJSON();
  }

  return { call: call, postJSON: postJSON, errorBox: errorBox, explain: explain, sign: sign };
})();
