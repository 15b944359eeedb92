/* The /webauthn/test page: wires its three forms to window.cardvault (no inline script). */
(function () {
  "use strict";

  function show(id, status, data) {
    const element = document.getElementById(id);
    element.textContent = typeof data === "string" ? data : JSON.stringify(data, null, 2);
    element.dataset.status = status;
  }

  function failure(id, error) {
    show(id, "error", { error: error.message, code: error.code || null, remedy: error.remedy || null });
  }

  function value(id) {
    return document.getElementById(id).value.trim();
  }

  function onSubmit(formId, resultId, action) {
    document.getElementById(formId).addEventListener("submit", async function (event) {
      event.preventDefault();
      show(resultId, "busy", "Working…");
      try {
        show(resultId, "ok", await action());
      } catch (error) {
        failure(resultId, error);
      }
    });
  }

  function sessionSummary(result) {
    return {
      signed_in: true,
      card_serial: result.session.card_serial,
      organisation: result.session.organisation,
      expires_at: result.session.expires_at,
      key: result.keyNickname,
    };
  }

  onSubmit("signin-key-form", "signin-key-result", async function () {
    const result = await window.cardvault.signInWithKey({
      organisation: value("signin-key-organisation") || null,
      passcode: document.getElementById("signin-key-passcode").value,
      onKeyAccepted: function (verified) {
        document.getElementById("signin-key-progress").textContent =
          "Security key “" + verified.key_nickname + "” accepted for " +
          verified.organisation_name + ".";
      },
    });
    return sessionSummary(result);
  });

  onSubmit("signin-email-form", "signin-email-result", async function () {
    return sessionSummary(await window.cardvault.signIn({
      email: value("signin-email"),
      passcode: document.getElementById("signin-email-passcode").value,
    }));
  });

  onSubmit("register-form", "register-result", function () {
    return window.cardvault.registerKey({
      token: value("register-token"),
      serial: value("register-serial"),
      nickname: value("register-nickname"),
      residentKey: document.getElementById("register-resident").checked,
    });
  });
})();
