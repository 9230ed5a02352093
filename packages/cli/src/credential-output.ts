// The three ways `onionturn credentials` prints a credential.
import type { RestCredential } from '@onionturn/credentials';

export const FORMATS = ['json', 'ice', 'env'] as const;
export type Format = (typeof FORMATS)[number];

export const URI_PATTERN = /^(turns?|stuns?):\S+$/;

// Single quotes keep every byte literal in POSIX shells; a quote inside is closed, escaped, reopened.
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function formatCredential(credential: RestCredential, uris: readonly string[], format: Format): string {
  const { username, password, ttl } = credential;
  switch (format) {
    case 'json':
      // draft-uberti-behave-turn-rest-00 §2.2 response.
      return `${JSON.stringify({ username, password, ttl, uris })}\n`;
    case 'ice':
      // An RTCIceServer, ready for new RTCPeerConnection({ iceServers: [ ... ] }).
      return `${JSON.stringify({ urls: uris, username, credential: password })}\n`;
    case 'env':
      return [
        `TURN_USERNAME=${shellQuote(username)}`,
        `TURN_PASSWORD=${shellQuote(password)}`,
        `TURN_TTL=${ttl}`,
        `TURN_URIS=${shellQuote(uris.join(' '))}`,
        '',
      ].join('\n');
  }
}
