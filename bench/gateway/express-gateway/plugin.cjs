// Express Gateway 1.16 plugin with the policy of our full route, for the side-by-side bench only (never part of
// the platform): HS256 verify with a KeyObject and `type: access`, an atomic Redis rate limit (one script call),
// client `x-user-*` headers stripped and the verified identity injected.
const { createHmac, createSecretKey, timingSafeEqual } = require('node:crypto');
const Redis = require(process.env.EG_IOREDIS);

const WINDOW = `local n = redis.call('INCR', KEYS[1]) if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end return n`;

module.exports = {
  version: '1.2.0',
  policies: ['platform-auth'],
  init(context) {
    const key = createSecretKey(Buffer.from(process.env.JWT_ACCESS_SECRET, 'utf8'));
    const redis = new Redis(process.env.REDIS_URL, { enableOfflineQueue: true, maxRetriesPerRequest: 1 });
    redis.defineCommand('window', { numberOfKeys: 1, lua: WINDOW });
    const refuse = (res, status) => res.status(status).json({ status });
    context.registerPolicy({
      name: 'platform-auth',
      schema: { $id: 'http://express-gateway.io/schemas/policies/platform-auth.json', type: 'object', properties: { limit: { type: 'number', default: 1e9 } } },
      policy: (params) => (req, res, next) => {
        const header = req.headers.authorization ?? '';
        const [h, p, s] = header.startsWith('Bearer ') ? header.slice(7).split('.') : [];
        if (!h || !p || !s) return refuse(res, 401);
        let claims;
        try {
          if (JSON.parse(Buffer.from(h, 'base64url').toString()).alg !== 'HS256') return refuse(res, 401);
          const expected = createHmac('sha256', key).update(`${h}.${p}`).digest();
          const given = Buffer.from(s, 'base64url');
          if (given.length !== expected.length || !timingSafeEqual(given, expected)) return refuse(res, 401);
          claims = JSON.parse(Buffer.from(p, 'base64url').toString());
        } catch {
          return refuse(res, 401);
        }
        if (claims.type !== 'access' || !(claims.exp * 1000 > Date.now())) return refuse(res, 401);
        redis.window(`${process.env.RATE_LIMIT_PREFIX}eg:${claims.sub}:${Math.floor(Date.now() / 60_000)}`, 60_000).then(
          (count) => {
            if (count > (params.limit ?? 1e9)) return refuse(res, 429);
            for (const name of Object.keys(req.headers)) if (name.startsWith('x-user-')) delete req.headers[name];
            req.headers['x-user-id'] = claims.sub;
            req.headers['x-user-role'] = claims.role;
            req.headers['x-user-username'] = claims.username;
            next();
          },
          () => refuse(res, 503),
        );
      },
    });
  },
};
