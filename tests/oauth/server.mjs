// The tests' OAuth 2.0 token server: npm's oauth2-mock-server (pinned in tests/servers.sh),
// which signs RS256 JWTs with a JWK key pair, with what a real provider adds around it:
//  - clients: "app.<user>" with the secret "cs.app.<user>" gets tokens for <user> (claims sub
//    and email, which Dovecot's oauth2 passdb compares with the login name); any other
//    secret is refused with 401 invalid_client, as Entra does. A client id starting with
//    "short." gets tokens that live 6 seconds (the renewal test).
//  - RFC 8628's device authorization (POST /device) and its grant on /token, which the mock
//    server lacks: the first poll answers authorization_pending, the second a token, as if
//    the user had signed in between.
//  - every access and refresh token issued is appended to $ISSUED, for the test that scans
//    poststelle's output for them.
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
  if (req.body.client_secret !== `cs.${clientId}`) {
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
    app(again, res);
  });
}).listen(Number(port), '127.0.0.1', () => console.log(`token server on 127.0.0.1:${port}`));
