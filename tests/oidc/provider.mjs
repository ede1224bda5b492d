// A real OpenID Provider for sekisho's tests: oidc-provider on 127.0.0.1, configured from a JSON file.
//
//   node tests/oidc/provider.mjs CONFIG_JSON_PATH
//
// CONFIG (JSON object):
//   port      int, required          the 127.0.0.1 port to listen on
//   issuer    string, required       e.g. "http://127.0.0.1:PORT"
//   keys      {"keys": [JWK, ...]}   private signing JWKS (RS256 and/or ES256, each with kid);
//                                    restart with other keys to rotate. The first key's alg is the
//                                    default id_token_signed_response_alg for clients.
//   clients   [client metadata]      oidc-provider client metadata, passed straight through
//   accounts  {name: {claims}}       the only accounts that exist: sub = preferred_username = name
//   ttl       {Model: seconds}       optional, oidc-provider `ttl` (IdToken, AccessToken, DeviceCode, ...)
//   amr       [string]               optional, e.g. ["pwd", "mfa"]: the ID token's amr
//   acr       string                 optional: the ID token's acr (also advertised in acr_values_supported)
//
// Sign-in is oidc-provider's built-in devInteractions (login page, then consent page). Any password
// is accepted, but the login must be a name in `accounts`: an unknown name is sent back to the
// login page (re-prompt). Device flow (RFC 8628) is on. PKCE (S256) is required for every client.
//
// Prints exactly one line on stdout, "READY <issuer>", once listening; everything else (oidc-provider's
// development-mode warnings are dropped, errors are kept) goes to stderr. Exits 0 on SIGTERM/SIGINT.

import { fstatSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';

// oidc-provider warns at import and at construction (devInteractions, Node 20 "unsupported runtime",
// development-only defaults): expected in tests, so dropped. console.info/log would go to stdout,
// which carries only the READY line, so everything else is sent to stderr.
const toStderr = (...args) => {
  if (typeof args[0] === 'string' && args[0].startsWith('oidc-provider ')) return;
  process.stderr.write(`${args.map(String).join(' ')}\n`);
};
console.log = toStderr;
console.info = toStderr;
console.warn = toStderr;

const { default: Provider } = await import('oidc-provider');

const configPath = process.argv[2];
if (!configPath) {
  process.stderr.write('usage: node provider.mjs CONFIG_JSON_PATH\n');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const accounts = config.accounts ?? {};
const keys = config.keys ?? { keys: [] };
const amr = config.amr ?? undefined;
const acr = config.acr ?? undefined;

function findAccount(_ctx, id) {
  if (!Object.hasOwn(accounts, id)) return undefined;
  return {
    accountId: id,
    // claims() returns everything; oidc-provider filters by the granted scopes/claims.
    async claims() {
      return { ...accounts[id], sub: id, preferred_username: id };
    },
  };
}

const configuration = {
  clients: config.clients ?? [],
  jwks: keys,
  clientDefaults: {
    ...(keys.keys?.[0]?.alg ? { id_token_signed_response_alg: keys.keys[0].alg } : {}),
  },
  findAccount,
  cookies: { keys: ['sekisho-test-cookie-key-0', 'sekisho-test-cookie-key-1'] },
  // amr, acr and auth_time are "openid"-scope claims here, so they go into every ID token whenever the
  // session has them (oidc-provider otherwise adds auth_time only on max_age/require_auth_time/login).
  claims: {
    openid: ['sub', 'auth_time', 'acr', 'amr', 'sid'],
    profile: ['name', 'preferred_username', 'given_name', 'family_name'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  // The scope's claims go into the ID token itself, not only the userinfo response.
  conformIdTokenClaims: false,
  acrValues: acr ? [acr] : [],
  responseTypes: ['code'],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    introspection: { enabled: true },
  },
  ...(config.ttl ? { ttl: config.ttl } : {}),
};

const provider = new Provider(config.issuer, configuration);

// devInteractions' login POST ends in interactionFinished({login: {accountId}}). Wrapping it:
// - an unknown account name goes back to the same login page (303 to the interaction URL), and
// - a known one gets the configured amr/acr put on the login, so oidc-provider stores them on the
//   session and issues them in the ID token (the session's loginTs becomes auth_time).
const interactionFinished = provider.interactionFinished.bind(provider);
provider.interactionFinished = async (req, res, result, options) => {
  if (result?.login) {
    if (!Object.hasOwn(accounts, result.login.accountId)) {
      res.statusCode = 303;
      res.setHeader('Location', new URL(req.url, config.issuer).pathname);
      res.setHeader('Content-Length', '0');
      res.end();
      return;
    }
    result = {
      ...result,
      login: {
        ...result.login,
        ...(amr ? { amr } : {}),
        ...(acr ? { acr } : {}),
      },
    };
  }
  return interactionFinished(req, res, result, options);
};

provider.on('server_error', (_ctx, err) => {
  process.stderr.write(`oidc server_error: ${err?.stack ?? err}\n`);
});
for (const event of ['authorization.error', 'grant.error', 'backchannel.error', 'end_session.error']) {
  provider.on(event, (_ctx, err) => {
    if (err?.name === 'AuthorizationPending' || err?.name === 'SlowDown') return; // device polling
    process.stderr.write(`oidc ${event}: ${err?.name}: ${err?.message} ${err?.error_description ?? ''}\n`);
  });
}

const server = createServer(provider.callback());
server.on('error', (err) => {
  process.stderr.write(`cannot listen on 127.0.0.1:${config.port}: ${err.message}\n`);
  process.exit(1);
});
server.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`READY ${config.issuer}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
// Started with stdin as a pipe (tests/oidc_support.py does so), exit when it closes: the parent
// has gone, even if it never sent SIGTERM (killed, crashed), so no provider outlives its test run.
if (fstatSync(0).isFIFO()) {
  process.stdin.on('end', shutdown);
  process.stdin.on('error', shutdown);
  process.stdin.resume();
}
