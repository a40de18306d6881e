// A real OpenID provider for the sign-in tests: the certified `oidc-provider` package.
// argv[2]: JSON {port, clientId, redirectUris, postLogoutRedirectUris, audience, tenant,
// roles?, accessTokenTtl?}. It issues RS256 JWT access tokens for `audience` (resource
// indicators) carrying `tenant_id` and `roles`, and refresh tokens to the public client
// (authorization code + PKCE S256, as single-page apps get them from Keycloak or Auth0 with
// rotation). Sign-in is oidc-provider's own development form: any login, any password;
// the login becomes `sub` (one starting with "norefresh" gets no refresh token). Prints {"ready": true, "issuer"} when listening.
// stdin: JSON lines {"cmd": "codes"} -> {"codes": [...]} the authorization codes issued so
// far (for the replay test), {"cmd": "close"}.
import Provider from "oidc-provider";
import { generateKeyPairSync } from "node:crypto";
import readline from "node:readline";

const cfg = JSON.parse(process.argv[2]);
const issuer = `http://127.0.0.1:${cfg.port}`;
const out = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: "jwk" }), kid: `test-${cfg.port}`, use: "sig", alg: "RS256" };
const codes = [];

const provider = new Provider(issuer, {
  clients: [{
    client_id: cfg.clientId,
    token_endpoint_auth_method: "none",
    application_type: "web",
    redirect_uris: cfg.redirectUris,
    post_logout_redirect_uris: cfg.postLogoutRedirectUris,
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
  }],
  jwks: { keys: [jwk] },
  cookies: { keys: ["test-cookie-key-not-secret"] },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub, name: sub }) }),
  // no consent screen: a first-party client of the NOC's own identity provider
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid profile offline_access");
    grant.addResourceScope(cfg.audience, "openid profile");
    await grant.save();
    return grant;
  },
  // a login starting with "norefresh" gets none (a provider that gives single-page apps no
  // refresh token: the dashboard renews through the issuer again)
  issueRefreshToken: async (_ctx, client, code) =>
    client.grantTypeAllowed("refresh_token") && !String(code.accountId).startsWith("norefresh"),
  extraTokenClaims: async (_ctx, token) => (token.kind === "AccessToken" ? { tenant_id: cfg.tenant, roles: cfg.roles || ["operator"] } : undefined),
  ttl: { AccessToken: cfg.accessTokenTtl || 600, IdToken: 3600, RefreshToken: 86400, Session: 86400, Grant: 86400, Interaction: 600 },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf || cfg.audience,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource) => ({
        scope: "openid profile",
        audience: resource,
        accessTokenTTL: cfg.accessTokenTtl || 600,
        accessTokenFormat: "jwt",
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
});
provider.on("authorization_code.saved", (code) => codes.push(code.jti));
provider.on("server_error", (_ctx, err) => process.stderr.write(`oidc-provider: ${err.stack}\n`));

const server = provider.listen(cfg.port, "127.0.0.1", () => out({ ready: true, issuer }));
const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  let c;
  try { c = JSON.parse(line); } catch { continue; }
  if (c.cmd === "codes") out({ codes });
  else if (c.cmd === "close") { server.close(); out({ ok: true }); process.exit(0); }
}
process.exit(0);
