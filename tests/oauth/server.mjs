// The tests' OAuth 2.0 token server: npm's oauth2-mock-server (pinned in tests/servers.sh),
// which signs RS256 JWTs with a JWK key pair, with what a real provider adds around it:
//  - clients: "app.<user>" with the secret "cs.app.<user>" gets tokens for <user> (claims sub
//    and email, which Dovecot's oauth2 passdb compares with the login name); any other
//    secret is refused with 401 invalid_client, as Entra does. A client id starting with
//    "short." gets tokens that live 6 seconds (the renewal test).
//  - RFC 8628's device authorization (POST /device) and its grant on /token, which the mock
//    server lacks: the first poll answers authorization_pending, the second a token, as if
//    the user had signed in between.
//  - certificates instead of secrets (RFC 7523 §2.2, Entra's certificate credentials): a test
//    registers a client's certificate with POST /clients/certificate (client_id, certificate
//    in PEM), as an administrator uploads it to the app registration. A token request with
//    client_assertion_type jwt-bearer is then taken only with a client_assertion that names
//    a registered certificate of the client by x5t#S256 (or x5t), is signed with its key
//    (PS256 or RS256), has aud = this token endpoint, iss = sub = client_id, iat, nbf, exp
//    (at most 10 minutes), and a jti not seen before; anything else is refused with 401
//    invalid_client and Entra's AADSTS code, and a request with both a secret and an
//    assertion with 400 invalid_request (RFC 6749 §2.3: one method per request).
//  - every access and refresh token issued, and every client assertion received, is
//    appended to $ISSUED, for the test that scans poststelle's output for them.
// The public key goes into Dovecot's key dict ($KEYS/default/RS256/<kid>).
// Usage: node server.mjs PORT KEYS_DIR ISSUED_FILE   (OAUTH_TOOLS: npm prefix of the server)
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';

const [port, keys, issued] = process.argv.slice(2);
const tools = process.env.OAUTH_TOOLS;
const { OAuth2Server } = await import(
  pathToFileURL(path.join(tools, 'node_modules/oauth2-mock-server/dist/index.js')).href
);

const { jwtVerify, importX509, decodeProtectedHeader, decodeJwt } = await import(
  pathToFileURL(path.join(tools, 'node_modules/jose/dist/webapi/index.js')).href
);

const server = new OAuth2Server();
const jwk = await server.issuer.keys.generate('RS256');
const pem = crypto.createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
for (const dir of [path.join(keys, 'default', 'RS256'), path.join(keys, 'shared', 'default', 'RS256')]) {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, jwk.kid), pem);
}
server.issuer.url = `http://127.0.0.1:${port}`;

const SHORT = 6;
const userOf = (clientId) => clientId.replace(/^short\./, '').replace(/^app\./, '');
const ttlOf = (clientId) => (clientId.startsWith('short.') ? SHORT : 3600);
const refreshUsers = new Map();
const note = (kind, value) => fs.appendFileSync(issued, `${kind} ${value}\n`);

server.service.on('beforeTokenSigning', (token, req) => {
  const clientId = req.body.client_id ?? '';
  const user = req.body.grant_type === 'refresh_token'
    ? refreshUsers.get(req.body.refresh_token) ?? 'nobody'
    : userOf(clientId);
  token.payload.sub = user;
  token.payload.email = user;
  token.payload.exp = token.payload.iat + ttlOf(clientId);
});
server.service.on('beforeResponse', (response, req) => {
  const clientId = req.body.client_id ?? '';
  if (req.assertedClient !== clientId && req.body.client_secret !== `cs.${clientId}`) {
    response.statusCode = 401;
    response.body = { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' };
    return;
  }
  if (req.body.grant_type === 'refresh_token' && !refreshUsers.has(req.body.refresh_token)) {
    response.statusCode = 400;
    response.body = { error: 'invalid_grant', error_description: 'unknown refresh token' };
    return;
  }
  response.body.expires_in = ttlOf(clientId);
  if (req.body.grant_type === 'refresh_token') {
    // Rotation: every refresh hands out a new refresh token.
    const user = refreshUsers.get(req.body.refresh_token);
    const next = crypto.randomUUID();
    refreshUsers.set(next, user);
    response.body.refresh_token = next;
    note('refresh', next);
  }
  note('access', response.body.access_token);
});

// client_id → its registered certificates: { s256, sha1, pem, validTo }.
const certificates = new Map();
const seenJti = new Set();
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const b64url = (buf) => buf.toString('base64url');

// Checks a client assertion as Entra does; the client's id or Entra's refusal.
async function verifyAssertion(form) {
  const assertion = form.get('client_assertion') ?? '';
  note('assertion', assertion);
  const refuse = (description) => ({ error: description });
  if (form.get('client_assertion_type') !== ASSERTION_TYPE) {
    return refuse(`AADSTS50027: client_assertion_type must be ${ASSERTION_TYPE}`);
  }
  let header, claims;
  try {
    header = decodeProtectedHeader(assertion);
    claims = decodeJwt(assertion);
  } catch {
    return refuse('AADSTS50027: JWT token is invalid or malformed.');
  }
  const client = form.get('client_id') ?? claims.iss;
  const thumb = header['x5t#S256'] ?? header.x5t;
  const cert = (certificates.get(client) ?? []).find((c) => c.s256 === header['x5t#S256'] || c.sha1 === header.x5t);
  if (!thumb || !cert) {
    return refuse(`AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '${thumb}']`);
  }
  if (new Date(cert.validTo) < new Date()) {
    return refuse('AADSTS700027: Client assertion contains an invalid signature. [Reason - The key used is expired.]');
  }
  if (!['PS256', 'RS256'].includes(header.alg)) {
    return refuse(`AADSTS5002738: Invalid JWT token. '${header.alg}' is not a supported signature algorithm.`);
  }
  try {
    const key = await importX509(cert.pem, header.alg);
    await jwtVerify(assertion, key, {
      algorithms: [header.alg],
      audience: `http://127.0.0.1:${port}/token`,
      issuer: client,
      subject: client,
      requiredClaims: ['jti', 'iat', 'nbf', 'exp'],
      maxTokenAge: '10m',
    });
  } catch (e) {
    if (e.code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') {
      return refuse('AADSTS700027: Client assertion failed signature validation.');
    }
    if (e.code === 'ERR_JWT_EXPIRED' || e.claim === 'nbf' || e.claim === 'iat') {
      return refuse(`AADSTS700024: Client assertion is not within its valid time range. (${e.message})`);
    }
    return refuse(`AADSTS700021: Client assertion refused: ${e.message}`);
  }
  if (claims.exp - claims.nbf > 600) {
    return refuse('AADSTS700024: Client assertion lives longer than 10 minutes.');
  }
  if (seenJti.has(claims.jti)) {
    return refuse('AADSTS700025: The client assertion was used before (jti replayed).');
  }
  seenJti.add(claims.jti);
  return { client };
}

const devices = new Map();
const json = (res, status, body) => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
};

