/*
 * cardvault in the browser: security keys (WebAuthn) and the encrypted sign-in API.
 *
 * A plain script (no build step, no inline code: it runs under a strict
 * Content-Security-Policy) that defines window.cardvault. Pages of the service (the
 * vRA Manager, the test page at /webauthn/test) call it:
 *
 *   cardvault.signInWithKey({organisation, passcode})    key first, then the passcode
 *   cardvault.signIn({email | adAccount, passcode})      passcode, then key or code
 *   cardvault.registerKey({token, serial, nickname, residentKey})   an RA registers a key
 *
 * Passcodes travel only inside a JWE (RSA-OAEP-256 + A256GCM to the service's transport
 * key, docs/protocols/webauthn.md); the answer comes back under a fresh response key.
 */
(function () {
  "use strict";

  const JOSE = "application/jose";

  // --- base64url ---------------------------------------------------------------------

  function b64url(buffer) {
    const bytes = new Uint8Array(buffer);
    let text = "";
    for (let i = 0; i < bytes.length; i += 1) text += String.fromCharCode(bytes[i]);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function unb64url(text) {
    const padded = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    const raw = atob(padded);
    const bytes = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
    return bytes.buffer;
  }

  const utf8 = new TextEncoder();
  const utf8Decode = new TextDecoder();

  // --- errors ------------------------------------------------------------------------

  class CardvaultError extends Error {
    constructor(message, code, remedy) {
      super(message);
      this.name = "CardvaultError";
      this.code = code || "error";
      this.remedy = remedy || null;
    }
  }

  async function problem(response) {
    let body = {};
    try {
      body = await response.json();
    } catch (ignored) {
      body = {};
    }
    return new CardvaultError(
      body.detail || body.title || "The service answered " + response.status + ".",
      body.code || "http_" + response.status,
      body.remedy
    );
  }

  /** What the browser says when the key is not used, in words a person can act on. */
  function keyError(error) {
    const names = {
      NotAllowedError: ["The security key was not used (cancelled, timed out, or no registered key).",
                        "webauthn_not_allowed"],
      InvalidStateError: ["This security key is already registered.", "webauthn_credential_exists"],
      SecurityError: ["This page's address may not use security keys for this service.",
                      "webauthn_security"],
      NotSupportedError: ["This security key cannot do what is asked.", "webauthn_not_supported"],
      AbortError: ["The security key request was cancelled.", "webauthn_aborted"],
    };
    const known = names[error && error.name];
    if (known) return new CardvaultError(known[0], known[1]);
    return error instanceof Error ? error : new CardvaultError(String(error));
  }

  // --- HTTP --------------------------------------------------------------------------

  async function postJSON(path, body, token) {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    const response = await fetch(path, {
      method: "POST", headers: headers, body: JSON.stringify(body), credentials: "same-origin",
    });
    if (!response.ok) throw await problem(response);
    return response.json();
  }

  // --- WebAuthn JSON <-> the browser's binary forms --------------------------------

  function creationOptions(json) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    const options = Object.assign({}, json);
    options.challenge = unb64url(json.challenge);
    options.user = Object.assign({}, json.user, { id: unb64url(json.user.id) });
    options.excludeCredentials = (json.excludeCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: unb64url(c.id) });
    });
    return options;
  }

  function requestOptions(json) {
    if (window.PublicKeyCredential && PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    const options = Object.assign({}, json);
    options.challenge = unb64url(json.challenge);
    options.allowCredentials = (json.allowCredentials || []).map(function (c) {
      return Object.assign({}, c, { id: unb64url(c.id) });
    });
    return options;
  }

  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") return credential.toJSON();
    const r = credential.response;
    const out = {
      id: credential.id,
      rawId: b64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: b64url(r.clientDataJSON) },
    };
    if (r.attestationObject) {
      out.response.attestationObject = b64url(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = b64url(r.authenticatorData);
      out.response.signature = b64url(r.signature);
      out.response.userHandle = r.userHandle ? b64url(r.userHandle) : null;
    }
    return out;
  }

  async function useKeyForAssertion(publicKey) {
    try {
      return credentialJSON(await navigator.credentials.get({ publicKey: requestOptions(publicKey) }));
    } catch (error) {
      throw keyError(error);
    }
  }

  async function useKeyForRegistration(publicKey) {
    try {
      return credentialJSON(
        await navigator.credentials.create({ publicKey: creationOptions(publicKey) })
      );
    } catch (error) {
      throw keyError(error);
    }
  }

  // --- the JWE envelope (compact, RSA-OAEP-256 + A256GCM; answers dir + A256GCM) ----

  let transportKey = null;

  async function serviceKey() {
    if (transportKey) return transportKey;
    const response = await fetch("/.well-known/jwks.json", { credentials: "same-origin" });
    if (!response.ok) throw await problem(response);
    const jwk = (await response.json()).keys.find(function (k) { return k.kty === "RSA"; });
    if (!jwk) throw new CardvaultError("The service publishes no transport key.");
    const key = await crypto.subtle.importKey(
      "jwk", { kty: "RSA", n: jwk.n, e: jwk.e, alg: "RSA-OAEP-256", ext: true },
      { name: "RSA-OAEP", hash: "SHA-256" }, false, ["encrypt"]
    );
    transportKey = { key: key, kid: jwk.kid };
    return transportKey;
  }

  async function seal(claims) {
    const service = await serviceKey();
    const responseKey = crypto.getRandomValues(new Uint8Array(32));
    const now = Math.floor(Date.now() / 1000);
    const payload = Object.assign({}, claims, {
      jti: b64url(crypto.getRandomValues(new Uint8Array(16))),
      iat: now, exp: now + 60, rk: b64url(responseKey),
    });
    const header = b64url(utf8.encode(JSON.stringify(
      { alg: "RSA-OAEP-256", enc: "A256GCM", kid: service.kid }
    )));
    const cek = crypto.getRandomValues(new Uint8Array(32));
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const wrapped = await crypto.subtle.encrypt({ name: "RSA-OAEP" }, service.key, cek);
    const aes = await crypto.subtle.importKey("raw", cek, "AES-GCM", false, ["encrypt"]);
    cek.fill(0);
    const sealed = new Uint8Array(await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: iv, additionalData: utf8.encode(header), tagLength: 128 },
      aes, utf8.encode(JSON.stringify(payload))
    ));
    const body = sealed.slice(0, sealed.length - 16);
    const tag = sealed.slice(sealed.length - 16);
    const token = [header, b64url(wrapped), b64url(iv), b64url(body), b64url(tag)].join(".");
    return { token: token, responseKey: responseKey };
  }

  async function unseal(responseKey, token) {
    const parts = token.split(".");
    const header = JSON.parse(utf8Decode.decode(unb64url(parts[0])));
    if (parts.length !== 5 || header.alg !== "dir" || header.enc !== "A256GCM") {
      throw new CardvaultError("The service's answer is not in the expected form.");
    }
    const key = await crypto.subtle.importKey("raw", responseKey, "AES-GCM", false, ["decrypt"]);
    const joined = new Uint8Array(unb64url(parts[3]).byteLength + 16);
    joined.set(new Uint8Array(unb64url(parts[3])), 0);
    joined.set(new Uint8Array(unb64url(parts[4])), joined.length - 16);
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: unb64url(parts[2]), additionalData: utf8.encode(parts[0]),
        tagLength: 128 },
      key, joined
    );
    return JSON.parse(utf8Decode.decode(plain));
  }

  async function sealedCall(path, claims) {
    const request = await seal(claims);
    try {
      const response = await fetch(path, {
        method: "POST", headers: { "Content-Type": JOSE }, body: request.token,
        credentials: "same-origin",
      });
      if (!response.ok) throw await problem(response);
      return await unseal(request.responseKey, await response.text());
    } finally {
      request.responseKey.fill(0);
    }
  }

  // --- what pages call ---------------------------------------------------------------

  /** Key first (no email typed), then the passcode: the key names the card. */
  async function signInWithKey(input) {
    const begun = await postJSON("/api/v1/webauthn/assertion/begin",
                                 { organisation: input.organisation || null });
    const credential = await useKeyForAssertion(begun.publicKey);
    const verified = await postJSON("/api/v1/webauthn/assertion/complete",
                                    { ceremony_id: begun.ceremony_id, credential: credential });
    if (input.onKeyAccepted) input.onKeyAccepted(verified);
    const passcode = typeof input.passcode === "function" ? await input.passcode() : input.passcode;
    const result = await sealedCall("/api/v1/auth/login", {
      identifier: { kind: "fido2", value: verified.proof },
      passcode: passcode,
      purpose: input.purpose || "holder",
      organisation: verified.organisation,
      second_factor: { method: "fido2", proof: verified.proof },
    });
    return finished(result, verified.key_nickname);
  }

  /** Email or AD account and passcode, then the security key the service offers. */
  async function signIn(input) {
    const identifier = input.email ? { kind: "email", value: input.email }
                                   : { kind: "ad_account", value: input.adAccount };
    const result = await sealedCall("/api/v1/auth/login", {
      identifier: identifier, passcode: input.passcode, purpose: input.purpose || "holder",
      organisation: input.organisation || null,
    });
    if (result.session) return finished(result, null);
    const offer = (result.second_factors || []).find(function (f) { return f.method === "fido2"; });
    if (!offer) {
      const error = result.factor_error;
      throw new CardvaultError(error ? error.message : "No security key is registered for this card.",
                               error ? error.code : "no_security_key");
    }
    const credential = await useKeyForAssertion(offer.publicKey);
    const session = await sealedCall("/api/v1/auth/factor", {
      transaction_id: result.transaction_id,
      response: { method: "fido2", credential: credential },
    });
    return { session: session, sessionKey: result.session_key, keyNickname: null };
  }

  function finished(result, nickname) {
    if (!result.session) {
      const error = result.factor_error || { message: "The sign-in did not finish.", code: "error" };
      throw new CardvaultError(error.message, error.code);
    }
    return { session: result.session, sessionKey: result.session_key, keyNickname: nickname };
  }

  /** An RA (signed in, role chosen) registers the holder's key for a card. */
  async function registerKey(input) {
    const begun = await postJSON("/api/v1/webauthn/registration/begin",
                                 { serial: input.serial, resident_key: !!input.residentKey },
                                 input.token);
    const credential = await useKeyForRegistration(begun.publicKey);
    return postJSON("/api/v1/webauthn/registration/complete",
                    { ceremony_id: begun.ceremony_id, nickname: input.nickname,
                      credential: credential },
                    input.token);
  }

  window.cardvault = Object.freeze({
    CardvaultError: CardvaultError,
    signInWithKey: signInWithKey,
    signIn: signIn,
    registerKey: registerKey,
    sealedCall: sealedCall,
    b64url: b64url,
    unb64url: unb64url,
  });
})();
