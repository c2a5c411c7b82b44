// node-oidc-provider 9, configured like the iTSCOM ID OP, for the benchmark's
// peer comparison (bench/run.sh with BENCH_PEER=1). Not part of the product.
//
//   PEER_PORT=8001 BENCH_CLIENT_SECRET=... node bench/peer/server.mjs
//
// Like the OP under test: 2 workers (node:cluster) sharing one store, one
// confidential client (client_secret_basic) with the same id, secret and
// redirect URI, the same endpoint paths, PKCE S256, refresh tokens rotated
// on every use, RS256 JWT access tokens for client_credentials, access
// tokens of 1 h, and a password login that verifies argon2id (t=2, m=19 MiB)
// before the code is issued. Differences that remain, as the peer's model
// has them: tokens live in Redis (the peer's usual production adapter), not
// PostgreSQL; access tokens from the code flow are opaque (a JWT access token
// needs a resource indicator, and UserInfo only takes tokens for itself);
// JWT access tokens are not stored at all.
import cluster from 'node:cluster';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';

import { Algorithm, hash, verify } from '@node-rs/argon2';
import Redis from 'ioredis';
import Provider from 'oidc-provider';

const PORT = Number(process.env.PEER_PORT || 8001);
const WORKERS = Number(process.env.PEER_WORKERS || 2);
const ISSUER = `http://127.0.0.1:${PORT}`;
const CLIENT_ID = process.env.BENCH_CLIENT_ID || 'mypage-demo';
const CLIENT_SECRET = process.env.BENCH_CLIENT_SECRET;
const REDIRECT_URI = process.env.BENCH_REDIRECT_URI || 'http://127.0.0.1:5001/auth/callback';
const LOGIN_ID = process.env.BENCH_LOGIN_ID || 'taro.itsu@example.jp';
const PASSWORD = process.env.BENCH_PASSWORD || 'itscom-demo1';
const REDIS_URL = process.env.PEER_REDIS_URL || 'redis://127.0.0.1:6379/3';
const ARGON2 = { algorithm: Algorithm.Argon2id, timeCost: 2, memoryCost: 19 * 1024, parallelism: 1 };

if (!CLIENT_SECRET) throw new Error('BENCH_CLIENT_SECRET is required');

if (cluster.isPrimary) {
  // Keys, cookie keys and the password hash are made once and shared, so
  // that every worker signs, verifies and logs in alike.
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  const shared = {
    keys: [{ ...rsa, alg: 'RS256', use: 'sig', kid: 'peer-rs256' }, { ...ec, alg: 'ES256', use: 'sig', kid: 'peer-es256' }],
    cookieKeys: [randomBytes(32).toString('base64url')],
    passwordHash: await hash(PASSWORD, ARGON2),
  };
  const store = new Redis(REDIS_URL);
  await store.flushdb();
  store.disconnect();
  for (let i = 0; i < WORKERS; i += 1) cluster.fork({ PEER_SHARED: JSON.stringify(shared) });
  cluster.on('exit', (worker, code) => {
    if (code !== 0) console.error(`peer worker ${worker.process.pid} exited with ${code}`);
  });
} else {
  const shared = JSON.parse(process.env.PEER_SHARED);
  const redis = new Redis(REDIS_URL);
  const provider = new Provider(ISSUER, configuration(shared, redis));
  const handler = provider.callback();
  http.createServer((req, res) => {
    if (req.url.startsWith('/interaction/')) {
      interaction(provider, shared, req, res).catch((error) => {
        res.statusCode = 500;
        res.end(String(error));
      });
    } else {
      handler(req, res);
    }
  }).listen(PORT, '127.0.0.1');
}

