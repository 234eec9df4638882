// A real OpenID provider (npm oidc-provider) over HTTPS on 127.0.0.1, for gatehouse's oidc-interop
// test (tests/integration/oidc_test.cpp). Install first with `npm ci --prefix tests/interop`.
//
//   node oidc_server.mjs --cert FILE --key FILE --jwks FILE [--jwks FILE ...] [--port N]
//
// --cert/--key: the server's TLS certificate and key (PEM). --jwks: private JWK sets (make_jwks.mjs);
// keys are published in the order given, and tokens are signed with the first key of the algorithm,
// so a rotation is a restart on the same --port with the new set first (and the old one after it
// while its tokens should still verify). --port 0 (the default) picks a free port.
//
// Once listening it prints one JSON line on stdout: {"ready": true, "port": N, "issuer": URL}.
// It exits when its standard input closes (so a test that dies never leaves it behind) and on
// SIGTERM or SIGINT. Errors go to stderr.
//
// What it serves: issuer https://127.0.0.1:<port>, discovery, JWKS, token endpoint with the
// client_credentials grant, introspection (RFC 7662) and revocation (RFC 7009), for one confidential
// client (client_secret_basic). Client-credentials tokens requested with resource=https://api.test
// are JWT access tokens (RFC 9068, typ at+jwt, aud https://api.test) signed with RS256; with
// resource=https://api.test/alg/<ALG> (ALG one of RS256, PS256, ES256, EdDSA) signed with ALG and
// the same audience. Tokens requested without a resource are opaque (introspection only).
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

const CLIENT_ID = 'gatehouse-test-client';
// Characters that client_secret_basic must form-encode (RFC 6749 section 2.3.1).
const CLIENT_SECRET = 'Secret: with+plus/slash%percent';
const AUDIENCE = 'https://api.test';
const ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'];
const SCOPES = 'read write';

function fail(message) {
  process.stderr.write(`oidc_server: ${message}\n`);
  process.exit(2);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      cert: { type: 'string' },
      key: { type: 'string' },
      jwks: { type: 'string', multiple: true },
      port: { type: 'string', default: '0' },
    },
    strict: true,
  }));
} catch (e) {
  fail(e.message);
}
if (!args.cert || !args.key || !args.jwks?.length) fail('--cert, --key and at least one --jwks are required');
const port = Number(args.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad --port ${args.port}`);

const keys = [];
for (const file of args.jwks) {
  const set = JSON.parse(readFileSync(file, 'utf8'));
  if (!Array.isArray(set.keys)) fail(`${file}: not a JWK set`);
  keys.push(...set.keys);
}

// Never outlive the test that started us.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));

function resourceServer(alg) {
  return {
    scope: SCOPES,
    audience: AUDIENCE,
    accessTokenTTL: 600,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg } },
  };
}

function configuration() {
  return {
    clients: [{
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: SCOPES,
    }],
    jwks: { keys },
    cookies: { keys: ['gatehouse-oidc-interop-test-only'] },
    scopes: ['openid', 'read', 'write'],
    ttl: { ClientCredentials: 600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,  // no resource: an opaque token
        useGrantedResource: () => false,
        getResourceServerInfo(ctx, indicator) {
          if (indicator === AUDIENCE) return resourceServer('RS256');
          const alg = indicator.startsWith(`${AUDIENCE}/alg/`) ? indicator.slice(AUDIENCE.length + 5) : '';
          if (ALGORITHMS.includes(alg)) return resourceServer(alg);
          throw new errors.InvalidTarget();
        },
      },
    },
  };
}

// Requests that arrive before the provider exists (it needs the bound port for its issuer) get 503.
let app = (req, res) => {
  res.statusCode = 503;
  res.end();
};
const server = https.createServer(
  { cert: readFileSync(args.cert), key: readFileSync(args.key) },
  (req, res) => app(req, res),
);
server.on('error', (e) => fail(`cannot listen on 127.0.0.1:${port}: ${e.message}`));
server.listen(port, '127.0.0.1', () => {
  const bound = server.address().port;
  const issuer = `https://127.0.0.1:${bound}`;
  let provider;
  try {
    provider = new Provider(issuer, configuration());
  } catch (e) {
    fail(`oidc-provider refused the configuration: ${e.stack || e}`);
  }
  provider.on('server_error', (ctx, err) => process.stderr.write(`oidc_server: server_error: ${err.stack || err}\n`));
  app = provider.callback();
  process.stdout.write(`${JSON.stringify({ ready: true, port: bound, issuer })}\n`);
});
