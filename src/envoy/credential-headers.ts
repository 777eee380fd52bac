/**
 * Headers that carry credentials. The decision log redacts them
 * (observability/redaction.ts) and the CheckRequest decoder never keeps their
 * values in its table of shared strings, so a secret is neither written out
 * nor held past its request.
 */
export const CREDENTIAL_HEADERS = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'x-auth-token',
  'x-amz-security-token',
  'x-csrf-token',
  'x-xsrf-token',
  'x-forwarded-client-cert',
] as const;
