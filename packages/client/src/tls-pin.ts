// SPKI pins in HPKP form: "sha256/BASE64" of the DER SubjectPublicKeyInfo. Pinning the key, not
// the certificate, survives re-issuing a certificate for the same key.
import { X509Certificate, createHash } from 'node:crypto';

export function parsePin(text: string): { ok: true; value: Buffer } | { ok: false; reason: string } {
  const m = /^sha256\/([A-Za-z0-9+/]{43}=)$/.exec(text);
  if (!m) return { ok: false, reason: `pin '${text}' must be sha256/ followed by 44 base64 characters` };
  return { ok: true, value: Buffer.from(m[1] as string, 'base64') };
}

/** sha256 of the certificate's SubjectPublicKeyInfo (DER certificate in). */
export function spkiSha256(certDer: Buffer): Buffer {
  const spki = new X509Certificate(certDer).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest();
}

export function formatPin(digest: Buffer): string {
  return `sha256/${digest.toString('base64')}`;
}
