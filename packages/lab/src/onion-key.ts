// v3 onion identities made here, for an Onionbalance frontend: its key must exist (and its
// address be known) before the backends' tors start, since each names it in ob_config.
import { createHash, generateKeyPairSync } from 'node:crypto';

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
const ONION_VERSION = 3;
/** An ed25519 SPKI DER is a fixed 12-byte prefix and the 32-byte key. */
const ED25519_SPKI_PREFIX_LENGTH = 12;

/** RFC 4648 base32, lowercase, no padding (what onion addresses use). */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** rend-spec-v3 §6: base32(PUBKEY | CHECKSUM | VERSION) + ".onion". */
export function onionHostname(ed25519PublicKey: Uint8Array): string {
  if (ed25519PublicKey.length !== 32) throw new Error(`an ed25519 public key has 32 bytes, not ${ed25519PublicKey.length}`);
  const version = Buffer.from([ONION_VERSION]);
  const checksum = createHash('sha3-256')
    .update(Buffer.concat([Buffer.from('.onion checksum'), ed25519PublicKey, version]))
    .digest()
    .subarray(0, 2);
  return `${base32(Buffer.concat([ed25519PublicKey, checksum, version]))}.onion`;
}

export interface OnionIdentity {
  readonly hostname: string;
  /** PKCS#8 PEM private key: the format Onionbalance's config `key:` reads. */
  readonly privateKeyPem: string;
}

export function generateOnionIdentity(): OnionIdentity {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const der = publicKey.export({ format: 'der', type: 'spki' });
  return {
    hostname: onionHostname(der.subarray(ED25519_SPKI_PREFIX_LENGTH)),
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
  };
}
