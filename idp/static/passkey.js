// Passkeys (WebAuthn). The login page: the iTSCOM ID field's autofill offers
// passkeys (conditional mediation) and 「パスキーでログイン」 asks for one; the
// factor page's 「パスキーで確認」 asks for one of the held account's; the
// account page's enrolment: 「パスキーを作成する」 makes one. The server's
// options come as JSON, the browser's answer goes back in a form's hidden
// field, so every outcome is an ordinary page. Without passkeys in the
// browser nothing shows and the password form works as before.
(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  function bytes(text) {
    var binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4));
    var out = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
    return out.buffer;
  }
  function text(buffer) {
    var view = new Uint8Array(buffer), binary = "";
    for (var i = 0; i < view.length; i++) binary += String.fromCharCode(view[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function withIds(list) {
    return (list || []).map(function (c) { return Object.assign({}, c, { id: bytes(c.id) }); });
  }
  // Chromium parses the JSON options and serialises the answer itself; the
  // helpers above are for browsers that do not yet.
  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    return Object.assign({}, json, { challenge: bytes(json.challenge), allowCredentials: withIds(json.allowCredentials) });
  }
  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    return Object.assign({}, json, { challenge: bytes(json.challenge), user: Object.assign({}, json.user, { id: bytes(json.user.id) }),
                                     excludeCredentials: withIds(json.excludeCredentials) });
  }
  function answer(credential) {
    if (credential.toJSON) return JSON.stringify(credential.toJSON());
    var r = credential.response, out = { id: credential.id, rawId: text(credential.rawId), type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment, clientExtensionResults: credential.getClientExtensionResults(),
      response: { clientDataJSON: text(r.clientDataJSON) } };
    if (r.attestationObject) {
      out.response.attestationObject = text(r.attestationObject);
      out.response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      out.response.authenticatorData = text(r.authenticatorData);
      out.response.signature = text(r.signature);
      if (r.userHandle) out.response.userHandle = text(r.userHandle);
    }
    return JSON.stringify(out);
  }
  function send(form, credential) {
    form.elements.credential.value = answer(credential);
    form.submit();
  }
  function show(status, message) {
    status.textContent = message;
    status.hidden = false;
  }

  // The login page.
  var login = document.getElementById("passkey-login");
  if (login) {
    var button = document.getElementById("passkey-button");
    var status = document.getElementById("passkey-status");
    var waiting = null;  // the autofill's request, aborted before the button's
    var ask = function (mediation) {
      var controller = new AbortController();
      return fetch(login.dataset.options, { method: "POST", credentials: "same-origin",
                                            headers: { "X-CSRFToken": login.elements.csrf_token.value } })
        .then(function (response) {
          if (!response.ok) throw new Error("options: " + response.status);
          return response.json();
        })
        .then(function (json) {
          var request = { publicKey: requestOptions(json), signal: controller.signal };
          if (mediation) request.mediation = mediation;
          if (mediation) waiting = controller;
          return navigator.credentials.get(request);
        })
        .then(function (credential) { if (credential) send(login, credential); });
    };
    var autofill = function () {
      if (!PublicKeyCredential.isConditionalMediationAvailable) return;
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (available) ask("conditional").catch(function () {});
      });
    };
    login.hidden = false;
    button.addEventListener("click", function () {
      if (waiting) { waiting.abort(); waiting = null; }
      status.hidden = true;
      ask(null).catch(function (error) {
        if (error.name !== "AbortError") show(status, login.dataset.failed);
        autofill();
      });
    });
    autofill();
  }

  // The factor page (2段階認証) of a password sign-in: 「パスキーで確認」 asks
  // for one of the held account's passkeys; the account page's 2段階認証の
  // 解除 likewise for the customer's own.
  var factor = document.getElementById("passkey-factor");
  if (factor) {
    var factorStatus = document.getElementById("passkey-status");
    factor.hidden = false;
    document.getElementById("passkey-button").addEventListener("click", function () {
      factorStatus.hidden = true;
      fetch(factor.dataset.options, { method: "POST", credentials: "same-origin",
                                      headers: { "X-CSRFToken": factor.elements.csrf_token.value } })
        .then(function (response) {
          if (!response.ok) throw new Error("options: " + response.status);
          return response.json();
        })
        .then(function (json) { return navigator.credentials.get({ publicKey: requestOptions(json) }); })
        .then(function (credential) { if (credential) send(factor, credential); })
        .catch(function () { show(factorStatus, factor.dataset.failed); });
    });
  }

  // The account page's enrolment.
  var enrol = document.getElementById("passkey-enrol");
  if (enrol) {
    var create = document.getElementById("passkey-create");
    var enrolStatus = document.getElementById("passkey-status");
    create.hidden = false;
    create.addEventListener("click", function () {
      enrolStatus.hidden = true;
      navigator.credentials.create({ publicKey: creationOptions(JSON.parse(enrol.dataset.options)) })
        .then(function (credential) { send(enrol, credential); })
        .catch(function () { show(enrolStatus, enrol.dataset.failed); });
    });
  }
})();
