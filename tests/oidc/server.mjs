// A real OpenID provider for the OpenID Connect tests: panva's oidc-provider on 127.0.0.1.
//
// Configuration comes as JSON in OIDC_TEST_CONFIG:
//   { "ports": [main, other], "clients": [{ "client_id", "client_secret", "redirect_uris": [...] }] }
// Two providers answer, one per port, with the same clients and the same signing key: the second is
// "another issuer" whose tokens must be refused. PKCE (S256) is required; consent is implied.
//
// The tests sign in without a browser: the provider sends the browser to /interaction/<uid>, which
// answers JSON; a POST of sub, claims (JSON: email, name, groups...), amr (comma-separated) and acr to
// /interaction/<uid>/login finishes the login. When both servers listen, one line of JSON goes to
// stdout: { "issuer": ..., "other_issuer": ... }.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(process.env.OIDC_TEST_CONFIG);
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };
const accounts = new Map(); // sub -> the claims the tests gave at login

function provider(issuer) {
  const oidc = new Provider(issuer, {
    clients: config.clients.map((client) => ({
      ...client,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    })),
    jwks: { keys: [signingKey] },
    pkce: { required: () => true, methods: ['S256'] },
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: {
      // acr and amr come from the login (the tests' POST), like any provider's record of how one signed in.
      openid: ['sub', 'acr', 'amr', 'auth_time'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name'],
      groups: ['groups'],
    },
    // Put the scopes' claims in the id_token itself, as workforce providers commonly do.
    conformIdTokenClaims: false,
    findAccount: async (ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, ...(accounts.get(sub) ?? {}) }),
    }),
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    // Consent is implied for the tests' own clients.
    loadExistingGrant: async (ctx) => {
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email profile groups');
      await grant.save();
      return grant;
    },
    cookies: { keys: [randomUUID()] },
    ttl: { IdToken: 120, AuthorizationCode: 60, AccessToken: 120, Session: 600, Interaction: 600, Grant: 600 },
  });
  oidc.proxy = false;
  const callback = oidc.callback();
  return async (req, res) => {
    const url = new URL(req.url, issuer);
    const match = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
    if (!match) {
      callback(req, res);
      return;
    }
    try {
      const details = await oidc.interactionDetails(req, res);
      if (!match[2]) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ uid: details.uid, prompt: details.prompt.name }));
        return;
      }
      const form = new URLSearchParams(await body(req));
      const sub = form.get('sub');
      accounts.set(sub, JSON.parse(form.get('claims') || '{}'));
      const login = { accountId: sub };
      if (form.get('amr')) login.amr = form.get('amr').split(',');
      if (form.get('acr')) login.acr = form.get('acr');
      await oidc.interactionFinished(req, res, { login }, { mergeWithLastSubmission: false });
    } catch (error) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: String(error) }));
    }
  };
}

function body(req) {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { text += chunk; });
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}

function listen(port) {
  const issuer = `http://127.0.0.1:${port}`;
  const server = http.createServer(provider(issuer));
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(issuer)));
}

const [issuer, otherIssuer] = await Promise.all(config.ports.map(listen));
process.stdout.write(`${JSON.stringify({ issuer, other_issuer: otherIssuer })}\n`);
process.on('SIGTERM', () => process.exit(0));
