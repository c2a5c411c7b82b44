// A relying party built on openid-client 6 (an OpenID Certified RP library)
// that pushes its authorization requests (PAR, RFC 9126), alone or with DPoP
// (RFC 9449); driven by tests/browser/test_par_rp.py, which plays the
// customer's browser.
//
//   node par_rp.mjs ISSUER CLIENT_ID CLIENT_SECRET|- REDIRECT_URI plain|dpop
//
// A client secret is sent with client_secret_basic; "-" is a public client.
// Prints one JSON line: the authorization URL openid-client built from its
// pushed request (buildAuthorizationUrlWithPAR), a second one pushed alongside
// (for the test to let expire), and the same request not pushed
// (buildAuthorizationUrl), and the first request's PKCE verifier. Reads the callback URL the browser reached from
// stdin, exchanges the code (with DPoP in "dpop"), calls UserInfo, and prints
// one JSON line of what it got and the requests it sent (captured from its
// fetch).
import { createHash, webcrypto } from 'node:crypto';
import { createInterface } from 'node:readline';
import * as client from 'openid-client';

const [issuer, clientId, clientSecret, redirectUri, mode] = process.argv.slice(2);

const sent = [];
const auth = clientSecret === '-' ? client.None() : client.ClientSecretBasic(clientSecret);
const config = await client.discovery(new URL(issuer), clientId, undefined, auth, {
  execute: [client.allowInsecureRequests], // the test OP listens on loopback over HTTP
});
config[client.customFetch] = (url, options) => {
  const headers = new Headers(options.headers);
  sent.push({
    url: String(url),
    method: options.method,
    dpop: headers.get('dpop'),
    body: options.body === undefined ? null : String(options.body),
  });
  return fetch(url, options);
};

let dpop;
let jkt = null;
if (mode === 'dpop') {
  const keyPair = await client.randomDPoPKeyPair('ES256', { extractable: true });
  dpop = client.getDPoPHandle(config, keyPair);
  const publicJwk = await webcrypto.subtle.exportKey('jwk', keyPair.publicKey);
  // RFC 7638: the thumbprint of the required members in lexicographic order.
  jkt = createHash('sha256')
    .update(JSON.stringify({ crv: publicJwk.crv, kty: publicJwk.kty, x: publicJwk.x, y: publicJwk.y }))
    .digest('base64url');
}

async function request() {
  const verifier = client.randomPKCECodeVerifier();
  const parameters = {
    redirect_uri: redirectUri,
    scope: 'openid profile email',
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state: client.randomState(),
    nonce: client.randomNonce(),
  };
  return { verifier, parameters };
}

const first = await request();
// The library pushes the request itself; its DPoP option adds a proof to the
// push, which binds the code to the key (RFC 9449 10.1).
const pushed = await client.buildAuthorizationUrlWithPAR(config, first.parameters, { DPoP: dpop });
const spare = await client.buildAuthorizationUrlWithPAR(config, (await request()).parameters, { DPoP: dpop });
const unpushed = client.buildAuthorizationUrl(config, (await request()).parameters);
console.log(JSON.stringify({
  authorization_url: pushed.href,
  spare_url: spare.href,
  unpushed_url: unpushed.href,
  jkt,
  code_verifier: first.verifier, // for the test's thief, who has everything but the key
}));

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const callback = (await lines.next()).value;

const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
  pkceCodeVerifier: first.verifier,
  expectedState: first.parameters.state,
  expectedNonce: first.parameters.nonce,
  idTokenExpected: true,
}, undefined, { DPoP: dpop });
const claims = tokens.claims();
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub, { DPoP: dpop });

console.log(JSON.stringify({
  token_type: tokens.token_type,
  access_token: tokens.access_token,
  scope: tokens.scope,
  claims,
  userinfo,
  sent,
}));
process.exit(0);
