// The dashboard's globals from its two classic scripts (vendored, not modules): the
// official socket.io-client (`io`) and oidc-client-ts (`oidc`). Types only, for `tsc`
// (./dev lint); not served.
declare const io: (url?: string | object, opts?: object) => any;
declare const oidc: {
  UserManager: new (settings: object) => any;
  WebStorageStateStore: new (opts: { store: Storage }) => any;
};
interface Window { webkitAudioContext?: typeof AudioContext }
