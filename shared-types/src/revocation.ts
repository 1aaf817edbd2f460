/** DESIGN section 5: auth writes these keys, the gateway reads them in the same round trip as the rate limit. */
export const revocationKeys = {
  /** = 1, TTL until the token's exp: one session logged out */
  jti: (jti: string) => `revoked:jti:${jti}`,
  /** = unix seconds: every token of the user issued before is dead */
  before: (userId: string) => `revoked:before:${userId}`,
};
