// Building and sending the answers to client requests: success and error responses (signed with
// the request's key when it was authenticated), 401/438 challenges and 420 Unknown Attribute.
import type { HandOffResult } from './allocation.js';
import {
  AttributeType,
  ErrorCode,
  HEADER_LENGTH,
  MAGIC_COOKIE,
  MessageBuilder,
  MessageClass,
  Method,
  PasswordAlgorithm,
  errorCodeValue,
  methodOf,
  type StunMessage,
} from '@onionturn/protocol';
import type { Client } from './allocation.js';
import type { Authenticated } from './authenticate.js';
import type { NonceIssuer } from '@onionturn/protocol';
import type { CoreStats } from './stats.js';

const PASSWORD_ALGORITHMS_VALUE = {
  kind: 'password-algorithms',
  algorithms: [
    { algorithm: PasswordAlgorithm.SHA256, parameters: Buffer.alloc(0) },
    { algorithm: PasswordAlgorithm.MD5, parameters: Buffer.alloc(0) },
  ],
} as const;
/** The PASSWORD-ALGORITHMS value as sent in challenges, which a client must echo byte for byte. */
export const PASSWORD_ALGORITHMS_BYTES = new MessageBuilder(Method.Binding, MessageClass.Request)
  .add(AttributeType.PasswordAlgorithms, PASSWORD_ALGORITHMS_VALUE)
  .build()
  .subarray(HEADER_LENGTH + 4);

/** What every response needs to know about its request. */
export interface Reply {
  readonly client: Client;
  readonly msg: StunMessage;
  auth: Authenticated | undefined;
  /** Set when the shell could not hand this request's connection to its ticket's worker (see mobility.ts). */
  handOff?: Exclude<HandOffResult, 'handed'>;
}

export class Replies {
  readonly #stats: CoreStats;
  readonly #realm: string;
  readonly #software: string | undefined;
  readonly #nonces: NonceIssuer;
  readonly #now: () => number;

  constructor(stats: CoreStats, realm: string, software: string | undefined, nonces: NonceIssuer, now: () => number) {
    this.#stats = stats;
    this.#realm = realm;
    this.#software = software;
    this.#nonces = nonces;
    this.#now = now;
  }

  build(r: Reply, cls: MessageClass, fill: (b: MessageBuilder) => void): Buffer {
    const b = new MessageBuilder(r.msg.method, cls, r.msg.transactionId);
    fill(b);
    if (this.#software !== undefined) b.add(AttributeType.Software, { kind: 'text', text: this.#software });
    const auth = r.auth;
    const fingerprint = r.msg.fingerprintOffset >= 0;
    if (!auth) return b.build({ fingerprint });
    return b.build({ integrityKey: auth.key, sha1: !auth.sha256, sha256: auth.sha256, fingerprint });
  }

  success(r: Reply, fill: (b: MessageBuilder) => void): void {
    r.client.link.sendMessage(this.build(r, MessageClass.SuccessResponse, fill));
  }

  error(r: Reply, code: number, extra?: (b: MessageBuilder) => void): void {
    this.#stats.countError(code);
    r.client.link.sendMessage(
      this.build(r, MessageClass.ErrorResponse, (b) => {
        b.add(AttributeType.ErrorCode, errorCodeValue(code));
        extra?.(b);
      }),
    );
  }

  /** 401 or 438 with a fresh nonce, the realm and the password algorithms (no integrity). */
  challenge(r: Reply, code: number): void {
    r.auth = undefined;
    const nonce = this.#nonces.issue(r.client.key, this.#now());
    this.error(r, code, (b) => {
      b.add(AttributeType.Realm, { kind: 'text', text: this.#realm });
      b.add(AttributeType.Nonce, { kind: 'text', text: nonce });
      b.add(AttributeType.PasswordAlgorithms, PASSWORD_ALGORITHMS_VALUE);
    });
  }

  unknownAttributes(r: Reply, types: readonly number[] = r.msg.unknownRequired): void {
    this.error(r, ErrorCode.UnknownAttribute, (b) => b.add(AttributeType.UnknownAttributes, { kind: 'unknown-attributes', types }));
  }

  /** A request too broken to decode still gets 400 when its header is readable. */
  badRequestFromHeader(client: Client, raw: Buffer): void {
    if (raw.length < HEADER_LENGTH || raw.readUInt32BE(4) !== MAGIC_COOKIE) return;
    const type = raw.readUInt16BE(0);
    if ((type & 0x0110) !== 0) return; // only requests get answers
    const b = new MessageBuilder(methodOf(type), MessageClass.ErrorResponse, raw.subarray(8, HEADER_LENGTH));
    b.add(AttributeType.ErrorCode, errorCodeValue(ErrorCode.BadRequest));
    this.#stats.countError(ErrorCode.BadRequest);
    client.link.sendMessage(b.build());
  }
}
