// A relying party built on openid-client 6 (an OpenID Certified RP library),
// using DPoP (RFC 9449) for everything it does with the OP; driven by
// tests/browser/test_dpop_rp.py, which plays the customer's browser.
//
//   node dpop_rp.mjs ISSUER CLIENT_ID REDIRECT_URI
//
// Prints one JSON line with the authorization URL (PKCE, nonce, state and
// dpop_jkt, RFC 9449 10), reads the callback URL the browser reached from
// stdin, then exchanges the code, calls UserInfo, refreshes and calls
// UserInfo again, each with DPoP, and prints one JSON line of what it got:
// the tokens, the proofs it sent (captured from its fetch) and its key, so
// that the test can attack the OP with them.
import { createHash, webcrypto } from 'node:crypto';
import { createInterface } from 'node:readline';
import * as client from 'openid-client';

const [issuer, clientId, redirectUri] = process.argv.slice(2);

const sent = [];
const config = await client.discovery(new URL(issuer), clientId, undefined, client.None(), {
  execute: [client.allowInsecureRequests], // the test OP listens on loopback over HTTP
});
config[client.customFetch] = (url, options) => {
  const headers = new Headers(options.headers);
  sent.push({ url: String(url), method: options.method, dpop: headers.get('dpop') });
  return fetch(url, options);
};

const keyPair = await client.randomDPoPKeyPair('ES256', { extractable: true });
const dpop = client.getDPoPHandle(config, keyPair);
const publicJwk = await webcrypto.subtle.exportKey('jwk', keyPair.publicKey);
const privateJwk = await webcrypto.subtle.exportKey('jwk', keyPair.privateKey);
// RFC 7638: the thumbprint of the required members in lexicographic order.
const jkt = createHash('sha256')
  .update(JSON.stringify({ crv: publicJwk.crv, kty: publicJwk.kty, x: publicJwk.x, y: publicJwk.y }))
  .digest('base64url');

const verifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const authorizationUrl = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: 'openid profile email offline_access',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  state,
  nonce,
  dpop_jkt: jkt,
});
console.log(JSON.stringify({ authorization_url: authorizationUrl.href, jkt }));

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
const callback = (await lines.next()).value;

const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
  pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
}, undefined, { DPoP: dpop });
const subject = tokens.claims().sub;
const userinfo = await client.fetchUserInfo(config, tokens.access_token, subject, { DPoP: dpop });
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: dpop });
const userinfoAgain = await client.fetchUserInfo(config, refreshed.access_token, subject, { DPoP: dpop });

console.log(JSON.stringify({
  token_type: tokens.token_type,
  refreshed_token_type: refreshed.token_type,
  first_access_token: tokens.access_token,
  access_token: refreshed.access_token,
  refresh_token: refreshed.refresh_token,
  sub: subject,
  userinfo,
  userinfo_again: userinfoAgain,
  sent,
  public_jwk: publicJwk,
  private_jwk: privateJwk,
}));
process.exit(0);
