// Mints one signed JWT per JWS algorithm with npm `jose`, an implementation independent of
// gatehouse, and prints {"jose": version, "tokens": [{alg, token, issuer, audience, jwks}]}.
// Used by tests/unit/jose_interop_test.cpp; install first with `npm ci --prefix tests/interop`.
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import * as jose from 'jose';

const ISSUER = 'https://issuer.interop.test';
const AUDIENCE = 'gatehouse-interop';
const ALGORITHMS = [
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512',
  'EdDSA',
  'HS256', 'HS384', 'HS512',
];

async function makeKey(alg) {
  if (alg.startsWith('HS')) {
    const secret = await jose.generateSecret(alg, { extractable: true });
    return { signingKey: secret, publicJwk: await jose.exportJWK(secret) };
  }
  const options = { extractable: true };
  if (alg === 'EdDSA') options.crv = 'Ed25519';
  const { publicKey, privateKey } = await jose.generateKeyPair(alg, options);
  return { signingKey: privateKey, publicJwk: await jose.exportJWK(publicKey) };
}

async function mint(alg) {
  const { signingKey, publicJwk } = await makeKey(alg);
  const kid = `interop-${alg.toLowerCase()}`;
  const token = await new jose.SignJWT({ scope: 'read write', tenant: 'acme' })
    .setProtectedHeader({ alg, kid, typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(`user-${alg}`)
    .setJti(randomUUID())
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(signingKey);
  const jwk = { ...publicJwk, kid, alg, use: 'sig' };
  // jose checks its own token first, so a failure in gatehouse's test is gatehouse's.
  await jose.jwtVerify(token, await jose.importJWK(jwk, alg), {
    issuer: ISSUER,
    audience: AUDIENCE,
    algorithms: [alg],
  });
  return { alg, token, issuer: ISSUER, audience: AUDIENCE, jwks: { keys: [jwk] } };
}

const version = JSON.parse(
  readFileSync(new URL('./node_modules/jose/package.json', import.meta.url), 'utf8'),
).version;
const tokens = [];
for (const alg of ALGORITHMS) tokens.push(await mint(alg));
process.stdout.write(`${JSON.stringify({ jose: version, tokens })}\n`);
