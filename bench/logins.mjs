// The full password login as flows/s (bench/run.sh), with Node.js built-ins only.
//
//   BENCH_BASE=http://127.0.0.1:8000 BENCH_CLIENT_SECRET=... node bench/logins.mjs [concurrency] [seconds]
//
// Each flow is a new browser (empty cookie jar): authorize -> login page ->
// login POST -> back to authorize -> code -> token -> userinfo. The login step
// is the OP's /login form (with its CSRF token) or, for the peer
// (bench/peer/server.mjs), its /interaction/<uid> form. `concurrency` flows
// run at once until `seconds` have passed; prints one JSON line like
// `flows.py logins`: flows, errors, rate (flows/s), p50/p99 of a whole flow.
//
// This replaces a Python generator (requests, 8 processes) that used about a
// third of the machine's two cores itself. node:http with a keep-alive agent
// costs less than fetch() here.
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';

const BASE = process.env.BENCH_BASE || 'http://127.0.0.1:8000';
const CLIENT_ID = process.env.BENCH_CLIENT_ID || 'mypage-demo';
const CLIENT_SECRET = process.env.BENCH_CLIENT_SECRET || '';
const REDIRECT_URI = process.env.BENCH_REDIRECT_URI || 'http://127.0.0.1:5001/auth/callback';
const LOGIN_ID = process.env.BENCH_LOGIN_ID || 'taro.itsu@example.jp';
const PASSWORD = process.env.BENCH_PASSWORD || 'itscom-demo1';
const CONCURRENCY = Number(process.argv[2] || 8);
const SECONDS = Number(process.argv[3] || 10);
const BASIC = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;
const FORM = 'application/x-www-form-urlencoded';
const CSRF = /name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"/;

if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(BASE).hostname)) {
  throw new Error('benchmark traffic stays on loopback');
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

// A response as the flow reads it: status, headers, body text.
function send(url, { method, headers, body }) {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers, agent }, (response) => {
      const chunks = [];
      response.on('data', (chunk) => chunks.push(chunk));
      response.on('end', () => resolve({
        status: response.statusCode, headers: response.headers, text: Buffer.concat(chunks).toString(),
      }));
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

class Browser {
  constructor() {
    this.cookies = new Map();
  }

  async request(target, { method = 'GET', headers = {}, body } = {}) {
    const url = target.startsWith('http') ? target : BASE + target;
    const sent = { ...headers };
    if (this.cookies.size) sent.cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const payload = body === undefined ? undefined : String(body);
    if (payload !== undefined) sent['content-length'] = Buffer.byteLength(payload);
    const response = await send(url, { method, headers: sent, body: payload });
    for (const line of response.headers['set-cookie'] || []) {
      const [pair] = line.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at).trim();
      const value = pair.slice(at + 1).trim();
      if (!value || /max-age=0|expires=thu, 01 jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }
}

function expect(condition, message) {
  if (!condition) throw new Error(message);
}

async function flow() {
  const browser = new Browser();
  const verifier = randomBytes(48).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const query = new URLSearchParams({
    response_type: 'code', client_id: CLIENT_ID, redirect_uri: REDIRECT_URI,
    scope: 'openid profile email offline_access', state: randomBytes(8).toString('base64url'),
    nonce: randomBytes(8).toString('base64url'), code_challenge: challenge, code_challenge_method: 'S256',
  });
  let response = await browser.request(`/authorize?${query}`);
  const login = response.headers.location || '';
  // The OP sends the browser to /login?request=KEY (the sign-in waiting for it); a bare /login continues it.
  if (response.status === 303 && login.split('?')[0].endsWith('/login')) {
    const page = (await browser.request('/login')).text;
    const match = CSRF.exec(page);
    expect(match, 'no csrf_token on the login page');
    const form = new URLSearchParams({ login_id: LOGIN_ID, password: PASSWORD, csrf_token: match[1] || match[2] });
    response = await browser.request('/login', { method: 'POST', headers: { 'content-type': FORM }, body: form });
  } else if ([302, 303].includes(response.status) && login.includes('/interaction/')) {
    await browser.request(login);
    const form = new URLSearchParams({ login_id: LOGIN_ID, password: PASSWORD });
    response = await browser.request(`${login}/login`, { method: 'POST', headers: { 'content-type': FORM }, body: form });
  } else {
    throw new Error(`/authorize answered ${response.status} without a session, not a redirect to a login`);
  }
  for (let hops = 0; ; hops += 1) {
    const location = response.headers.location || '';
    expect([302, 303].includes(response.status) && hops < 5, `login ended with ${response.status}`);
    if (location.startsWith(REDIRECT_URI)) {
      const code = new URL(location).searchParams.get('code');
      expect(code, `no code in ${location}`);
      response = await browser.request('/token', {
        method: 'POST',
        headers: { authorization: BASIC, 'content-type': FORM },
        body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, code_verifier: verifier }),
      });
      break;
    }
    response = await browser.request(location);
  }
  expect(response.status === 200, `token exchange answered ${response.status}`);
  const tokens = JSON.parse(response.text);
  response = await browser.request('/userinfo', { headers: { authorization: `Bearer ${tokens.access_token}` } });
  expect(response.status === 200, `userinfo answered ${response.status}`);
}

const times = [];
let errors = 0;
const started = performance.now();
const deadline = started + SECONDS * 1000;

async function worker() {
  while (performance.now() < deadline) {
    const begun = performance.now();
    try {
      await flow();
      times.push(performance.now() - begun);
    } catch (error) {
      errors += 1;
      if (errors <= 3) console.error(`flow error: ${error.message}`);
    }
  }
}

await Promise.all(Array.from({ length: CONCURRENCY }, worker));
agent.destroy();
const elapsed = (performance.now() - started) / 1000;
times.sort((a, b) => a - b);
const at = (q) => (times.length ? Math.round(times[Math.min(times.length - 1, Math.floor(times.length * q))] * 10) / 10 : null);
console.log(JSON.stringify({
  scenario: 'login_flow', flows: times.length, errors, seconds: Math.round(elapsed * 100) / 100,
  rate: Math.round((times.length / elapsed) * 10) / 10, p50_ms: at(0.5), p99_ms: at(0.99),
}));
