// Writes private JWK sets for tests/interop/oidc_server.mjs: one file per generation name,
// <dir>/<name>.json, holding one RS256, PS256, ES256 and EdDSA (Ed25519) key each, with kids
// "<name>-rs256", "<name>-ps256", "<name>-es256", "<name>-eddsa" (files mode 0600).
//   node make_jwks.mjs DIR NAME [NAME ...]
// Used by tests/integration/oidc_test.cpp; install first with `npm ci --prefix tests/interop`.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as jose from 'jose';

const ALGORITHMS = ['RS256', 'PS256', 'ES256', 'EdDSA'];

async function privateJwk(alg, kid) {
  const options = { extractable: true };
  if (alg === 'EdDSA') options.crv = 'Ed25519';
  const { privateKey } = await jose.generateKeyPair(alg, options);
  return { ...(await jose.exportJWK(privateKey)), kid, alg, use: 'sig' };
}

const [dir, ...names] = process.argv.slice(2);
if (!dir || names.length === 0 || names.some((n) => !/^[A-Za-z0-9_-]+$/.test(n))) {
  process.stderr.write('usage: node make_jwks.mjs DIR NAME [NAME ...]  (names: letters, digits, - and _)\n');
  process.exit(2);
}
for (const name of names) {
  const keys = [];
  for (const alg of ALGORITHMS) keys.push(await privateJwk(alg, `${name}-${alg.toLowerCase()}`));
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify({ keys })}\n`, { mode: 0o600 });
}
