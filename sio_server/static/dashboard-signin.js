// @ts-check
// towerco-notify dashboard: signing in. When the daemon publishes an OpenID provider
// (GET /api/v1/client-config), the authorization code flow with PKCE (S256) through
// oidc-client-ts (vendored at /static/oidc-client-ts.min.js; no protocol code of ours):
// discovery, authorization and token endpoints only (no userinfo), tokens in this tab's
// sessionStorage (never localStorage), renewed with the refresh token before they expire,
// sign-out through the issuer's end_session_endpoint. Without a provider: the pasted token.
async function clientConfig() {
  try {
    const r = await fetch("/api/v1/client-config");
    return r.ok ? (await r.json()).oidc : null;
  } catch { return null; }
}

// When to renew: at three quarters of the token's life, and at most a minute before it
// ends (a one-hour token renews at 59 min; a 20 s token at 15 s), so a short lifetime
// does not renew in a loop and a long one is not cut close.
function renewIn(expiresIn) {
  return Math.max(1, expiresIn - Math.min(60, expiresIn / 4)) * 1000;
}

// onToken(token): a fresh access token (sign-in or renewal); onFailed(message): renewal
// failed, the screen must sign in again.
export function createSignIn({ onToken, onFailed }) {
  let manager = null;
  let renewTimer = null;
  const home = location.origin + "/";

  function schedule(user) {
    clearTimeout(renewTimer);
    if (!user || user.expires_in === undefined) return;
    renewTimer = setTimeout(renew, renewIn(user.expires_in));
  }
  async function renew() {
    const current = await manager.getUser();
    if (!current || !current.refresh_token) {
      // a provider that gives no refresh token: through the issuer again while its session
      // lasts (a reload; the screen resumes from its last event)
      await manager.signinRedirect({ state: { hash: location.hash } });
      return;
    }
    try {
      const user = await manager.signinSilent();  // the refresh token grant
      if (!user) throw new Error("no session");
    } catch (e) {
      onFailed(`Your session could not be renewed (${e && e.message}): sign in again.`);
    }
  }
  function build(cfg) {
    const storage = new oidc.WebStorageStateStore({ store: sessionStorage });
    const m = new oidc.UserManager({
      authority: cfg.issuer,
      client_id: cfg.client_id,
      scope: cfg.scopes,
      redirect_uri: home,
      // back to the dashboard, which sends the next person at the screen to sign in
      post_logout_redirect_uri: home,
      response_type: "code",
      loadUserInfo: false,
      automaticSilentRenew: false,  // renewed on our schedule (renewIn)
      monitorSession: false,
      userStore: storage,
      stateStore: storage,
    });
    m.events.addUserLoaded((user) => { schedule(user); onToken(user.access_token); });
    return m;
  }

  const api = {
    issuer: null,
    // -> {token} | {signIn: message} (show the sign-in button) | null (no provider: the
    // pasted-token form) | {redirecting: true} (the page is leaving for the issuer)
    async start() {
      const cfg = await clientConfig();
      if (!cfg || typeof oidc === "undefined") return null;
      manager = build(cfg);
      api.issuer = cfg.issuer;
      const q = new URLSearchParams(location.search);
      if (q.has("code") || q.has("error")) {
        // the issuer's answer: the state must be one this tab sent (a replayed or foreign
        // code finds none and is refused), then the address bar forgets the code
        try {
          const user = await manager.signinRedirectCallback();
          history.replaceState(null, "", "/" + ((user.state && user.state.hash) || ""));
          schedule(user);
          return { token: user.access_token };
        } catch (e) {
          history.replaceState(null, "", "/");
          return { signIn: `Sign-in refused: ${e && e.message}` };
        }
      }
      const user = await manager.getUser();
      if (user && !user.expired) { schedule(user); return { token: user.access_token }; }
      if (user && user.refresh_token) {
        try { const renewed = await manager.signinSilent(); if (renewed) return { token: renewed.access_token }; }
        catch { /* the refresh token is gone too: sign in */ }
      }
      await api.signIn();
      return { redirecting: true };
    },
    // to the issuer; the fragment (#incident=<id>) comes back with the answer
    signIn: () => manager.signinRedirect({ state: { hash: location.hash } }),
    async signOut() {
      clearTimeout(renewTimer);
      const user = await manager.getUser();
      await manager.removeUser();
      await manager.signoutRedirect({ id_token_hint: user && user.id_token });
    },
    get active() { return manager !== null; },
  };
  return api;
}