function configuration(shared, redis) {
  return {
    adapter: redisAdapter(redis),
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'openid profile email offline_access api',
    }],
    jwks: { keys: shared.keys },
    cookies: { keys: shared.cookieKeys },
    scopes: ['openid', 'offline_access', 'profile', 'email', 'api'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    findAccount: async (ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, email: LOGIN_ID, email_verified: true, name: 'イツ タロウ' }),
    }),
    pkce: { required: () => true },
    rotateRefreshToken: true,
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      AccessToken: 3600, AuthorizationCode: 60, ClientCredentials: 3600, IdToken: 3600,
      RefreshToken: 30 * 24 * 3600, Grant: 30 * 24 * 3600, Interaction: 600, Session: 14 * 24 * 3600,
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    routes: {
      authorization: '/authorize', userinfo: '/userinfo', introspection: '/introspect',
      revocation: '/revoke', jwks: '/jwks', end_session: '/session/end', token: '/token',
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx) => (ctx.oidc.params.grant_type === 'client_credentials' ? 'urn:itscom:api' : undefined),
        getResourceServerInfo: () => ({
          scope: 'api', audience: 'urn:itscom:api', accessTokenTTL: 3600,
          accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } },
        }),
        useGrantedResource: () => false,
      },
    },
  };
}

// The login page: GET shows a form, POST verifies the password (argon2id)
// and finishes the interaction with login and consent, as the OP does for
// its first-party clients.
async function interaction(provider, shared, req, res) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET') {
    res.setHeader('Content-Type', 'text/html; charset=utf-8');
    res.end(`<form method="post" action="/interaction/${details.uid}/login">`
      + '<input name="login_id"><input name="password" type="password"><button>ログイン</button></form>');
    return;
  }
  const form = new URLSearchParams(await body(req));
  const ok = form.get('login_id') === LOGIN_ID
    && await verify(shared.passwordHash, form.get('password') || '', ARGON2);
  if (!ok) {
    res.statusCode = 400;
    res.end('ログインIDまたはパスワードが正しくありません。');
    return;
  }
  const grant = new provider.Grant({ accountId: LOGIN_ID, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const result = {
    login: { accountId: LOGIN_ID },
    consent: { grantId: await grant.save() },
  };
  await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

function body(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}

// node-oidc-provider's example Redis adapter (storage shared by the workers).
function redisAdapter(client) {
  const grantable = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
  const consumable = new Set(['AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);
  return class RedisAdapter {
    constructor(name) {
      this.name = name;
    }

    key(id) {
      return `${this.name}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      const multi = client.multi();
      if (consumable.has(this.name)) multi.hset(key, { payload: JSON.stringify(payload) });
      else multi.set(key, JSON.stringify(payload));
      if (expiresIn) multi.expire(key, expiresIn);
      if (grantable.has(this.name) && payload.grantId) {
        const grantKey = `grant:${payload.grantId}`;
        multi.rpush(grantKey, key);
        const ttl = await client.ttl(grantKey);
        if (expiresIn > ttl) multi.expire(grantKey, expiresIn);
      }
      if (payload.uid) {
        multi.set(`uid:${payload.uid}`, id);
        if (expiresIn) multi.expire(`uid:${payload.uid}`, expiresIn);
      }
      await multi.exec();
    }

    async find(id) {
      const data = consumable.has(this.name) ? await client.hgetall(this.key(id)) : await client.get(this.key(id));
      if (!data || (typeof data === 'object' && Object.keys(data).length === 0)) return undefined;
      if (typeof data === 'string') return JSON.parse(data);
      const { payload, ...rest } = data;
      return { ...rest, ...JSON.parse(payload) };
    }

    async findByUid(uid) {
      const id = await client.get(`uid:${uid}`);
      return id ? this.find(id) : undefined;
    }

    async findByUserCode() {
      return undefined;
    }

    async destroy(id) {
      await client.del(this.key(id));
    }

    async revokeByGrantId(grantId) {
      const multi = client.multi();
      const keys = await client.lrange(`grant:${grantId}`, 0, -1);
      keys.forEach((key) => multi.del(key));
      multi.del(`grant:${grantId}`);
      await multi.exec();
    }

    async consume(id) {
      await client.hset(this.key(id), 'consumed', Math.floor(Date.now() / 1000));
    }
  };
}
