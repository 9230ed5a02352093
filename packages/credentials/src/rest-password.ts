// The REST password (draft-uberti-behave-turn-rest-00 §2.2): base64(HMAC-SHA1(secret, username)),
// over the UTF-8 bytes of both, exactly as coturn's use-auth-secret and eturnal compute it.
import { createHmac } from 'node:crypto';

export function restPassword(secret: string, username: string): string {
  return createHmac('sha1', secret).update(username, 'utf8').digest('base64');
}
