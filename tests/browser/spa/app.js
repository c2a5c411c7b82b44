// The SPA's code: only oidc-client-ts's public API, and fetch() for the
// calls an SPA makes itself with the access token. What it learns is shown
// on the page and kept in window.spa for the test to read.
"use strict";

const { UserManager, Log } = oidc;
Log.setLogger(console);
Log.setLevel(Log.WARN);

// DPoP (RFC 9449): the library keeps a non-extractable key in IndexedDB,
// binds the code to it (dpop_jkt) and proves it at the token endpoint.
const dpop = SPA_CONFIG.dpop ? { bind_authorization_code: true, store: new oidc.IndexedDbDPoPStore() } : undefined;

const manager = new UserManager({
  authority: SPA_CONFIG.authority,
  client_id: SPA_CONFIG.client_id,
  redirect_uri: location.origin + "/callback",
  post_logout_redirect_uri: location.origin + "/logged-out",
  silent_redirect_uri: location.origin + "/silent",  // renewal in a hidden frame (prompt=none)
  response_type: "code",  // with PKCE S256: the library's default
  scope: "openid profile email offline_access",
  // UserInfo after each sign-in and refresh, its sub checked against the ID
  // token's. Not with DPoP: the library's own UserInfo call (UserInfoService)
  // sends the token as "Bearer" without a proof, which a DPoP-bound token
  // must not be (RFC 9449 7.1); the app calls UserInfo itself below.
  loadUserInfo: !dpop,
  dpop,
  automaticSilentRenew: false,
});

const spa = (window.spa = { events: [], subjects: [], accessTokens: [] });
const show = (id, text) => { document.getElementById(id).textContent = text; };

function shown(user) {
  spa.user = user;
  spa.subjects.push(user.profile.sub);
  spa.accessTokens.push(user.access_token);
  show("email", user.profile.email || "");
  show("name", user.profile.name || "");
  show("sub", user.profile.sub);
}

// UserInfo as an SPA calls an API: its own fetch with the access token;
// with DPoP, a proof from the library's key, and once more with the
// server's nonce if it asks for one (RFC 9449 7.1, 9).
async function userinfo(user) {
  const endpoint = await manager.metadataService.getUserInfoEndpoint();
  const call = async (nonce) => fetch(endpoint, { headers: dpop
    ? { Authorization: "DPoP " + user.access_token, DPoP: await manager.dpopProof(endpoint, user, "GET", nonce) }
    : { Authorization: "Bearer " + user.access_token } });
  let response = await call();
  const nonce = response.headers.get("DPoP-Nonce");
  if (dpop && response.status === 401 && nonce) response = await call(nonce);
  const body = response.ok ? await response.json() : null;
  spa.userinfo = { status: response.status, body, challenge: response.headers.get("WWW-Authenticate") };
  show("userinfo", response.ok ? body.email : String(response.status));
  // Without the library's UserInfo call (DPoP) the profile has only the ID
  // token's claims: the app shows what UserInfo said.
  if (response.ok && !user.profile.email) {
    show("email", body.email);
    show("name", body.name);
  }
}

async function step(name, action) {
  show("status", name + "…");
  try {
    await action();
    spa.events.push(name);
    show("status", name + ": done");
  } catch (error) {
    spa.error = String(error && (error.stack || error.message) || error);
    spa.errorCode = error && error.error;  // an OAuth error the library read (ErrorResponse)
    show("error", spa.errorCode || spa.error);
    show("status", name + ": failed");
  }
}

document.getElementById("sign-in").onclick = () => step("sign-in", () => manager.signinRedirect());

document.getElementById("renew").onclick = () => step("renew", async () => {
  shown(await manager.signinSilent());  // with the refresh token: a POST to the token endpoint
  await userinfo(spa.user);
});

// Renewal without the refresh token: /authorize with prompt=none in a hidden
// iframe, the answer read from the frame's /silent page.
document.getElementById("renew-in-frame").onclick = () => step("renew-in-frame", async () => {
  try {
    shown(await manager.signinSilent({ forceIframeAuth: true }));
    spa.frameRenewal = { sub: spa.user.profile.sub };
  } catch (error) {
    spa.frameRenewal = { error: error.error || String(error) };  // an OAuth error from the OP, or another failure
  }
});

document.getElementById("revoke").onclick = () => step("revoke", async () => {
  const before = await manager.getUser();
  spa.revokedRefreshToken = before.refresh_token;
  await manager.revokeTokens();  // the access token, then the refresh token (RFC 7009)
  await userinfo(before);
  // The revoked refresh token, as a stale copy of it would be tried.
  const endpoint = await manager.metadataService.getTokenEndpoint();
  const call = async (nonce) => fetch(endpoint, {
    method: "POST",
    headers: dpop ? { DPoP: await manager.dpopProof(endpoint, null, "POST", nonce) } : {},
    body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: before.refresh_token,
                                client_id: SPA_CONFIG.client_id }),
  });
  let response = await call();
  let body = await response.json();
  if (dpop && body.error === "use_dpop_nonce") {
    response = await call(response.headers.get("DPoP-Nonce"));
    body = await response.json();
  }
  spa.refreshAfterRevocation = { status: response.status, body };
});

// With state (the library sends one only when given data to carry): the
// page to return to, as the OP hands it back (RP-Initiated Logout 1.0 2, 3).
document.getElementById("sign-out").onclick = () => step("sign-out", () => manager.signoutRedirect({ state: { back: "/" } }));

(async () => {
  if (location.pathname === "/silent") {
    await manager.signinSilentCallback();  // inside the hidden frame: hands the answer to the app
  } else if (location.pathname === "/callback") {
    await step("callback", async () => {
      shown(await manager.signinCallback());
      history.replaceState(null, "", "/");
      await userinfo(spa.user);
    });
  } else if (location.pathname === "/logged-out") {
    await step("signed-out", async () => {
      const response = await manager.signoutCallback();
      spa.signout = { state: response.state, userState: response.userState, error: response.error };
      spa.user = await manager.getUser();
    });
  } else {
    const user = await manager.getUser();
    if (user) shown(user);
    show("status", user ? "signed in" : "signed out");
  }
})();
