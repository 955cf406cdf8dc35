// A real OpenID Connect provider (panva's OpenID Certified oidc-provider) for keyhouse's
// SSO tests. Usage: node provider.mjs <port> <redirect_uri>[,<redirect_uri>...]
// Prints "ready <issuer>" once listening. devInteractions' login form takes any
// login; the accounts below decide the claims (one verified email, one not).
import Provider from 'oidc-provider';

const [port, redirects] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;
const accounts = {
  alice: { email: 'alice@example.com', email_verified: true, name: 'Alice Liddell' },
  newbie: { email: 'newbie@example.com', email_verified: true, name: 'New Person' },
  mallory: { email: 'alice@example.com', email_verified: false, name: 'Not Alice' },
};
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'keyhouse',
    client_secret: 'keyhouse-test-secret',
    redirect_uris: redirects.split(','),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  pkce: { required: () => false },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, ...(accounts[id] ?? { email: `${id}@example.com`, email_verified: true, name: id }) }),
  }),
  features: { devInteractions: { enabled: true } },
});
provider.listen(Number(port), '127.0.0.1', () => console.log(`ready ${issuer}`));
