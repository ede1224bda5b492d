// sekisho web UI: the two WebAuthn ceremonies. Adding a passkey (form[data-passkey-register])
// and a step-up before a decision acts (form[data-step-up]): ask the server for the options,
// let the browser and the authenticator answer, send the answer back. The server checks
// everything; this only carries the bytes and says what went wrong beside the button.
(function () {
  "use strict";

  function bytes(text) {  // base64url -> ArrayBuffer
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out.buffer;
  }

  function text(buffer) {  // ArrayBuffer -> base64url
    var view = new Uint8Array(buffer), raw = "";
    for (var i = 0; i < view.length; i++) { raw += String.fromCharCode(view[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function ids(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: bytes(c.id) }); });
  }

  // Browsers without PublicKeyCredential.parse*FromJSON / toJSON get the same by hand.
  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: bytes(json.challenge),
      user: Object.assign({}, json.user, { id: bytes(json.user.id) }),
      excludeCredentials: ids(json.excludeCredentials)
    });
  }

  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    return Object.assign({}, json, {
      challenge: bytes(json.challenge), allowCredentials: ids(json.allowCredentials)
    });
  }

  function answer(credential) {
    if (credential.toJSON) { return JSON.stringify(credential.toJSON()); }
    var r = credential.response, response = { clientDataJSON: text(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = text(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = text(r.authenticatorData);
      response.signature = text(r.signature);
      response.userHandle = r.userHandle ? text(r.userHandle) : null;
    }
    return JSON.stringify({
      id: credential.id, rawId: text(credential.rawId), type: credential.type,
      response: response, clientExtensionResults: credential.getClientExtensionResults()
    });
  }

  function post(form, url, body) {
    var csrf = form.querySelector("input[name=csrf]").value;
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {})
    }).then(function (res) {
      // A refusal before the ceremony's own (signed out, an expired form) is a page, not JSON.
      return res.json().catch(function () { return {}; }).then(function (data) {
        if (!res.ok) { throw new Error(data.error || ("the server answered " + res.status)); }
        return data;
      });
    });
  }

  function say(form, message) {
    var status = form.querySelector("[data-passkey-status]");
    if (!status) { return; }
    status.textContent = message;
    status.hidden = !message;
  }

  function why(error) {
    if (error && error.name === "NotAllowedError") {
      return "The passkey was not used (cancelled, timed out, or not available on this device).";
    }
    if (error && error.name === "SecurityError") {
      return "This browser refused passkeys for this address: open sekisho at its host name.";
    }
    return (error && error.message) || String(error);
  }

  function register(form) {
    if (form.dataset.rpId && window.location.hostname !== form.dataset.rpId) {
      return Promise.reject(new Error(
        "Passkeys for sekisho live at " + form.dataset.rpOrigin + ": open it there to add one."));
    }
    var name = form.querySelector("input[name=name]").value;
    return post(form, "/passkeys/options")
      .then(function (json) { return navigator.credentials.create({ publicKey: creationOptions(json) }); })
      .then(function (credential) {
        return post(form, "/passkeys/register", { credential: answer(credential), name: name });
      })
      .then(function () { window.location.reload(); });
  }

  function stepUp(form) {
    return post(form, "/step-up/passkey/options")
      .then(function (json) { return navigator.credentials.get({ publicKey: requestOptions(json) }); })
      .then(function (credential) { return post(form, "/step-up/passkey", { credential: answer(credential) }); })
      .then(function () { form.dataset.stepUp = ""; form.submit(); });
  }

  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    var ceremony = form.matches("[data-passkey-register]") ? register
      : (form.dataset.stepUp === "passkey" ? stepUp : null);
    if (!ceremony) { return; }
    evt.preventDefault();
    if (!window.PublicKeyCredential) { say(form, "This browser has no passkey support."); return; }
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    say(form, "");
    ceremony(form).catch(function (error) { say(form, why(error)); button.disabled = false; });
  });
})();
