// Verifies tokens minted by gatehouse's TokenMinter with npm `jose`, an independent JOSE
// implementation, as a service would: with the JWKS the gateway serves.
// Usage: node verify_minted.mjs FILE, where FILE holds
//   {"tokens": [{"alg", "token", "jwks", "issuer", "audience"}]}
// Prints {"results": [{"alg", "ok", "kid", "payload" | "error"}]}.
// Used by tests/unit/jose_minted_interop_test.cpp; install first with `npm ci --prefix tests/interop`.
import { readFileSync } from 'node:fs';
import * as jose from 'jose';

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const results = [];
for (const t of input.tokens) {
  try {
    const { payload, protectedHeader } = await jose.jwtVerify(t.token, jose.createLocalJWKSet(t.jwks), {
      issuer: t.issuer,
      audience: t.audience,
      algorithms: [t.alg],
      typ: 'JWT',
      requiredClaims: ['iat', 'exp', 'jti'],
    });
    results.push({ alg: t.alg, ok: true, kid: protectedHeader.kid, payload });
  } catch (e) {
    results.push({ alg: t.alg, ok: false, error: `${e.code ?? ''} ${e.message}` });
  }
}
process.stdout.write(`${JSON.stringify({ results })}\n`);
