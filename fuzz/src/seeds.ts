// Messages made in code for the seed corpora: RFC 5769 / RFC 8489 vectors and the requests a
// TURN client sends (the same shapes turnutils_uclient and Chromium send).
import {
  AttributeType,
  MessageBuilder,
  MessageClass,
  Method,
  PasswordAlgorithm,
  encodeChannelData,
  longTermKey,
  type AttributeValue,
} from '@onionturn/protocol';

export function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

/** RFC 5769 §2.1-2.4 (and 2.4 as the long-term-credential request). */
export const RFC5769 = [
  hex(`00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
  00 24 00 04 6e 00 01 ff
  80 29 00 08 93 2f f9 b1 51 26 3b 36
  00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
  00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
  80 28 00 04 e5 7a 3b cf`),
  hex(`01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 08 00 01 a1 47 e1 12 a6 43
  00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
  80 28 00 04 c0 7d 4c 96`),
  hex(`01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
  00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
  00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
  80 28 00 04 c8 fb 0b 4c`),
  hex(`00 01 00 60 21 12 a4 42 78 ad 34 33 c6 ad 72 c0 29 da 41 2e
  00 06 00 12 e3 83 9e e3 83 88 e3 83 aa e3 83 83 e3 82 af e3 82 b9 00 00
  00 15 00 1c 66 2f 2f 34 39 39 6b 39 35 34 64 36 4f 4c 33 34 6f 4c 39 46 53 54 76 79 36 34 73 41
  00 14 00 0b 65 78 61 6d 70 6c 65 2e 6f 72 67 00
  00 08 00 14 f6 70 24 65 6d d6 4a 3e 02 b8 e0 71 2e 85 c9 a2 8c a8 96 66`),
];

export const SEED_USER = 'alice';
export const SEED_REALM = 'onion.test';
export const SEED_PASSWORD = 'wonderland';
const TID = hex('0102030405060708090a0b0c');

type Attr = readonly [number, AttributeValue];
const transport: Attr = [AttributeType.RequestedTransport, { kind: 'requested-transport', protocol: 17 }];
const peer4: Attr = [AttributeType.XorPeerAddress, { kind: 'address', address: { family: 'IPv4', address: '93.184.216.34', port: 5000 } }];
const peer6: Attr = [AttributeType.XorPeerAddress, { kind: 'address', address: { family: 'IPv6', address: '2001:4860:4860::8888', port: 53 } }];

function msg(method: number, cls: number, attrs: readonly Attr[], auth: boolean, options: { sha256?: boolean; fingerprint?: boolean } = {}): Buffer {
  const b = new MessageBuilder(method, cls as 0, TID);
  for (const [t, v] of attrs) b.add(t, v);
  if (!auth) return b.build({ fingerprint: options.fingerprint === true });
  b.add(AttributeType.Username, { kind: 'text', text: SEED_USER });
  b.add(AttributeType.Realm, { kind: 'text', text: SEED_REALM });
  b.add(AttributeType.Nonce, { kind: 'text', text: 'obMatJos2gAAAAAAAAAAAAAAAAAAAAAA' });
  return b.build({
    integrityKey: longTermKey(SEED_USER, SEED_REALM, SEED_PASSWORD),
    sha1: options.sha256 !== true,
    sha256: options.sha256 === true,
    fingerprint: options.fingerprint === true,
  });
}

/** Requests and indications of a TURN client, with and without credentials. */
export function turnMessages(): Buffer[] {
  const R = MessageClass.Request;
  return [
    msg(Method.Binding, R, [], false, { fingerprint: true }),
    msg(Method.Allocate, R, [transport], false),
    msg(Method.Allocate, R, [transport, [AttributeType.Lifetime, { kind: 'uint32', value: 3600 }]], true, { fingerprint: true }),
    msg(Method.Allocate, R, [transport, [AttributeType.EvenPort, { kind: 'even-port', reserve: true }]], true),
    msg(Method.Allocate, R, [transport, [AttributeType.RequestedAddressFamily, { kind: 'family', family: 'IPv6' }]], true, { sha256: true }),
    msg(
      Method.Allocate,
      R,
      [transport, [AttributeType.AdditionalAddressFamily, { kind: 'family', family: 'IPv6' }], [AttributeType.DontFragment, { kind: 'empty' }]],
      true,
    ),
    msg(Method.Allocate, R, [transport, [AttributeType.ReservationToken, { kind: 'bytes', bytes: hex('0011223344556677') }]], true),
    msg(
      Method.Allocate,
      R,
      [
        transport,
        [AttributeType.PasswordAlgorithm, { kind: 'password-algorithm', algorithm: { algorithm: PasswordAlgorithm.SHA256, parameters: Buffer.alloc(0) } }],
        [
          AttributeType.PasswordAlgorithms,
          {
            kind: 'password-algorithms',
            algorithms: [
              { algorithm: PasswordAlgorithm.SHA256, parameters: Buffer.alloc(0) },
              { algorithm: PasswordAlgorithm.MD5, parameters: Buffer.alloc(0) },
            ],
          },
        ],
      ],
      true,
    ),
    msg(Method.Refresh, R, [[AttributeType.Lifetime, { kind: 'uint32', value: 600 }]], true),
    msg(Method.Refresh, R, [[AttributeType.Lifetime, { kind: 'uint32', value: 0 }]], true),
    msg(Method.CreatePermission, R, [peer4, peer6], true),
    msg(Method.ChannelBind, R, [[AttributeType.ChannelNumber, { kind: 'channel-number', channel: 0x4000 }], peer4], true),
    msg(Method.Send, MessageClass.Indication, [peer4, [AttributeType.Data, { kind: 'bytes', bytes: Buffer.from('hello peer') }]], false),
    msg(Method.Data, MessageClass.Indication, [peer4, [AttributeType.Data, { kind: 'bytes', bytes: Buffer.from('hello client') }]], false),
    msg(
      Method.Allocate,
      MessageClass.ErrorResponse,
      [
        [AttributeType.ErrorCode, { kind: 'error-code', code: 401, reason: 'Unauthorized' }],
        [AttributeType.Realm, { kind: 'text', text: SEED_REALM }],
        [AttributeType.Nonce, { kind: 'text', text: 'obMatJos2gAAAAAAAAAAAAAAAAAAAAAA' }],
        [AttributeType.UnknownAttributes, { kind: 'unknown-attributes', types: [0x7fff, 0x0003] }],
      ],
      false,
    ),
    msg(
      Method.Binding,
      R,
      [
        [AttributeType.Priority, { kind: 'uint32', value: 0x6e0001ff }],
        [AttributeType.IceControlling, { kind: 'bytes', bytes: hex('932ff9b151263b36') }],
        [AttributeType.UseCandidate, { kind: 'empty' }],
        [AttributeType.Icmp, { kind: 'icmp', icmpType: 3, icmpCode: 1, errorData: 0 }],
        [AttributeType.AddressErrorCode, { kind: 'address-error-code', family: 'IPv6', code: 440, reason: 'Address Family not Supported' }],
      ],
      false,
      { fingerprint: true },
    ),
  ];
}

export function channelDataSeeds(): Buffer[] {
  return [
    encodeChannelData(0x4000, Buffer.from('hello'), true),
    encodeChannelData(0x4000, Buffer.from('hello'), false),
    encodeChannelData(0x4fff, Buffer.alloc(0), true),
    encodeChannelData(0x4123, Buffer.alloc(100, 7), true),
  ];
}
