// Two real OpenID providers (npm `oidc-provider`) for Hygie's federation tests, on loopback.
//
//   node tests/federation/oidc_provider.mjs <franceconnect port> <psc port> <hygie base URL>
//
// * a FranceConnect-like provider: scopes are claims (`given_name`, `family_name`, `birthdate`,
//   `gender`, `birthplace`, `birthcountry`, group `identite_pivot`), client secret in the body
//   (client_secret_post), userinfo answered as a signed JWT, ID token `acr` = `eidas2`
//   (FranceConnect+ substantial);
// * a Pro Santé Connect-like provider: scope `scope_all`, userinfo claims `preferred_username`
//   and `SubjectNameID` = the IdNat_PS, client_secret_basic, ID token `acr` = `eidas1`.
//
// Sign-in and consent are this script's own small interaction pages (oidc-provider's
// documented `interactionDetails` / `interactionFinished` API): a form with `login` and
// `password`, then a consent form. Accounts and their password are below. When both servers
// listen, one line `READY {"franceconnect": issuer, "psc": issuer}` is printed on stdout.
// Everything listens on 127.0.0.1 only; the process stops on SIGTERM.

import * as crypto from 'node:crypto';
import * as http from 'node:http';

import Provider from 'oidc-provider';

const [fcPort, pscPort, hygieBase] = process.argv.slice(2);
if (!fcPort || !pscPort || !hygieBase) {
  console.error('usage: oidc_provider.mjs <franceconnect port> <psc port> <hygie base URL>');
  process.exit(2);
}

const PASSWORD = 'motdepasse-de-test';

const PROFILES = {
  franceconnect: {
    port: Number(fcPort),
    acr: 'eidas2',
    client: {
      client_id: 'hygie-franceconnect',
      client_secret: 'secret-franceconnect-de-test-0123456789abcdef',
      redirect_uris: [`${hygieBase}/federation/franceconnect/retour`],
      token_endpoint_auth_method: 'client_secret_post',
      userinfo_signed_response_alg: 'RS256',
    },
    claims: {
      openid: ['sub'],
      given_name: ['given_name'],
      family_name: ['family_name'],
      birthdate: ['birthdate'],
      gender: ['gender'],
      birthplace: ['birthplace'],
      birthcountry: ['birthcountry'],
      identite_pivot: ['given_name', 'family_name', 'birthdate', 'gender', 'birthplace', 'birthcountry'],
    },
    accounts: {
      // matches Hygie's Patient MARTIN Claire Marie (birth name, all first names, INSEE codes)
      claire: {
        given_name: 'Claire Marie',
        family_name: 'MARTIN',
        birthdate: '1985-03-14',
        gender: 'female',
        birthplace: '75056',
        birthcountry: '99100',
      },
      // nobody in Hygie has these traits
      inconnu: {
        given_name: 'Jean',
        family_name: 'INCONNU',
        birthdate: '1970-01-01',
        gender: 'male',
        birthplace: '13055',
        birthcountry: '99100',
      },
    },
  },
  psc: {
    port: Number(pscPort),
    acr: 'eidas1',
    client: {
      client_id: 'hygie-psc',
      client_secret: 'secret-psc-de-test-0123456789abcdef',
      redirect_uris: [`${hygieBase}/federation/psc/retour`],
      token_endpoint_auth_method: 'client_secret_basic',
    },
    claims: {
      openid: ['sub'],
      scope_all: ['preferred_username', 'SubjectNameID', 'given_name', 'family_name'],
    },
    accounts: {
      // the IdNat_PS of the digest's worked example (RPPS 10001234565)
      810001234565: { preferred_username: '810001234565', SubjectNameID: '810001234565', given_name: 'Paul', family_name: 'BERNARD' },
      // a valid RPPS unknown to Hygie
      899700218896: { preferred_username: '899700218896', SubjectNameID: '899700218896', given_name: 'Anne', family_name: 'TEST' },
    },
  },
};

function signingKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>${escape(title)}</title></head><body><h1>${escape(title)}</h1>${body}</body></html>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function makeProvider(name, profile) {
  const issuer = `http://127.0.0.1:${profile.port}`;
  const provider = new Provider(issuer, {
    clients: [{ ...profile.client, grant_types: ['authorization_code'], response_types: ['code'] }],
    jwks: { keys: [signingKey()] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    claims: profile.claims,
    scopes: Object.keys(profile.claims),
    acrValues: ['eidas1', 'eidas2', 'eidas3'],
    features: {
      devInteractions: { enabled: false },
      jwtUserinfo: { enabled: true },
      userinfo: { enabled: true },
    },
    pkce: { required: () => true },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, id) {
      const claims = profile.accounts[id];
      if (!claims) return undefined;
      return { accountId: id, async claims() { return { sub: id, ...claims }; } };
    },
  });

  async function interaction(req, res) {
    const details = await provider.interactionDetails(req, res);
    const { uid, prompt } = details;
    if (req.method === 'GET') {
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      if (prompt.name === 'login') {
        res.end(page(`Connexion (${name})`, `<form method="post" action="/interaction/${uid}/login">
<label for="login">Identifiant</label><input id="login" name="login" autocomplete="username">
<label for="password">Mot de passe</label><input id="password" name="password" type="password">
<button type="submit">Se connecter</button></form>`));
      } else {
        res.end(page(`Autorisation (${name})`, `<form method="post" action="/interaction/${uid}/confirm">
<p>Transmettre votre identité à Hygie ?</p><button type="submit">Continuer</button></form>`));
      }
      return;
    }
    const form = await readForm(req);
    if (req.url.endsWith('/login')) {
      const login = form.get('login') ?? '';
      if (!profile.accounts[login] || form.get('password') !== PASSWORD) {
        res.statusCode = 401;
        res.setHeader('Content-Type', 'text/html; charset=utf-8');
        res.end(page('Identifiants incorrects', '<p>Identifiant ou mot de passe incorrect.</p>'));
        return;
      }
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: login, acr: profile.acr, amr: ['pwd'] } },
        { mergeWithLastSubmission: false },
      );
      return;
    }
    const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
    if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  const callback = provider.callback();
  const server = http.createServer((req, res) => {
    if (req.url.startsWith('/interaction/')) {
      interaction(req, res).catch((error) => {
        res.statusCode = 400;
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.end(`interaction error: ${error.message}`);
      });
      return;
    }
    callback(req, res);
  });
  return { issuer, server, port: profile.port };
}

const started = Object.entries(PROFILES).map(([name, profile]) => [name, makeProvider(name, profile)]);
await Promise.all(
  started.map(([, p]) => new Promise((resolve, reject) => {
    p.server.once('error', reject);
    p.server.listen(p.port, '127.0.0.1', resolve);
  })),
);
console.log(`READY ${JSON.stringify(Object.fromEntries(started.map(([name, p]) => [name, p.issuer])))}`);

function stop() {
  for (const [, p] of started) p.server.close();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
