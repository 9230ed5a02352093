// What a TURN message's first byte says (RFC 8656 §12, RFC 7983): 0b00 is STUN, 0b01 is
// ChannelData, anything else is neither. The one place this test is written: server, shim, framer
// and probe all ask here. A number in, a small number out: it runs once per relayed packet.

/** STUN (0), ChannelData (1), or neither (2). */
export const WireKind = { Stun: 0, ChannelData: 1, Other: 2 } as const;
export type WireKind = (typeof WireKind)[keyof typeof WireKind];

export function wireKindOf(firstByte: number): WireKind {
  return firstByte < 0x40 ? WireKind.Stun : firstByte < 0x80 ? WireKind.ChannelData : WireKind.Other;
}
