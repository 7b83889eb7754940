/** Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection and are never forwarded or stored. */
export const HOP_BY_HOP_HEADERS: readonly string[] = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
];