const app = server.service.requestHandler;
http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', async () => {
    const raw = Buffer.concat(chunks);
    const form = new URLSearchParams(raw.toString());
    if (req.method === 'POST' && req.url === '/clients/certificate') {
      const cert = new crypto.X509Certificate(form.get('certificate') ?? '');
      const list = certificates.get(form.get('client_id')) ?? [];
      list.push({
        s256: b64url(crypto.createHash('sha256').update(cert.raw).digest()),
        sha1: b64url(crypto.createHash('sha1').update(cert.raw).digest()),
        pem: cert.toString(),
        validTo: cert.validTo,
      });
      certificates.set(form.get('client_id'), list);
      res.writeHead(204);
      return res.end();
    }
    let asserted;
    if (req.method === 'POST' && req.url === '/token'
        && (form.has('client_assertion') || form.has('client_assertion_type'))) {
      if (form.has('client_secret')) {
        return json(res, 400, { error: 'invalid_request', error_description: 'AADSTS90014: a client secret and a client assertion in one request' });
      }
      const checked = await verifyAssertion(form);
      if (checked.error) return json(res, 401, { error: 'invalid_client', error_description: checked.error });
      asserted = checked.client;
    }
    if (req.method === 'POST' && req.url === '/device') {
      const code = crypto.randomUUID();
      devices.set(code, { clientId: form.get('client_id'), polled: 0 });
      return json(res, 200, {
        device_code: code, user_code: 'WDJB-MJHT', verification_uri: `http://127.0.0.1:${port}/activate`,
        expires_in: 60, interval: 1, message: 'To sign in, open the page and enter WDJB-MJHT.',
      });
    }
    if (req.method === 'POST' && req.url === '/token'
        && form.get('grant_type') === 'urn:ietf:params:oauth:grant-type:device_code') {
      const d = devices.get(form.get('device_code'));
      if (!d) return json(res, 400, { error: 'expired_token' });
      if (d.polled++ === 0) return json(res, 400, { error: 'authorization_pending' });
      devices.delete(form.get('device_code'));
      const user = userOf(d.clientId);
      const access = await server.issuer.buildToken({
        expiresIn: ttlOf(d.clientId),
        scopesOrTransform: (_h, p) => Object.assign(p, { sub: user, email: user }),
      });
      const refresh = crypto.randomUUID();
      refreshUsers.set(refresh, user);
      note('access', access);
      note('refresh', refresh);
      return json(res, 200, { access_token: access, token_type: 'Bearer', expires_in: ttlOf(d.clientId), refresh_token: refresh });
    }
    // Everything else is the mock server's, with the body read here handed on.
    const again = Readable.from([raw]);
    again.method = req.method;
    again.url = req.url;
    again.headers = req.headers;
    again.httpVersion = req.httpVersion;
    again.socket = req.socket;
    again.connection = req.socket;
    // The assertion was checked above: the secret's check below is not for this request.
    again.assertedClient = asserted;
    app(again, res);
  });
}).listen(Number(port), '127.0.0.1', () => console.log(`token server on 127.0.0.1:${port}`));
